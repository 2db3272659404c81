// SQLite behind the Connection interface.
//
// Why these settings:
// - SQLITE_OPEN_NOMUTEX (multi-thread mode): each connection is used by one thread at a time (the writer owns one,
//   readers take one from the pool), so SQLite's per-connection mutex would be pure overhead.
// - WAL: readers never block the writer and the writer never blocks readers; each reader sees the last commit.
// - synchronous=FULL: the WAL is fsynced at every commit, so a command acknowledged after COMMIT survives a power
//   cut, not only a process crash (NORMAL would lose the last commits on power loss). The batching writer pays
//   one fsync per batch, not per change, which is what keeps FULL affordable.
// - busy_timeout: a second process (a backup, the sqlite3 shell) holding a lock briefly delays us instead of
//   failing the batch.
// - temp_store=MEMORY: the writer runs each command under a savepoint, and SQLite keeps a savepoint's
//   sub-journal (the original of every page first changed under it) in a temporary file once it passes 64 KiB;
//   in a file, that was two pwrite calls per page, some forty system calls per status change. In memory it is a
//   copy.
#include <sqlite3.h>

#include <cstring>

#include <unordered_map>

#include "store/backends.h"

namespace pkgcast::store {
namespace {

constexpr int kBusyTimeoutMs = 10'000;
constexpr std::size_t kMaxCachedStatements = 256;

Error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  const int primary = rc & 0xff;
  WbemCode code = WbemCode::kFailed;
  if (primary == SQLITE_FULL) code = WbemCode::kOutOfDiskSpace;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) code = WbemCode::kServerTooBusy;
  if (primary == SQLITE_CONSTRAINT) code = WbemCode::kAlreadyExists;
  std::string msg = "sqlite: ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  // "unable to open database file" and "disk I/O error" say nothing of why: the system's errno does.
  if (const int sys = db != nullptr ? sqlite3_system_errno(db) : 0;
      sys != 0 && (primary == SQLITE_CANTOPEN || primary == SQLITE_IOERR || primary == SQLITE_READONLY)) {
    msg += ": ";
    msg += std::strerror(sys);
  }
  msg += " (";
  msg += what.substr(0, 80);
  msg += ")";
  return make_error(code, std::move(msg));
}

class SqliteRow final : public SqlRow {
 public:
  explicit SqliteRow(sqlite3_stmt* stmt) : stmt_(stmt) {}
  int columns() const override { return sqlite3_column_count(stmt_); }
  bool is_null(int col) const override { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  Result<std::int64_t> as_int(int col) const override {
    if (sqlite3_column_type(stmt_, col) != SQLITE_INTEGER) return bad(col, "an integer");
    return static_cast<std::int64_t>(sqlite3_column_int64(stmt_, col));
  }
  Result<double> as_real(int col) const override {
    const int t = sqlite3_column_type(stmt_, col);
    if (t != SQLITE_FLOAT && t != SQLITE_INTEGER) return bad(col, "a real");
    return sqlite3_column_double(stmt_, col);
  }
  Result<bool> as_bool(int col) const override {
    PKG_ASSIGN_OR_RETURN(std::int64_t v, as_int(col));
    return v != 0;
  }
  std::string_view as_text(int col) const override {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    const int n = sqlite3_column_bytes(stmt_, col);
    return p == nullptr ? std::string_view() : std::string_view(p, static_cast<std::size_t>(n));
  }

 private:
  Error bad(int col, std::string_view want) const {
    return make_error(WbemCode::kFailed, std::string("sqlite: column '") + sqlite3_column_name(stmt_, col) +
                                             "' does not hold " + std::string(want) + " (corrupt database?)");
  }
  sqlite3_stmt* stmt_;
};

class SqliteConnection final : public Connection {
 public:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  ~SqliteConnection() override {
    for (auto& [sql, cached] : cache_) sqlite3_finalize(cached.stmt);
    sqlite3_close_v2(db_);
  }

  const Dialect& dialect() const override { return sqlite_dialect(); }

  Result<std::int64_t> exec(const std::string& sql, const SqlParams& params) override {
    PKG_TRY(run(sql, params, [](const SqlRow&) -> Result<bool> { return true; }));
    return static_cast<std::int64_t>(sqlite3_changes64(db_));
  }
  Status query(const std::string& sql, const SqlParams& params, const RowCallback& on_row) override {
    return run(sql, params, on_row);
  }
  // SQLite steps one row at a time, so every query streams.
  Status stream(const std::string& sql, const SqlParams& params, const RowCallback& on_row) override {
    return run(sql, params, on_row);
  }

  Status begin(bool writer) override {
    // IMMEDIATE takes the write lock at BEGIN, so a batch never fails half-way on a lock upgrade.
    return simple(writer ? "BEGIN IMMEDIATE" : "BEGIN");
  }
  Status commit() override { return simple("COMMIT"); }
  Status rollback() override { return simple("ROLLBACK"); }
  bool in_transaction() const override { return sqlite3_get_autocommit(db_) == 0; }

  Status configure() {
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    PKG_TRY(simple("PRAGMA journal_mode=WAL"));
    PKG_TRY(simple("PRAGMA synchronous=FULL"));
    PKG_TRY(simple("PRAGMA temp_store=MEMORY"));
    return ok_status();
  }

 private:
  struct Cached {
    sqlite3_stmt* stmt = nullptr;
    bool busy = false;
  };

  Status simple(const std::string& sql) {
    auto r = exec(sql, {});
    if (!r.ok()) return std::move(r).error();
    return ok_status();
  }

  Status bind(sqlite3_stmt* stmt, const SqlParams& params, const std::string& sql) {
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int idx = static_cast<int>(i + 1);
      const SqlParam& p = params[i];
      int rc = SQLITE_OK;
      if (std::holds_alternative<SqlNull>(p)) {
        rc = sqlite3_bind_null(stmt, idx);
      } else if (const auto* n = std::get_if<std::int64_t>(&p)) {
        rc = sqlite3_bind_int64(stmt, idx, *n);
      } else if (const auto* d = std::get_if<double>(&p)) {
        rc = sqlite3_bind_double(stmt, idx, *d);
      } else if (const auto* b = std::get_if<bool>(&p)) {
        rc = sqlite3_bind_int(stmt, idx, *b ? 1 : 0);
      } else {
        const auto& s = std::get<std::string>(p);
        rc = sqlite3_bind_text64(stmt, idx, s.data(), s.size(), SQLITE_STATIC, SQLITE_UTF8);
      }
      if (rc != SQLITE_OK) return sqlite_error(db_, rc, sql);
    }
    return ok_status();
  }

  // Prepared statements are cached per connection; a statement already running (a nested query of the same
  // text from inside a row callback) gets a fresh, uncached one.
  Status run(const std::string& sql, const SqlParams& params, const RowCallback& on_row) {
    Cached* cached = nullptr;
    sqlite3_stmt* stmt = nullptr;
    if (auto it = cache_.find(sql); it != cache_.end() && !it->second.busy) {
      cached = &it->second;
      stmt = cached->stmt;
    } else {
      // Scans render their own SQL per predicate shape; the cache keeps the first few hundred shapes only.
      const bool cacheable = it == cache_.end() && cache_.size() < kMaxCachedStatements;
      const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                        cacheable ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
      if (rc != SQLITE_OK) return sqlite_error(db_, rc, sql);
      if (cacheable) cached = &cache_.emplace(sql, Cached{stmt, false}).first->second;
    }
    if (cached != nullptr) cached->busy = true;
    Status result = step_all(stmt, params, sql, on_row);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (cached != nullptr) {
      cached->busy = false;
    } else {
      sqlite3_finalize(stmt);
    }
    return result;
  }

  Status step_all(sqlite3_stmt* stmt, const SqlParams& params, const std::string& sql, const RowCallback& on_row) {
    if (static_cast<std::size_t>(sqlite3_bind_parameter_count(stmt)) != params.size()) {
      return make_error(WbemCode::kFailed, "sqlite: parameter count mismatch (" + sql.substr(0, 80) + ")");
    }
    PKG_TRY(bind(stmt, params, sql));
    SqliteRow row(stmt);
    for (;;) {
      const int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) return ok_status();
      if (rc != SQLITE_ROW) return sqlite_error(db_, rc, sql);
      PKG_ASSIGN_OR_RETURN(bool more, on_row(row));
      if (!more) return ok_status();
    }
  }


  sqlite3* db_;
  std::unordered_map<std::string, Cached> cache_;
};

}  // namespace

const Dialect& sqlite_dialect() {
  static const Dialect d{Dialect::Backend::kSqlite, "sqlite"};
  return d;
}

Result<std::unique_ptr<Connection>> open_sqlite_connection(const std::string& path) {
  if (path.empty()) return make_error(WbemCode::kInvalidParameter, "an SQLite database needs a file path");
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    Error e = sqlite_error(db, rc, "open " + path);
    sqlite3_close_v2(db);
    return e;
  }
  sqlite3_extended_result_codes(db, 1);
  auto conn = std::make_unique<SqliteConnection>(db);
  // The file is opened lazily, by the first statement: its errors name the file here.
  if (Status s = conn->configure(); !s.ok()) {
    return Error{s.error().code, "SQLite database '" + path + "': " + s.error().message};
  }
  return std::unique_ptr<Connection>(std::move(conn));
}

}  // namespace pkgcast::store
