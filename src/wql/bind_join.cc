// FROM's classes: aliases, joins (Extended WQL), and the names that read them (`P.Name`, or `Name` when only one
// class of FROM has it), and a join's projection.
#include <string>
#include <utility>

#include "core/strings.h"
#include "wql/binder.h"
#include "wql/system_props.h"

namespace pkgcast::wql {
namespace {

using bind_detail::error_at;

const std::string& table_name(const ast::ClassRef& ref) { return ref.alias.empty() ? ref.name : ref.alias; }

// The top-level conjuncts of c (c itself when it is not an AND).
void conjuncts(const Condition& c, std::vector<const Condition*>& out) {
  if (c.kind == ConditionKind::kAnd) {
    for (const auto& child : c.children) out.push_back(&child);
  } else {
    out.push_back(&c);
  }
}

// "P, G": the names of FROM's classes, for errors.
std::string names_of(const std::vector<BoundTable>& tables) {
  std::string names;
  for (const auto& t : tables) names += (names.empty() ? "" : ", ") + t.name;
  return names;
}

bool keyable(const PropertyRef& ref) {
  return ref.source == Source::kSelf && ref.system == SystemProperty::kNone && !ref.type.array &&
         ref.type.base != cim::CimType::kReal32 && ref.type.base != cim::CimType::kReal64;
}

// `T.x = U.y` with T the class `table` and U one before it: the equality an executor can look partners up by.
std::optional<JoinKey> key_in(const Condition& c, std::size_t table) {
  if (c.kind != ConditionKind::kCompare || c.op != ast::CompareOp::kEq || c.rhs.kind != Operand::Kind::kProperty) {
    return std::nullopt;
  }
  if (c.domain != Domain::kString && c.domain != Domain::kNumber) return std::nullopt;
  const PropertyRef& a = c.lhs;
  const PropertyRef& b = c.rhs.property;
  if (!keyable(a) || !keyable(b)) return std::nullopt;
  if (a.table == table && b.table < table) return JoinKey{a, b, c.domain};
  if (b.table == table && a.table < table) return JoinKey{b, a, c.domain};
  return std::nullopt;
}

}  // namespace

std::optional<std::size_t> BoundQuery::answer_table() const {
  std::optional<std::size_t> only;
  for (std::size_t i = 0; i < tables_.size(); ++i) {
    if (!tables_[i].answered) continue;
    if (only) return std::nullopt;
    only = i;
  }
  return only;
}

// Every class of FROM gets a name (its alias, else its class name) that no other class of FROM has, ignoring
// case as every WQL name does.
Status Binder::bind_tables(BoundQuery& out) {
  BoundTable first;
  first.cls = out.from_class_;
  first.name = query_.from_alias.empty() ? query_.from_class : query_.from_alias;
  out.tables_.push_back(std::move(first));
  for (const ast::Join& join : query_.joins) {
    PKG_ASSIGN_OR_RETURN(const cim::ClassDef* cls, resolve_class(join.cls.name, join.cls.pos));
    if (cls->is_event_class()) {
      return error_at(WbemCode::kInvalidQuery, "joins apply to data queries; '" + cls->name() + "' is an event class",
                      join.cls.pos);
    }
    const std::string& name = table_name(join.cls);
    for (const BoundTable& earlier : out.tables_) {
      if (iequals(earlier.name, name)) {
        return error_at(WbemCode::kInvalidQuery,
                        "'" + name + "' names two classes of FROM; give each its own alias",
                        join.cls.alias.empty() ? join.cls.pos : join.cls.alias_pos);
      }
    }
    BoundTable table;
    table.cls = cls;
    table.name = name;
    table.kind = join.kind;
    out.tables_.push_back(std::move(table));
  }
  return ok_status();
}

// Each ON, over its class and those before it. an executor may look partners up by.
Status Binder::bind_joins(BoundQuery& out) {
  for (std::size_t i = 0; i < query_.joins.size(); ++i) {
    const ast::Join& join = query_.joins[i];
    if (!join.on) continue;
    const Scope scope{out.from_class_, nullptr, &out.tables_, i + 2};
    PKG_ASSIGN_OR_RETURN(Condition on, bind_expr(*join.on, scope));
    out.tables_[i + 1].on = std::move(on);
  }
  return ok_status();
}

// Once WHERE is bound: for each joined class, an equality its partners can be looked up by.
void Binder::find_join_keys(BoundQuery& out) {
  const std::optional<Condition>& where = out.where_;
  for (std::size_t i = 1; i < out.tables_.size(); ++i) {
    BoundTable& table = out.tables_[i];
    std::vector<const Condition*> terms;
    if (table.on) conjuncts(*table.on, terms);
    // A LEFT JOIN's WHERE filters after the missing partners became NULLs, so only its ON finds partners.
    if (table.kind != ast::JoinKind::kLeft && where) conjuncts(*where, terms);
    for (const Condition* term : terms) {
      if ((table.key = key_in(*term, i))) break;
    }
  }
}

// `P.Name` reads class P of FROM; `Name` alone, in a join, the one class of FROM that has it. Returns nullopt when
// the path is not of that form (a one-class query's `Name`, or an event's `TargetInstance.Name`), for bind_path.
Result<std::optional<PropertyRef>> Binder::bind_table_path(const ast::PropertyPath& path, const Scope& scope) const {
  const std::vector<BoundTable>& tables = *scope.tables;
  const bool join = tables.size() > 1;
  if (path.parts.size() == 2) {
    for (std::size_t i = 0; i < tables.size(); ++i) {
      if (!iequals(tables[i].name, path.parts[0])) continue;
      if (i >= scope.visible) {
        return error_at(WbemCode::kInvalidQuery,
                        "'" + path.parts[0] + "' is joined after this ON, which reads only its class and those "
                        "before it",
                        path.pos());
      }
      PKG_ASSIGN_OR_RETURN(PropertyRef ref,
                           bind_table_property(tables[i], i, path.parts[1], path.positions[1], join));
      return std::optional<PropertyRef>(std::move(ref));
    }
    if (!join) return std::optional<PropertyRef>();
    return error_at(WbemCode::kInvalidQuery, "unknown alias '" + path.parts[0] + "' (FROM names " +
                                                 names_of(tables) + ")",
                    path.pos());
  }
  if (path.parts.size() != 1 || !join) return std::optional<PropertyRef>();
  const std::string& name = path.parts[0];
  std::optional<std::size_t> found;
  for (std::size_t i = 0; i < scope.visible; ++i) {
    const bool has = starts_with_icase(name, "__") ? find_system_property(name).has_value()
                                                   : tables[i].cls->find_property(name).has_value();
    if (!has) continue;
    if (found) {
      return error_at(WbemCode::kInvalidQuery,
                      "ambiguous property '" + name + "': " + tables[*found].name + " and " + tables[i].name +
                          " both have it; qualify it (" + tables[*found].name + "." + name + ")",
                      path.pos());
    }
    found = i;
  }
  if (!found) return error_at(WbemCode::kInvalidProperty, "unknown property '" + name + "'", path.pos());
  PKG_ASSIGN_OR_RETURN(PropertyRef ref, bind_table_property(tables[*found], *found, name, path.pos(), true));
  return std::optional<PropertyRef>(std::move(ref));
}

// `qualify`: in a join, the reference's name carries its class's name ("P.Name"), as rows and errors show it.
Result<PropertyRef> Binder::bind_table_property(const BoundTable& table, std::size_t index, const std::string& name,
                                                ast::Position pos, bool qualify) const {
  PropertyRef ref;
  ref.table = static_cast<std::uint8_t>(index);
  const std::string prefix = qualify ? table.name + "." : "";
  if (const auto idx = table.cls->find_property(name)) {
    ref.index = *idx;
    ref.def = &table.cls->property(*idx);
    ref.type = ref.def->type;
    ref.name = prefix + ref.def->name;
    return ref;
  }
  if (const auto sys = find_system_property(name); sys && *sys != SystemProperty::kRevision) {
    ref.system = *sys;
    ref.type = system_property_type(*sys);
    ref.name = prefix + std::string(system_property_name(*sys));
    return ref;
  }
  return error_at(WbemCode::kInvalidProperty,
                  "unknown property '" + name + "' of " + table.cls->name() +
                      (iequals(table.name, table.cls->name()) ? std::string() : " (" + table.name + ")"),
                  pos);
}

// SELECT over FROM's classes: `*` answers every class; `P.*` all of P; `P.Name` or an unambiguous `Name` a
// property of P. One class answered: its instances are the answer (select_all_ / selected_ describe them, as for
// a plain query); several: __Generic instances.
Status Binder::bind_join_select(BoundQuery& out) {
  const Scope scope{out.from_class_, nullptr, &out.tables_, out.tables_.size()};
  if (query_.select.empty()) {
    for (BoundTable& t : out.tables_) {
      t.answered = true;
      t.select_all = true;
    }
    return ok_status();
  }
  for (const auto& path : query_.select) {
    if (path.parts.size() == 2 && path.parts[1] == "*") {
      std::optional<std::size_t> table;
      for (std::size_t i = 0; i < out.tables_.size() && !table; ++i) {
        if (iequals(out.tables_[i].name, path.parts[0])) table = i;
      }
      if (!table) {
        return error_at(WbemCode::kInvalidQuery, "unknown alias '" + path.parts[0] + "' in '" + path.dotted() + "'",
                        path.pos());
      }
      out.tables_[*table].answered = true;
      out.tables_[*table].select_all = true;
      continue;
    }
    PKG_ASSIGN_OR_RETURN(std::optional<PropertyRef> joined, bind_table_path(path, scope));
    if (!joined && path.parts.size() > 1) {
      return error_at(WbemCode::kInvalidQuery,
                      "SELECT lists properties of the FROM class, not '" + path.dotted() + "'", path.pos());
    }
    if (!joined) {
      PKG_ASSIGN_OR_RETURN(PropertyRef ref, bind_path(path, Scope{out.from_class_, nullptr, nullptr, 0}));
      joined = std::move(ref);
    }
    BoundTable& t = out.tables_[joined->table];
    t.answered = true;
    t.selected.push_back(std::move(*joined));
  }
  const std::optional<std::size_t> only = out.answer_table();
  if (only) {
    out.select_all_ = out.tables_[*only].select_all;
    if (!out.select_all_) out.selected_ = out.tables_[*only].selected;
  }
  return ok_status();
}

}  // namespace pkgcast::wql
