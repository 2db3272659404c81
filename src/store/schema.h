// The database schema, derived from the class registry, and the migrations that bring a database to it.
// Internal to src/store; docs/storage.md states the rules for other implementations.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "cim/class_def.h"
#include "core/result.h"
#include "store/sql.h"

namespace pkgcast::store {

// The schema version this code writes. Migrations 1..kSchemaVersion create the internal tables; class tables
// follow the registry on every open instead (ADD COLUMN for new properties).
inline constexpr int kSchemaVersion = 3;

// Internal tables.
inline constexpr std::string_view kInternalTable = "pkgcast_internal";  // name -> value: schema_version, ...
inline constexpr std::string_view kJournalTable = "pkgcast_journal";
inline constexpr std::string_view kMetaTable = "pkgcast_meta";

// One class table and the statements the store runs on it. Placeholders are the dialect's.
struct TableInfo {
  const cim::ClassDef* cls = nullptr;
  std::string table;                  // quoted
  std::vector<std::string> columns;   // quoted, one per property, in property order
  std::string select_list;            // every column, in property order
  std::string key_where;              // key columns = params 1..k (case-folded for strings)
  std::string order_by;               // " ORDER BY <key columns>", or "" for a keyless class
  std::string select_by_key;          // SELECT select_list FROM table WHERE key_where
  std::string insert;                 // params: every property in order
  std::string update_by_key;          // params: every property, then the key
  // As update_by_key, for a row whose key text stays byte for byte the same: SQLite's leaves the key columns out
  // of its SET, so it does not rewrite the primary key's index entry (SQLite rewrites an index whose columns are
  // SET, whatever the values). PostgreSQL's is update_by_key (it compares values).
  std::string update_by_same_key;
  std::string delete_by_key;          // params: the key
  // PostgreSQL, keyed classes: insert-or-update and insert-if-absent in one statement that answers the row as it
  // was before (no row: there was none). Params as `insert`. Empty elsewhere (SQLite runs select then write).
  std::string upsert_returning_previous;
  std::string insert_returning_previous;
  // PostgreSQL, keyed classes: upsert_returning_previous for many rows in one statement. Param i (1-based) is the
  // array of column i's values, one element per row (text array literals; see pg_array_literal); rows must have
  // distinct keys. Each previous row answers its columns, then the 1-based position of its row in the arrays.
  std::string upsert_many_returning_previous;
  // PostgreSQL, keyed classes: `insert` and `update_by_key` for many rows (distinct keys), params as above.
  std::string insert_many;
  std::string update_many;
};

// Appends the text form in which a non-NULL parameter travels to PostgreSQL (numbers in shortest round-trip form,
// booleans as t/f, text as it is): one definition for single parameters and array elements alike.
void append_pg_text(std::string& out, const SqlParam& value);

// The text of a PostgreSQL array literal of `values` (NULL elements unquoted, every other element quoted), in the
// text form each value travels in as a single parameter.
std::string pg_array_literal(const std::vector<const SqlParam*>& values);

// True when the class gets a table: concrete, not an event class, not a system (__) class.
bool has_table(const cim::ClassDef& cls);

// The expression a predicate or ORDER BY uses for a column: strings are compared without regard to ASCII case
// (SQLite: the column's NOCASE collation; PostgreSQL: lower(col COLLATE "C") COLLATE "C", ASCII letters only,
// which the expression indexes serve).
std::string column_expr(const Dialect& d, const std::string& quoted_column, cim::Type type);
// The matching expression for a bound value.
std::string value_expr(const Dialect& d, std::size_t placeholder, cim::Type type);

// Thread safety: immutable after build(); shared by every thread.
class Schema {
 public:
  static Result<Schema> build(const cim::ClassRegistry& registry, const Dialect& dialect);

  // The table of `cls`, found by identity or, for a class of another registry, by name with the same properties.
  // WBEM_E_INVALID_CLASS when the class has no table here.
  Result<const TableInfo*> table(const cim::ClassDef& cls) const;
  const std::vector<TableInfo>& tables() const { return tables_; }
  const cim::ClassRegistry& registry() const { return *registry_; }
  const Dialect& dialect() const { return *dialect_; }

 private:
  const cim::ClassRegistry* registry_ = nullptr;
  const Dialect* dialect_ = nullptr;
  std::vector<TableInfo> tables_;
  std::unordered_map<const cim::ClassDef*, std::size_t> by_class_;
};

// Brings the database to this code's schema, in one transaction on `conn`: internal-table migrations from the
// stored schema_version, then every class table created or given its missing columns and indexes. A database
// whose schema_version is newer than kSchemaVersion is refused (WBEM_E_NOT_SUPPORTED) and left unchanged.
Status migrate(Connection& conn, const Schema& schema);

}  // namespace pkgcast::store
