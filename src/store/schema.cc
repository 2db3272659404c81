#include "store/schema.h"

#include <charconv>
#include <cstdio>

#include "core/strings.h"

namespace pkgcast::store {
namespace {

bool is_folded(cim::Type t) { return !t.array && (t.base == cim::CimType::kString || t.base == cim::CimType::kReference); }

std::string column_type(const Dialect& d, cim::Type t) {
  using cim::CimType;
  const bool pg = d.postgres();
  if (t.array || t.base == CimType::kObject) return "TEXT";  // JSON
  if (is_folded(t)) return pg ? "TEXT" : "TEXT COLLATE NOCASE";
  if (t.base == CimType::kBoolean) return pg ? "BOOLEAN" : "INTEGER";
  if (cim::is_real(t.base)) return pg ? "DOUBLE PRECISION" : "REAL";
  return pg ? "BIGINT" : "INTEGER";  // integers and datetimes (microseconds since the epoch)
}

// The SQL literal of a property's default, for the column's DEFAULT clause ("" when it has none): a database made
// before the property existed gets it for its old rows when the column is added, as a new instance would start.
// Defaults are scalars of the simple types (the registry's documented defaults).
std::string default_clause(const Dialect& d, const cim::PropertyDef& p) {
  const cim::Value& v = p.default_value;
  if (v.is_null() || v.type().array) return {};
  using cim::CimType;
  const CimType t = v.type().base;
  if (t == CimType::kBoolean) return std::string(" DEFAULT ") + (d.postgres() ? (v.as_bool() ? "TRUE" : "FALSE")
                                                                             : (v.as_bool() ? "1" : "0"));
  if (cim::is_signed_integer(t)) return " DEFAULT " + std::to_string(v.as_sint());
  if (cim::is_unsigned_integer(t)) return " DEFAULT " + std::to_string(v.as_uint());
  if (t == CimType::kString) {
    std::string out = " DEFAULT '";
    for (char c : v.as_string()) {
      out += c;
      if (c == '\'') out += '\'';
    }
    return out + "'";
  }
  return {};
}

// Index names live in one namespace per schema (PostgreSQL) or database (SQLite) and are limited to 63 bytes;
// long ones are replaced by a hash so two long class names cannot collide after truncation.
std::string index_name(std::string_view table, std::string_view what) {
  std::string name = "pkgcast_ix_" + std::string(table) + "_" + std::string(what);
  if (name.size() <= 63) return name;
  std::uint64_t h = 1469598103934665603ULL;
  for (char c : std::string(table) + '\0' + std::string(what)) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return "pkgcast_ix_" + std::string(buf);
}

// Columns worth an index besides the key: what the provider filters on most (design.md section 9).
bool wants_index(const cim::PropertyDef& p) { return iequals(p.name, "PackageID") || iequals(p.name, "SiteCode"); }

// Columns administrators sort large classes by (`ORDER BY SummaryDate DESC`: the latest changes first), each given
// an index on (column, key columns...) in the ORDER BY's own forms, which a one-term ordered scan walks forwards or
// backwards instead of sorting the table for every page (sql_store.cc, one_term_statements). These are the classes
// with a row per package per DP or per site, where a sort per page cannot finish; the per-package and per-DP
// classes are small enough to sort. Kept short on purpose: each index is one more page written per row change on
// the summarizer's write path, and these dates change with every status change.
struct SortIndex {
  std::string_view cls;
  std::string_view property;
};
constexpr SortIndex kSortIndexes[] = {
    {"SMS_PackageStatusDistPointsSummarizer", "SummaryDate"},
    {"SMS_PackageStatusDetailSummarizer", "SummaryDate"},
    {"SMS_DistributionDPStatus", "LastUpdateDate"},
};

bool wants_sort_index(const cim::ClassDef& cls, const cim::PropertyDef& p) {
  for (const SortIndex& s : kSortIndexes) {
    if (iequals(cls.name(), s.cls) && iequals(p.name, s.property)) return true;
  }
  return false;
}

Result<TableInfo> make_table(const cim::ClassDef& cls, const Dialect& d) {
  TableInfo t;
  t.cls = &cls;
  PKG_ASSIGN_OR_RETURN(t.table, quote_identifier(cls.name()));
  for (const auto& p : cls.properties()) {
    PKG_ASSIGN_OR_RETURN(std::string col, quote_identifier(p.name));
    if (!t.select_list.empty()) t.select_list += ", ";
    t.select_list += col;
    t.columns.push_back(std::move(col));
  }
  const std::size_t n = t.columns.size();
  std::string key_where;
  std::string order;
  std::size_t k = 0;
  for (std::size_t idx : cls.key_indices()) {
    const cim::Type type = cls.property(idx).type;
    if (k > 0) {
      key_where += " AND ";
      order += ", ";
    }
    ++k;
    key_where += column_expr(d, t.columns[idx], type) + " = " + value_expr(d, k, type);
    order += column_expr(d, t.columns[idx], type);
  }
  // A keyless class holds at most one instance (`Class=@`), so "the row with this key" is every row.
  t.key_where = key_where.empty() ? "1=1" : key_where;
  t.order_by = order.empty() ? "" : " ORDER BY " + order;
  t.select_by_key = "SELECT " + t.select_list + " FROM " + t.table + " WHERE " + t.key_where;
  t.delete_by_key = "DELETE FROM " + t.table + " WHERE " + t.key_where;

  std::string values;
  std::string sets;
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) {
      values += ", ";
      sets += ", ";
    }
    values += d.placeholder(i + 1);
    sets += t.columns[i] + " = " + d.placeholder(i + 1);
  }
  t.insert = "INSERT INTO " + t.table + " (" + t.select_list + ") VALUES (" + values + ")";
  // The update's key placeholders follow the n column values.
  std::string update_where;
  k = 0;
  for (std::size_t idx : cls.key_indices()) {
    const cim::Type type = cls.property(idx).type;
    if (k > 0) update_where += " AND ";
    ++k;
    update_where += column_expr(d, t.columns[idx], type) + " = " + value_expr(d, n + k, type);
  }
  t.update_by_key = "UPDATE " + t.table + " SET " + sets + " WHERE " + (update_where.empty() ? "1=1" : update_where);
  t.update_by_same_key = t.update_by_key;
  if (!d.postgres() && !cls.key_indices().empty()) {
    // Numbered placeholders (?NNN), so the key columns' values are skipped in the SET and bound in the WHERE.
    std::string same_key_sets;
    for (std::size_t i = 0; i < n; ++i) {
      if (cls.property(i).key) continue;
      same_key_sets += (same_key_sets.empty() ? "" : ", ") + t.columns[i] + " = ?" + std::to_string(i + 1);
    }
    std::string same_key_where;
    k = 0;
    for (std::size_t idx : cls.key_indices()) {
      same_key_where += (k > 0 ? " AND " : "") + column_expr(d, t.columns[idx], cls.property(idx).type) + " = ?" +
                        std::to_string(n + k + 1);
      ++k;
    }
    // A class whose every property is a key keeps update_by_key (with the same key bytes, nothing changes).
    if (!same_key_sets.empty()) {
      t.update_by_same_key = "UPDATE " + t.table + " SET " + same_key_sets + " WHERE " + same_key_where;
    }
  }
  if (d.postgres() && !cls.key_indices().empty()) {
    // One round trip per write: the previous row comes from the statement's snapshot (the CTE), the write goes
    // through the unique key index (ON CONFLICT infers it from the same folded expressions). The key values are
    // the insert's own parameters (property index + 1).
    std::string previous_where;
    std::string conflict;
    for (std::size_t idx : cls.key_indices()) {
      const cim::Type type = cls.property(idx).type;
      if (!previous_where.empty()) {
        previous_where += " AND ";
        conflict += ", ";
      }
      previous_where += column_expr(d, t.columns[idx], type) + " = " + value_expr(d, idx + 1, type);
      // The index column is `lower(col COLLATE "C")` with collation "C": in a conflict target the collation follows the
      // parenthesized expression, or inference finds no matching index.
      std::string expr = column_expr(d, t.columns[idx], type);
      const std::string collate = " COLLATE \"C\"";
      const bool collated = expr.size() > collate.size() && expr.ends_with(collate);
      if (collated) expr.resize(expr.size() - collate.size());
      conflict += "(" + expr + ")" + (collated ? collate : "");
    }
    std::string excluded;
    for (std::size_t i = 0; i < n; ++i) excluded += (i > 0 ? ", " : "") + t.columns[i] + " = EXCLUDED." + t.columns[i];
    const std::string head = "WITH previous AS (SELECT " + t.select_list + " FROM " + t.table + " WHERE " +
                             previous_where + "), changed AS (" + t.insert + " ON CONFLICT (" + conflict + ") ";
    const std::string tail = " RETURNING 1) SELECT " + t.select_list + " FROM previous";
    t.upsert_returning_previous = head + "DO UPDATE SET " + excluded + tail;
    t.insert_returning_previous = head + "DO NOTHING" + tail;

    // The same for many rows: one statement's executor setup (most of the server's cost of a single-row upsert
    // of a wide row) serves them all. The rows arrive as one array per column, so the text is the same for any
    // number of rows and any NULLs, and is prepared once.
    std::string arrays;
    std::string input_columns;
    std::string previous_columns;
    for (std::size_t i = 0; i < n; ++i) {
      const std::string sep = i > 0 ? ", " : "";
      arrays += sep + d.placeholder(i + 1) + "::" + column_type(d, cls.property(i).type) + "[]";
      input_columns += sep + t.columns[i];
      previous_columns += sep + "t." + t.columns[i];
    }
    std::string join_on;
    for (std::size_t idx : cls.key_indices()) {
      const cim::Type type = cls.property(idx).type;
      join_on += (join_on.empty() ? "" : " AND ") + column_expr(d, "t." + t.columns[idx], type) + " = " +
                 column_expr(d, "input." + t.columns[idx], type);
    }
    t.upsert_many_returning_previous =
        "WITH input AS (SELECT * FROM unnest(" + arrays + ") WITH ORDINALITY AS u(" + input_columns +
        ", pkgcast_row)), previous AS (SELECT " + previous_columns + ", input.pkgcast_row FROM " + t.table +
        " AS t JOIN input ON " + join_on + "), changed AS (INSERT INTO " + t.table + " (" + t.select_list +
        ") SELECT " + input_columns + " FROM input ON CONFLICT (" + conflict + ") DO UPDATE SET " + excluded +
        " RETURNING 1) SELECT * FROM previous";
    // Plain inserts and updates of many rows, in the same array form.
    std::string set_from_input;
    for (std::size_t i = 0; i < n; ++i) {
      set_from_input += (i > 0 ? ", " : "") + t.columns[i] + " = input." + t.columns[i];
    }
    t.insert_many = "INSERT INTO " + t.table + " (" + t.select_list + ") SELECT " + input_columns + " FROM unnest(" +
                    arrays + ") AS input(" + input_columns + ")";
    t.update_many = "UPDATE " + t.table + " AS t SET " + set_from_input + " FROM unnest(" + arrays + ") AS input(" +
                    input_columns + ") WHERE " + join_on;
  }
  return t;
}

// ---- migrations ----

struct Migration {
  int version;
  std::vector<std::string> sqlite;
  std::vector<std::string> postgres;
};

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> m{
      {1,
       {"CREATE TABLE pkgcast_journal (revision INTEGER PRIMARY KEY, commit_time INTEGER NOT NULL, "
        "kind INTEGER NOT NULL, class_name TEXT NOT NULL, instance_key TEXT NOT NULL, instance TEXT NOT NULL, "
        "previous TEXT)",
        "CREATE TABLE pkgcast_meta (meta_key TEXT PRIMARY KEY, meta_value TEXT NOT NULL)"},
       {"CREATE TABLE pkgcast_journal (revision BIGINT PRIMARY KEY, commit_time BIGINT NOT NULL, "
        "kind SMALLINT NOT NULL, class_name TEXT NOT NULL, instance_key TEXT NOT NULL, instance TEXT NOT NULL, "
        "previous TEXT)",
        "CREATE TABLE pkgcast_meta (meta_key TEXT COLLATE \"C\" PRIMARY KEY, meta_value TEXT NOT NULL)"}},
      // Compaction by age deletes by commit time.
      {2,
       {"CREATE INDEX pkgcast_journal_time ON pkgcast_journal (commit_time)"},
       {"CREATE INDEX pkgcast_journal_time ON pkgcast_journal (commit_time)"}},
      // PostgreSQL folds string keys and indexed strings with lower(col COLLATE "C") (ASCII only, as WQL) instead
      // of lower(col), which folded every letter in a UTF-8 database: the indexes on the old expression go, and the
      // class tables' migration makes them again on the new one (and the upserts' ON CONFLICT finds them).
      {3,
       {},
       {"DO $$ DECLARE r record; BEGIN FOR r IN SELECT indexname FROM pg_indexes WHERE schemaname = "
        "current_schema() AND indexdef LIKE '%lower(%' LOOP EXECUTE format('DROP INDEX %I', r.indexname); "
        "END LOOP; END $$"}},
  };
  return m;
}

Result<int> stored_version(Connection& conn) {
  const Dialect& d = conn.dialect();
  std::optional<std::string> text;
  PKG_TRY(conn.query("SELECT value FROM pkgcast_internal WHERE name = " + d.placeholder(1),
                     {std::string("schema_version")}, [&](const SqlRow& row) -> Result<bool> {
                       text = std::string(row.as_text(0));
                       return false;
                     }));
  if (!text) return 0;
  int v = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || end != text->data() + text->size() || v < 0) {
    return make_error(WbemCode::kFailed, "the database's schema_version '" + *text + "' is not a number");
  }
  return v;
}

Result<std::vector<std::string>> existing_columns(Connection& conn, const cim::ClassDef& cls) {
  const Dialect& d = conn.dialect();
  const std::string sql = d.postgres() ? "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                         "current_schema() AND table_name = $1"
                                       : "SELECT name FROM pragma_table_info(?)";
  std::vector<std::string> out;
  PKG_TRY(conn.query(sql, {cls.name()}, [&](const SqlRow& row) -> Result<bool> {
    out.emplace_back(row.as_text(0));
    return true;
  }));
  return out;
}

Status migrate_class_table(Connection& conn, const TableInfo& t) {
  const Dialect& d = conn.dialect();
  const cim::ClassDef& cls = *t.cls;
  PKG_ASSIGN_OR_RETURN(auto existing, existing_columns(conn, cls));
  if (existing.empty()) {
    std::string sql = "CREATE TABLE " + t.table + " (";
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      const auto& p = cls.property(i);
      if (i > 0) sql += ", ";
      sql += t.columns[i] + " " + column_type(d, p.type) + (p.key ? " NOT NULL" : "") + default_clause(d, p);
    }
    // SQLite's primary key inherits the columns' NOCASE collation, so keys are unique without regard to case;
    // PostgreSQL gets the same rule from a unique index on the folded key below.
    if (!d.postgres() && !cls.key_indices().empty()) {
      sql += ", PRIMARY KEY (";
      for (std::size_t k = 0; k < cls.key_indices().size(); ++k) sql += (k ? ", " : "") + t.columns[cls.key_indices()[k]];
      sql += ")";
    }
    sql += ")";
    PKG_TRY(conn.exec(sql));
  } else {
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      const auto& p = cls.property(i);
      bool present = false;
      for (const auto& c : existing) present = present || iequals(c, p.name);
      if (present) continue;
      if (p.key) {
        return make_error(WbemCode::kNotSupported, "cannot migrate table of class '" + cls.name() +
                                                       "': its key gained property '" + p.name + "'");
      }
      PKG_TRY(conn.exec("ALTER TABLE " + t.table + " ADD COLUMN " + t.columns[i] + " " + column_type(d, p.type) +
                        default_clause(d, p)));
    }
  }
  if (d.postgres() && !cls.key_indices().empty()) {
    std::string cols;
    for (std::size_t idx : cls.key_indices()) {
      cols += (cols.empty() ? "(" : ", (") + column_expr(d, t.columns[idx], cls.property(idx).type) + ")";
    }
    PKG_ASSIGN_OR_RETURN(std::string name, quote_identifier(index_name(cls.name(), "key")));
    PKG_TRY(conn.exec("CREATE UNIQUE INDEX IF NOT EXISTS " + name + " ON " + t.table + " (" + cols + ")"));
  }
  // These indexes are never UNIQUE: the key is a table's only uniqueness rule, which is what lets the writer send
  // a batch's writes of different rows in any order (writer.cc, RowWrites).
  for (std::size_t i = 0; i < t.columns.size(); ++i) {
    const auto& p = cls.property(i);
    const bool leads_key = !cls.key_indices().empty() && cls.key_indices()[0] == i;
    if (!wants_index(p) || leads_key) continue;
    PKG_ASSIGN_OR_RETURN(std::string name, quote_identifier(index_name(cls.name(), p.name)));
    PKG_TRY(conn.exec("CREATE INDEX IF NOT EXISTS " + name + " ON " + t.table + " ((" +
                      column_expr(d, t.columns[i], p.type) + "))"));
  }
  // Sort indexes: (col, key...) in the forms an ordered scan's ORDER BY uses, so that the database matches them
  // (NOCASE columns on SQLite, lower(col COLLATE "C") COLLATE "C" on PostgreSQL). A database made before a column was listed
  // gets its index here on the next open, like any missing index.
  for (std::size_t i = 0; i < t.columns.size(); ++i) {
    const auto& p = cls.property(i);
    if (!wants_sort_index(cls, p) || p.type.array || p.type.base == cim::CimType::kObject) continue;
    std::string cols = "(" + column_expr(d, t.columns[i], p.type) + ")";
    for (std::size_t idx : cls.key_indices()) {
      cols += ", (" + column_expr(d, t.columns[idx], cls.property(idx).type) + ")";
    }
    PKG_ASSIGN_OR_RETURN(std::string name, quote_identifier(index_name(cls.name(), p.name + "_order")));
    PKG_TRY(conn.exec("CREATE INDEX IF NOT EXISTS " + name + " ON " + t.table + " (" + cols + ")"));
  }
  return ok_status();
}

Status migrate_in_txn(Connection& conn, const Schema& schema) {
  const Dialect& d = conn.dialect();
  PKG_TRY(conn.exec("CREATE TABLE IF NOT EXISTS pkgcast_internal (name TEXT PRIMARY KEY, value TEXT NOT NULL)"));
  PKG_ASSIGN_OR_RETURN(int version, stored_version(conn));
  if (version > kSchemaVersion) {
    return make_error(WbemCode::kNotSupported, "the database has schema version " + std::to_string(version) +
                                                   ", newer than this pkgcast understands (" +
                                                   std::to_string(kSchemaVersion) + "); upgrade pkgcast");
  }
  for (const Migration& m : migrations()) {
    if (m.version <= version) continue;
    for (const auto& sql : d.postgres() ? m.postgres : m.sqlite) PKG_TRY(conn.exec(sql));
    version = m.version;
  }
  PKG_TRY(conn.exec("INSERT INTO pkgcast_internal (name, value) VALUES (" + d.placeholder(1) + ", " +
                        d.placeholder(2) + ") ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    {std::string("schema_version"), std::to_string(version)}));
  for (const TableInfo& t : schema.tables()) PKG_TRY(migrate_class_table(conn, t));
  return ok_status();
}

}  // namespace

bool has_table(const cim::ClassDef& cls) {
  return !cls.abstract() && !cls.is_event_class() && cls.name().rfind("__", 0) != 0;
}

// lower() folds by its argument's collation: under "C" it folds ASCII letters only, as WQL and SQLite's NOCASE do;
// under the database's own (C.UTF-8, en_US.UTF-8, ...) it would fold every letter, so that 'Ü' and 'ü' became one
// key, `<> 'Über'` left out 'über' and ORDER BY interleaved them. The outer COLLATE makes the result compare by
// bytes whatever it meets.
std::string column_expr(const Dialect& d, const std::string& quoted_column, cim::Type type) {
  if (d.postgres() && is_folded(type)) return "lower(" + quoted_column + " COLLATE \"C\") COLLATE \"C\"";
  return quoted_column;
}

std::string value_expr(const Dialect& d, std::size_t placeholder, cim::Type type) {
  if (d.postgres() && is_folded(type)) return "lower(" + d.placeholder(placeholder) + " COLLATE \"C\")";
  return d.placeholder(placeholder);
}

void append_pg_text(std::string& out, const SqlParam& value) {
  char buf[64];
  if (const auto* n = std::get_if<std::int64_t>(&value)) {
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *n);
    out.append(buf, ec == std::errc() ? end : buf);
  } else if (const auto* r = std::get_if<double>(&value)) {
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *r);
    out.append(buf, ec == std::errc() ? end : buf);
  } else if (const auto* b = std::get_if<bool>(&value)) {
    out += *b ? 't' : 'f';
  } else if (const auto* text = std::get_if<std::string>(&value)) {
    out += *text;
  }
}

std::string pg_array_literal(const std::vector<const SqlParam*>& values) {
  std::string out = "{";
  std::string text;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    const SqlParam& p = *values[i];
    if (std::holds_alternative<SqlNull>(p)) {
      out += "NULL";
      continue;
    }
    text.clear();
    const std::string* as_is = std::get_if<std::string>(&p);
    if (as_is == nullptr) append_pg_text(text, p);
    const std::string_view element = as_is != nullptr ? std::string_view(*as_is) : std::string_view(text);
    out += '"';
    for (std::size_t at = 0; at < element.size();) {
      const std::size_t special = std::min(element.find_first_of("\"\\", at), element.size());
      out.append(element.substr(at, special - at));
      if (special == element.size()) break;
      out += '\\';
      out += element[special];
      at = special + 1;
    }
    out += '"';
  }
  return out + "}";
}

Result<Schema> Schema::build(const cim::ClassRegistry& registry, const Dialect& dialect) {
  Schema s;
  s.registry_ = &registry;
  s.dialect_ = &dialect;
  for (const cim::ClassDef* cls : registry.all()) {
    if (!has_table(*cls)) continue;
    if (starts_with_icase(cls->name(), "pkgcast_")) {
      return make_error(WbemCode::kInvalidClass, "class name '" + cls->name() + "' uses the reserved prefix pkgcast_");
    }
    PKG_ASSIGN_OR_RETURN(TableInfo t, make_table(*cls, dialect));
    s.by_class_.emplace(cls, s.tables_.size());
    s.tables_.push_back(std::move(t));
  }
  return s;
}

Result<const TableInfo*> Schema::table(const cim::ClassDef& cls) const {
  if (auto it = by_class_.find(&cls); it != by_class_.end()) return &tables_[it->second];
  if (const cim::ClassDef* mine = registry_->find(cls.name())) {
    auto it = by_class_.find(mine);
    if (it != by_class_.end() && mine->properties().size() == cls.properties().size()) {
      bool same = true;
      for (std::size_t i = 0; i < cls.properties().size() && same; ++i) {
        same = iequals(mine->property(i).name, cls.property(i).name) && mine->property(i).type == cls.property(i).type;
      }
      if (same) return &tables_[it->second];
    }
  }
  return make_error(WbemCode::kInvalidClass, "class '" + cls.name() + "' has no table in this store");
}

Status migrate(Connection& conn, const Schema& schema) {
  PKG_TRY(conn.begin(true));
  Status st = migrate_in_txn(conn, schema);
  if (!st.ok()) {
    (void)conn.rollback();
    return st;
  }
  return conn.commit();
}

Result<std::string> quote_identifier(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.find('\0') != std::string_view::npos) {
    return make_error(WbemCode::kInvalidParameter,
                      "name '" + std::string(name.substr(0, 80)) + "' cannot be a database identifier (1..63 bytes, no NUL)");
  }
  std::string out = "\"";
  for (char c : name) {
    out += c;
    if (c == '"') out += '"';
  }
  out += '"';
  return out;
}

}  // namespace pkgcast::store
