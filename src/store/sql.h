// The small SQL abstraction both backends implement, so that everything above it (schema, row mapping, the
// batching writer, the journal, predicate rendering) is written once. Internal to src/store.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.h"

namespace pkgcast::store {

// A bound parameter. Values are never interpolated into SQL text.
struct SqlNull {};
using SqlParam = std::variant<SqlNull, std::int64_t, double, bool, std::string>;
using SqlParams = std::vector<SqlParam>;

// One result row; only valid inside the callback that receives it.
class SqlRow {
 public:
  virtual ~SqlRow() = default;
  virtual int columns() const = 0;
  virtual bool is_null(int col) const = 0;
  virtual Result<std::int64_t> as_int(int col) const = 0;
  virtual Result<double> as_real(int col) const = 0;
  virtual Result<bool> as_bool(int col) const = 0;
  virtual std::string_view as_text(int col) const = 0;
};

// Return false to stop reading rows.
using RowCallback = std::function<Result<bool>(const SqlRow&)>;

// What differs between the SQL dialects, as data and small functions.
struct Dialect {
  enum class Backend : std::uint8_t { kSqlite, kPostgres };
  Backend backend = Backend::kSqlite;
  std::string_view name;  // "sqlite" or "postgresql"

  bool postgres() const { return backend == Backend::kPostgres; }
  // PostgreSQL numbers its placeholders ($1, $2); SQLite's are positional (?).
  std::string placeholder(std::size_t one_based) const {
    return postgres() ? "$" + std::to_string(one_based) : std::string("?");
  }
};

// Thread safety: a connection is used by one thread at a time (the pool and the writer guarantee it).
class Connection {
 public:
  virtual ~Connection() = default;
  virtual const Dialect& dialect() const = 0;

  // Runs one statement; returns the number of rows it changed.
  virtual Result<std::int64_t> exec(const std::string& sql, const SqlParams& params = {}) = 0;
  // Runs a query whose result is small (a lookup by key); rows in order.
  virtual Status query(const std::string& sql, const SqlParams& params, const RowCallback& on_row) = 0;
  // Runs a query whose result may be large, holding only a bounded number of rows in memory at a time.
  // Stopping early (the callback returns false) does not read the remaining rows.
  virtual Status stream(const std::string& sql, const SqlParams& params, const RowCallback& on_row) = 0;

  // Queues a statement whose result nobody reads (a SAVEPOINT, a journal row) to run before the next statement on
  // this connection. PostgreSQL sends the queue and that statement in one round trip (pipeline mode); once a
  // queued statement has failed, every later call but rollback() fails with its error, so a transaction in which
  // something failed unseen can never commit. The default runs the statement at once.
  virtual Status defer(const std::string& sql, SqlParams params = {}) {
    auto r = exec(sql, params);
    if (!r.ok()) return std::move(r).error();
    return ok_status();
  }

  // As defer(), for a statement whose rows someone wants: `on_row` receives them when its answer arrives, which is
  // before the next exec/query/stream/flush returns (PostgreSQL) or at once (the default). A failure of the
  // callback counts as the statement's failure.
  virtual Status defer_query(const std::string& sql, SqlParams params, RowCallback on_row) {
    return query(sql, params, on_row);
  }
  // As defer(), for a write that must change exactly `rows` rows (an UPDATE or DELETE of rows the writer knows
  // exist, an INSERT): any other count fails it as a failing statement does, so a writer whose cache no longer
  // agrees with the database (a row changed outside pkgcast) fails its batch instead of losing a write.
  virtual Status defer_write(const std::string& sql, SqlParams params, std::int64_t rows) {
    auto changed = exec(sql, params);
    if (!changed.ok()) return std::move(changed).error();
    if (*changed != rows) return unexpected_row_count(sql, *changed, rows);
    return ok_status();
  }
  static Error unexpected_row_count(const std::string& sql, std::int64_t changed, std::int64_t expected) {
    return make_error(WbemCode::kFailed, "a write changed " + std::to_string(changed) + " rows where the store expected " +
                                             std::to_string(expected) +
                                             ": the database no longer holds what the writer's cache does (was it "
                                             "changed outside pkgcast?) (" + sql.substr(0, 80) + ")");
  }

  // Sends whatever defer() queued and waits for the answers (a no-op where defer runs at once).
  virtual Status flush() { return ok_status(); }

  // Transactions. `writer` asks for a write transaction that takes the write lock at once.
  virtual Status begin(bool writer) = 0;
  virtual Status commit() = 0;
  // Also drops whatever defer() queued and clears a queued statement's failure.
  virtual Status rollback() = 0;

  virtual bool in_transaction() const = 0;
  // True when the connection is lost and must be replaced (a PostgreSQL server restart).
  virtual bool broken() const { return false; }

  // COMMIT in two halves, so that a caller can prepare its next transaction while the server commits this one.
  // start_commit() sends COMMIT after whatever defer() queued; finish_commit() answers its outcome. Between the two
  // any call may be made (the next transaction's BEGIN and statements): the first one that talks to the server
  // reads the commit's answer first and keeps it for finish_commit(), so statements still run in the order they
  // were issued. Callbacks of statements deferred before start_commit() may run as late as finish_commit(). Where
  // commit_in_background() is false (the default) start_commit() commits at once.
  virtual bool commit_in_background() const { return false; }
  virtual Status start_commit() {
    started_commit_ = commit();
    return ok_status();
  }
  virtual Status finish_commit() {
    Status outcome = started_commit_.value_or(
        Status(make_error(WbemCode::kFailed, "finish_commit() without start_commit()")));
    started_commit_.reset();
    return outcome;
  }

 private:
  std::optional<Status> started_commit_;  // the default start_commit()'s outcome, until finish_commit()
};

// Identifier quoting: "name" with embedded quotes doubled. Names longer than 63 bytes or containing NUL are
// refused (PostgreSQL would truncate them silently).
Result<std::string> quote_identifier(std::string_view name);

}  // namespace pkgcast::store
