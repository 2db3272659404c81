#include "store/predicate_sql.h"

#include <limits>
#include <vector>

#include "store/row_codec.h"

namespace pkgcast::store {
namespace {

constexpr int kMaxDepth = 256;
constexpr std::size_t kMaxParams = 30'000;  // under SQLite's 32,766 and PostgreSQL's 65,535
constexpr const char* kTrue = "1=1";
constexpr const char* kFalse = "1=0";

std::string_view op_text(Predicate::Op op) {
  switch (op) {
    case Predicate::Op::kEq: return "=";
    case Predicate::Op::kNe: return "<>";
    case Predicate::Op::kLt: return "<";
    case Predicate::Op::kLe: return "<=";
    case Predicate::Op::kGt: return ">";
    case Predicate::Op::kGe: return ">=";
  }
  return "=";
}

bool is_text(cim::Type t) {
  return !t.array && (t.base == cim::CimType::kString || t.base == cim::CimType::kReference);
}

class Renderer {
 public:
  Renderer(const TableInfo& t, const Dialect& d, SqlParams& params) : t_(t), d_(d), params_(params) {}

  Result<std::string> render(const Predicate& p, int depth) {
    if (depth > kMaxDepth) {
      return make_error(WbemCode::kQuotaViolation, "predicate nested deeper than " + std::to_string(kMaxDepth));
    }
    switch (p.kind) {
      case Predicate::Kind::kTrue: return std::string(kTrue);
      case Predicate::Kind::kAnd:
      case Predicate::Kind::kOr: {
        const bool conj = p.kind == Predicate::Kind::kAnd;
        if (p.children.empty()) return std::string(conj ? kTrue : kFalse);
        if (!conj && d_.postgres() && text_equalities(p)) return any_of_texts(p);
        std::string out = "(";
        for (std::size_t i = 0; i < p.children.size(); ++i) {
          PKG_ASSIGN_OR_RETURN(std::string c, render(p.children[i], depth + 1));
          if (i > 0) out += conj ? " AND " : " OR ";
          out += c;
        }
        return out + ")";
      }
      case Predicate::Kind::kIsNull:
      case Predicate::Kind::kIsNotNull: {
        PKG_ASSIGN_OR_RETURN(std::size_t i, property(p));
        return t_.columns[i] + (p.kind == Predicate::Kind::kIsNull ? " IS NULL" : " IS NOT NULL");
      }
      case Predicate::Kind::kLike: return like(p);
      case Predicate::Kind::kCompare: return compare(p);
    }
    return make_error(WbemCode::kInvalidParameter, "unknown predicate kind");
  }

 private:
  // An OR of two or more `=` of one string column with string values: WQL's IN list, and the join's lookup of
  // partners by the outer rows' values.
  bool text_equalities(const Predicate& p) const {
    if (p.children.size() < 2) return false;
    const std::size_t prop = p.children.front().property;
    if (prop >= t_.columns.size() || !is_text(t_.cls->property(prop).type)) return false;
    for (const Predicate& c : p.children) {
      if (c.kind != Predicate::Kind::kCompare || c.op != Predicate::Op::kEq || c.property != prop ||
          c.value.is_null() || c.value.is_array() || !is_text(c.value.type())) {
        return false;
      }
    }
    return true;
  }

  // PostgreSQL: `lower(col COLLATE "C") COLLATE "C" = ANY(lower($n COLLATE "C")::text[])`, the values bound as one
  // text[] literal. An OR of N equalities is planned as N index probes OR-ed into a bitmap (and its planning time grows with N), and with
  // estimates from an unanalyzed table as a walk of the whole key index; `= ANY` of an array is one index scan
  // that looks each value up, whatever N. lower() of the literal is lower() of every element: it changes letters
  // only, never the quotes, commas and backslashes of the literal's syntax.
  Result<std::string> any_of_texts(const Predicate& p) {
    // Each element counts as a value, as it would have as a parameter of its own.
    if (params_.size() + p.children.size() > kMaxParams) {
      return make_error(WbemCode::kQuotaViolation, "predicate has more than " + std::to_string(kMaxParams) + " values");
    }
    const std::size_t i = p.children.front().property;
    const cim::PropertyDef& def = t_.cls->property(i);
    SqlParams values;
    values.reserve(p.children.size());
    for (const Predicate& c : p.children) {
      PKG_ASSIGN_OR_RETURN(SqlParam param, encode_value(c.value, def.type, def.name));
      values.push_back(std::move(param));
    }
    std::vector<const SqlParam*> elements;
    elements.reserve(values.size());
    for (const SqlParam& v : values) elements.push_back(&v);
    std::string literal = pg_array_literal(elements);
    PKG_ASSIGN_OR_RETURN(std::size_t n, bind(std::move(literal)));
    return column_expr(d_, t_.columns[i], def.type) + " = ANY(lower(" + d_.placeholder(n) + " COLLATE \"C\")::text[])";
  }

  Result<std::size_t> property(const Predicate& p) {
    if (p.property >= t_.columns.size()) {
      return make_error(WbemCode::kInvalidProperty, "predicate names property #" + std::to_string(p.property) +
                                                        " but " + t_.cls->name() + " has " +
                                                        std::to_string(t_.columns.size()));
    }
    return p.property;
  }

  Result<std::size_t> bind(SqlParam v) {
    if (params_.size() >= kMaxParams) {
      return make_error(WbemCode::kQuotaViolation, "predicate has more than " + std::to_string(kMaxParams) + " values");
    }
    params_.push_back(std::move(v));
    return params_.size();
  }

  Result<std::string> like(const Predicate& p) {
    PKG_ASSIGN_OR_RETURN(std::size_t i, property(p));
    const cim::Type type = t_.cls->property(i).type;
    // LIKE over a number or an array: SQL cannot say it the way WQL means it; admit every row.
    if (!is_text(type)) return std::string(kTrue);
    PKG_TRY(check_text(p.pattern, "LIKE pattern"));
    std::size_t backslashes = 0;
    for (auto it = p.pattern.rbegin(); it != p.pattern.rend() && *it == '\\'; ++it) ++backslashes;
    if (backslashes % 2 == 1) {
      return make_error(WbemCode::kInvalidParameter, "LIKE pattern '" + p.pattern + "' ends with a lone '\\'");
    }
    PKG_ASSIGN_OR_RETURN(std::size_t n, bind(p.pattern));
    return column_expr(d_, t_.columns[i], type) + " LIKE " + value_expr(d_, n, type) + " ESCAPE '\\'";
  }

  Result<std::string> compare(const Predicate& p) {
    using cim::CimType;
    PKG_ASSIGN_OR_RETURN(std::size_t i, property(p));
    const cim::Type type = t_.cls->property(i).type;
    const std::string& name = t_.cls->property(i).name;
    const cim::Value& v = p.value;
    if (v.is_null()) {
      return make_error(WbemCode::kInvalidParameter, "comparison of " + name + " with NULL; use IS NULL");
    }
    if (type.array || type.base == CimType::kObject) return std::string(kTrue);
    const std::string op(op_text(p.op));
    const std::string col = column_expr(d_, t_.columns[i], type);
    // Integer columns compared with a real or a huge unsigned: compare numerically without converting the value
    // to the column's type (which would round or fail).
    if (cim::is_integer(type.base) && !v.is_array() && cim::is_numeric(v.type().base)) {
      if (cim::is_real(v.type().base)) {
        PKG_ASSIGN_OR_RETURN(std::size_t n, bind(v.as_real()));
        return col + " " + op + " " + d_.placeholder(n);
      }
      if (cim::is_unsigned_integer(v.type().base) &&
          v.as_uint() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        // Every stored integer is <= INT64_MAX < v.
        const bool below = p.op == Predicate::Op::kLt || p.op == Predicate::Op::kLe || p.op == Predicate::Op::kNe;
        return below ? col + " IS NOT NULL" : std::string(kFalse);
      }
      const std::int64_t x = cim::is_signed_integer(v.type().base) ? v.as_sint()
                                                                    : static_cast<std::int64_t>(v.as_uint());
      PKG_ASSIGN_OR_RETURN(std::size_t n, bind(x));
      return col + " " + op + " " + d_.placeholder(n);
    }
    PKG_ASSIGN_OR_RETURN(SqlParam param, encode_value(v, type, name));
    PKG_ASSIGN_OR_RETURN(std::size_t n, bind(std::move(param)));
    return col + " " + op + " " + value_expr(d_, n, type);
  }

  const TableInfo& t_;
  const Dialect& d_;
  SqlParams& params_;
};

}  // namespace

Result<std::string> render_predicate(const Predicate& p, const TableInfo& table, const Dialect& d, SqlParams& params) {
  return Renderer(table, d, params).render(p, 0);
}

}  // namespace pkgcast::store
