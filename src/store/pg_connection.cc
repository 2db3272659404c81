// PostgreSQL (libpq) behind the Connection interface.
//
// Parameters travel separately from the SQL text, typed, in text format. Statements are prepared once per
// connection (a bounded cache keyed by text and parameter types). Statements queued with defer()/defer_query() (the
// writer's writes, savepoints and journal rows) travel in pipeline mode with the next statement, so a batch of
// writes costs a few round trips rather than one per statement. Inside a transaction,
// large results are read through a cursor (DECLARE ... NO SCROLL CURSOR; FETCH n) rather than single-row mode: a
// cursor can stop early without cancelling the statement, which matters inside the writer's transaction, where a
// cancel would abort the whole batch, and lets other statements run on the same connection between fetches (a
// scan's callback may look rows up). A reader's scan outside any transaction uses single-row mode: one round trip.
#include <libpq-fe.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/backends.h"
#include "store/schema.h"

namespace pkgcast::store {
namespace {

// Type OIDs from pg_type (stable since PostgreSQL 7).
constexpr Oid kBoolOid = 16;
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kFloat8Oid = 701;
constexpr int kFetchRows = 512;

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

// How long a statement waits for a lock another session holds (SQLite's busy timeout is the same).
constexpr std::chrono::milliseconds kLockWait{10'000};

WbemCode code_for_sqlstate(std::string_view state) {
  if (state == "53100") return WbemCode::kOutOfDiskSpace;            // disk_full
  if (state == "23505") return WbemCode::kAlreadyExists;             // unique_violation
  if (state.substr(0, 2) == "53") return WbemCode::kServerTooBusy;   // insufficient resources
  if (state == "57014") return WbemCode::kTimedOut;                  // query_canceled
  if (state == "55P03") return WbemCode::kServerTooBusy;             // lock_not_available (lock_timeout)
  if (state == "22021" || state == "22P05") return WbemCode::kInvalidParameter;  // bad encoding
  return WbemCode::kFailed;
}

class PgRow final : public SqlRow {
 public:
  PgRow(const PGresult* res, int row) : res_(res), row_(row) {}
  int columns() const override { return PQnfields(res_); }
  bool is_null(int col) const override { return PQgetisnull(res_, row_, col) != 0; }
  Result<std::int64_t> as_int(int col) const override {
    const std::string_view s = as_text(col);
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return bad(col, "an integer");
    return v;
  }
  Result<double> as_real(int col) const override {
    const std::string text(as_text(col));
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size()) return bad(col, "a real");
    return v;
  }
  Result<bool> as_bool(int col) const override {
    const std::string_view s = as_text(col);
    if (s == "t") return true;
    if (s == "f") return false;
    return bad(col, "a boolean");
  }
  std::string_view as_text(int col) const override {
    return {PQgetvalue(res_, row_, col), static_cast<std::size_t>(PQgetlength(res_, row_, col))};
  }

 private:
  Error bad(int col, std::string_view want) const {
    return make_error(WbemCode::kFailed, std::string("postgresql: column '") + PQfname(res_, col) +
                                             "' does not hold " + std::string(want));
  }
  const PGresult* res_;
  int row_;
};

// Text-format parameter arrays for PQexecParams; owns the text of numbers.
struct PgParams {
  std::vector<Oid> types;
  std::vector<std::string> storage;
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;

  explicit PgParams(const SqlParams& params) {
    storage.resize(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      const SqlParam& p = params[i];
      Oid type = 0;
      bool null = false;
      if (std::holds_alternative<SqlNull>(p)) {
        null = true;
      } else {
        type = std::holds_alternative<std::int64_t>(p) ? kInt8Oid
               : std::holds_alternative<double>(p)     ? kFloat8Oid
               : std::holds_alternative<bool>(p)       ? kBoolOid
                                                       : kTextOid;
        append_pg_text(storage[i], p);
      }
      types.push_back(type);
      values.push_back(null ? nullptr : storage[i].c_str());
      lengths.push_back(static_cast<int>(storage[i].size()));
      formats.push_back(0);
    }
  }
};

void ignore_notice(void*, const char*) {}

class PgConnection final : public Connection {
 public:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  ~PgConnection() override { PQfinish(conn_); }

  const Dialect& dialect() const override { return pg_dialect(); }

  Result<std::int64_t> exec(const std::string& sql, const SqlParams& params) override {
    PKG_ASSIGN_OR_RETURN(ResultPtr res, run(sql, params));
    const char* n = PQcmdTuples(res.get());
    return n != nullptr && *n != '\0' ? std::strtoll(n, nullptr, 10) : 0;
  }

  Status query(const std::string& sql, const SqlParams& params, const RowCallback& on_row) override {
    PKG_ASSIGN_OR_RETURN(ResultPtr res, run(sql, params));
    return deliver(res.get(), on_row);
  }

  Status stream(const std::string& sql, const SqlParams& params, const RowCallback& on_row) override {
    // Outside a transaction (a reader's scan) one statement is its own snapshot: single-row mode streams it in
    // one round trip. Stopping early reads the rest without delivering it: a cancel could race with the
    // connection's next statement. Inside a transaction (the writer's batch, a reader's multi-statement
    // snapshot), a cursor is used so the scan can stop without touching the transaction.
    PKG_TRY(flush_deferred());
    if (!in_transaction()) return stream_single_rows(sql, params, on_row);
    const std::string cursor = "pkgcast_cursor_" + std::to_string(++cursor_seq_);
    return fetch_all(cursor, sql, params, on_row);
  }

  Status defer(const std::string& sql, SqlParams params) override { return defer_query(sql, std::move(params), {}); }

  Status defer_query(const std::string& sql, SqlParams params, RowCallback on_row) override {
    if (deferred_error_) return *deferred_error_;
    if (deferred_.size() >= kMaxDeferred) PKG_TRY(flush_deferred());
    deferred_.push_back(Deferred{sql, std::move(params), std::move(on_row), -1});
    return ok_status();
  }

  Status defer_write(const std::string& sql, SqlParams params, std::int64_t rows) override {
    if (deferred_error_) return *deferred_error_;
    if (deferred_.size() >= kMaxDeferred) PKG_TRY(flush_deferred());
    deferred_.push_back(Deferred{sql, std::move(params), {}, rows});
    return ok_status();
  }

  Status flush() override { return flush_deferred(); }

  Status begin(bool writer) override {
    // The writer's BEGIN travels with the batch's first statement.
    if (writer) return defer("BEGIN", {});
    // Readers get a snapshot for the whole transaction, so a journal read and its compaction check agree.
    return simple("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  }
  Status commit() override {
    PKG_ASSIGN_OR_RETURN(ResultPtr res, run("COMMIT", {}, /*cacheable=*/false));
    // COMMIT of a transaction that failed earlier answers "ROLLBACK" without an error.
    if (std::string_view(PQcmdStatus(res.get())) != "COMMIT") {
      return make_error(WbemCode::kFailed, "postgresql: the transaction was rolled back at COMMIT");
    }
    return ok_status();
  }
  Status rollback() override {
    deferred_.clear();
    deferred_error_.reset();
    return simple("ROLLBACK");
  }

  bool commit_in_background() const override { return true; }
  // Sends the queue and COMMIT with one sync, and returns without reading the answers.
  Status start_commit() override {
    drain_started_commit();
    commit_outcome_.reset();
    if (deferred_error_) {
      commit_outcome_ = Status(*deferred_error_);
      return ok_status();
    }
    if (lost_) {
      commit_outcome_ = Status(make_error(WbemCode::kFailed, "postgresql: the connection was lost"));
      return ok_status();
    }
    static const std::string kCommit = "COMMIT";
    auto flight = std::make_unique<InFlight>();
    Statement commit{&kCommit, &flight->no_params, nullptr, false};
    if (Status sent = send_pipeline(*flight, &commit); !sent.ok()) {
      commit_outcome_ = sent;
      return ok_status();
    }
    started_commit_ = std::move(flight);
    return ok_status();
  }
  Status finish_commit() override {
    drain_started_commit();
    Status outcome = commit_outcome_.value_or(
        Status(make_error(WbemCode::kFailed, "postgresql: finish_commit() without start_commit()")));
    commit_outcome_.reset();
    return outcome;
  }
  // Queued statements count: they belong to a transaction that rollback() must discard.
  bool in_transaction() const override { return !deferred_.empty() || PQtransactionStatus(conn_) != PQTRANS_IDLE; }
  bool broken() const override { return lost_ || PQstatus(conn_) == CONNECTION_BAD; }

 private:
  // Statements prepared on this connection, by text and parameter types (a NULL parameter has no type, so the
  // same text with a NULL in another place is another statement). Bounded: text beyond it runs unprepared.
  static constexpr std::size_t kMaxPrepared = 256;
  // Queued statements; the queue is sent when it is this long even if nothing else runs. A batch's writes and
  // journal rows travel in a few round trips of up to this many statements.
  static constexpr std::size_t kMaxDeferred = 512;

  struct Deferred {
    std::string sql;
    SqlParams params;
    RowCallback on_row;           // may be empty: nobody reads the rows
    std::int64_t expect_rows = -1;  // defer_write(): the rows it must change
  };

  Status simple(const std::string& sql) {
    auto r = run(sql, {}, /*cacheable=*/false);
    if (!r.ok()) return std::move(r).error();
    return ok_status();
  }

  static std::string cache_key(const std::string& sql, const std::vector<Oid>& types) {
    std::string key = sql;
    key += '\x01';
    for (Oid t : types) key += std::to_string(t) + ",";
    return key;
  }

  // The prepared statement for (sql, types): {name, needs preparing}; {nullptr, false} when not cached.
  std::pair<const std::string*, bool> prepared_for(const std::string& key) {
    if (auto it = prepared_.find(key); it != prepared_.end()) return {&it->second, false};
    if (prepared_.size() >= kMaxPrepared) return {nullptr, false};
    auto [it, inserted] = prepared_.emplace(key, "pkgcast_stmt_" + std::to_string(prepared_.size() + 1));
    return {&it->second, true};
  }

  // Runs one statement (prepared when `cacheable`), after whatever defer() queued, in one round trip.
  Result<ResultPtr> run(const std::string& sql, const SqlParams& params, bool cacheable = true) {
    drain_started_commit();
    if (deferred_error_) return *deferred_error_;
    if (lost_) return make_error(WbemCode::kFailed, "postgresql: the connection was lost (" + sql.substr(0, 80) + ")");
    PgParams p(params);
    std::string key;
    const std::string* name = nullptr;
    bool fresh = false;
    if (cacheable) {
      key = cache_key(sql, p.types);
      std::tie(name, fresh) = prepared_for(key);
    }
    if (deferred_.empty() && !fresh) {
      const int n = static_cast<int>(params.size());
      ResultPtr res(name != nullptr ? PQexecPrepared(conn_, name->c_str(), n, p.values.data(), p.lengths.data(),
                                                     p.formats.data(), 0)
                                    : PQexecParams(conn_, sql.c_str(), n, p.types.data(), p.values.data(),
                                                   p.lengths.data(), p.formats.data(), 0),
                    &PQclear);
      const ExecStatusType status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
      if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return res;
      return result_error(res.get(), sql);
    }
    Statement st{&sql, &p, name, fresh};
    auto res = pipeline(&st);
    if (fresh && !st.prepared_ok) prepared_.erase(key);
    return res;
  }

  Status flush_deferred() {
    drain_started_commit();
    if (deferred_error_) return *deferred_error_;
    if (lost_) return make_error(WbemCode::kFailed, "postgresql: the connection was lost");
    if (deferred_.empty()) return ok_status();
    auto r = pipeline(nullptr);
    if (!r.ok()) return std::move(r).error();
    return ok_status();
  }

  struct Statement {
    const std::string* sql;
    const PgParams* params;
    const std::string* name;  // prepared statement, or null
    bool prepare;             // prepare `name` first
    bool prepared_ok = false;
  };

  // A round trip sent and not yet read: the queue it took, and which result belongs to which statement.
  struct Sent {
    Statement stmt;
    std::string key;
    bool deferred;
    const RowCallback* on_row = nullptr;
    std::int64_t expect_rows = -1;
  };
  struct InFlight {
    std::vector<Deferred> queued;
    std::vector<PgParams> queued_params;
    std::vector<Sent> sent;
    std::vector<std::pair<std::size_t, bool>> items;  // each expected result: its sent statement, and whether it
                                                      // is that statement's prepare
    PgParams no_params{SqlParams{}};
  };

  Error lost(std::string_view what) {
    lost_ = true;
    return make_error(WbemCode::kFailed, std::string("postgresql: ") + std::string(what) + ": " +
                                             PQerrorMessage(conn_));
  }

  // Sends the deferred queue, then `st` (if any), with one sync: one round trip. Deferred statements are prepared
  // too (the journal row and the savepoints repeat in every batch). `flight` keeps what the answers refer to.
  Status send_pipeline(InFlight& flight, Statement* st) {
    flight.queued = std::move(deferred_);
    deferred_.clear();
    flight.queued_params.reserve(flight.queued.size());
    flight.sent.reserve(flight.queued.size() + 1);
    for (const Deferred& d : flight.queued) {
      const PgParams& dp = flight.queued_params.emplace_back(d.params);
      std::string key = cache_key(d.sql, dp.types);
      auto [name, fresh] = prepared_for(key);
      flight.sent.push_back(Sent{Statement{&d.sql, &dp, name, fresh}, std::move(key), true,
                                 d.on_row ? &d.on_row : nullptr, d.expect_rows});
    }
    if (st != nullptr) flight.sent.push_back(Sent{*st, {}, false});

    if (PQenterPipelineMode(conn_) != 1) return lost("cannot enter pipeline mode");
    for (std::size_t i = 0; i < flight.sent.size(); ++i) {
      const Statement& x = flight.sent[i].stmt;
      const PgParams& p = *x.params;
      const int n = static_cast<int>(p.values.size());
      if (x.prepare) {
        if (PQsendPrepare(conn_, x.name->c_str(), x.sql->c_str(), n, p.types.data()) != 1) {
          return lost("cannot send a statement");
        }
        flight.items.emplace_back(i, true);
      }
      const int ok = x.name != nullptr ? PQsendQueryPrepared(conn_, x.name->c_str(), n, p.values.data(),
                                                             p.lengths.data(), p.formats.data(), 0)
                                       : PQsendQueryParams(conn_, x.sql->c_str(), n, p.types.data(), p.values.data(),
                                                           p.lengths.data(), p.formats.data(), 0);
      if (ok != 1) return lost("cannot send a statement");
      flight.items.emplace_back(i, false);
    }
    if (PQpipelineSync(conn_) != 1) return lost("cannot send a statement");
    return ok_status();
  }

  // Reads the answers of a sent round trip up to its sync point. The first failure wins: a deferred statement's
  // failure is kept (see defer()), then the prepare's, then the statement's. `st`, when given, is the round trip's
  // last statement, whose result is answered.
  Result<ResultPtr> collect(InFlight& flight, Statement* st) {
    std::vector<Sent>& sent = flight.sent;
    const std::vector<std::pair<std::size_t, bool>>& items = flight.items;
    std::optional<Error> deferred_error;
    std::optional<Error> prepare_error;
    std::optional<Error> statement_error;
    ResultPtr out(nullptr, &PQclear);
    std::size_t item = 0;
    bool synced = false;
    // Each item's results end with a null; the sync point ends the round trip. The bound only guards against a
    // connection that died half-way (libpq then returns nulls).
    for (std::size_t guard = 0; guard <= 2 * items.size() + 2 && !synced; ++guard) {
      PGresult* raw = PQgetResult(conn_);
      if (raw == nullptr) {
        if (PQstatus(conn_) == CONNECTION_BAD) break;
        ++item;
        continue;
      }
      ResultPtr res(raw, &PQclear);
      const ExecStatusType status = PQresultStatus(raw);
      if (status == PGRES_PIPELINE_SYNC) {
        synced = true;
        break;
      }
      if (item >= items.size()) continue;
      const bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
      auto& [index, is_prepare] = items[item];
      Sent& x = sent[index];
      if (is_prepare) {
        x.stmt.prepared_ok = ok;
        if (!ok && !x.deferred && !prepare_error) prepare_error = result_error(raw, *x.stmt.sql);
        if (!ok && x.deferred && !deferred_error) deferred_error = result_error(raw, *x.stmt.sql);
      } else if (x.deferred) {
        if (!ok && !deferred_error) deferred_error = result_error(raw, *x.stmt.sql);
        if (ok && x.on_row != nullptr && !deferred_error) {
          if (Status delivered = deliver(raw, *x.on_row); !delivered.ok()) deferred_error = delivered.error();
        }
        if (ok && x.expect_rows >= 0 && !deferred_error) {
          const char* n = PQcmdTuples(raw);
          const std::int64_t changed = n != nullptr && *n != '\0' ? std::strtoll(n, nullptr, 10) : 0;
          if (changed != x.expect_rows) deferred_error = unexpected_row_count(*x.stmt.sql, changed, x.expect_rows);
        }
      } else if (ok) {
        out = std::move(res);
      } else {
        statement_error = result_error(raw, *x.stmt.sql);
      }
    }
    for (const Sent& x : sent) {
      if (x.deferred && x.stmt.prepare && !x.stmt.prepared_ok) prepared_.erase(x.key);
    }
    if (st != nullptr) st->prepared_ok = sent.back().stmt.prepared_ok;
    if (!synced || PQexitPipelineMode(conn_) != 1) {
      Error e = lost("the connection failed during a pipeline");
      if (!deferred_error) deferred_error = e;
    }
    if (deferred_error) {
      deferred_error_ = deferred_error;
      return *deferred_error;
    }
    if (prepare_error) return *prepare_error;
    if (statement_error) return *statement_error;
    if (st == nullptr) return ResultPtr(nullptr, &PQclear);
    if (!out) return lost("no result for a statement");
    return out;
  }

  // One round trip: sent, then read.
  Result<ResultPtr> pipeline(Statement* st) {
    InFlight flight;
    PKG_TRY(send_pipeline(flight, st));
    return collect(flight, st);
  }

  // Reads the answer of a COMMIT that start_commit() sent, keeping its outcome for finish_commit().
  void drain_started_commit() {
    if (!started_commit_) return;
    std::unique_ptr<InFlight> flight = std::move(started_commit_);
    Statement& commit = flight->sent.back().stmt;
    auto res = collect(*flight, &commit);
    if (!res.ok()) {
      commit_outcome_ = Status(std::move(res).error());
    } else if (std::string_view(PQcmdStatus(res->get())) != "COMMIT") {
      // COMMIT of a transaction that failed earlier answers "ROLLBACK" without an error.
      commit_outcome_ = Status(make_error(WbemCode::kFailed, "postgresql: the transaction was rolled back at COMMIT"));
    } else {
      commit_outcome_ = ok_status();
    }
  }

  Status stream_single_rows(const std::string& sql, const SqlParams& params, const RowCallback& on_row) {
    PgParams p(params);
    if (PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(params.size()), p.types.data(), p.values.data(),
                          p.lengths.data(), p.formats.data(), 0) != 1 ||
        PQsetSingleRowMode(conn_) != 1) {
      Status st = make_error(WbemCode::kFailed, std::string("postgresql: ") + PQerrorMessage(conn_));
      drain();
      return st;
    }
    Status st;
    bool more = true;
    while (PGresult* raw = PQgetResult(conn_)) {
      ResultPtr res(raw, &PQclear);
      const ExecStatusType status = PQresultStatus(raw);
      if (status == PGRES_SINGLE_TUPLE && more && st.ok()) {
        auto keep = on_row(PgRow(raw, 0));
        if (!keep.ok()) {
          st = std::move(keep).error();
          more = false;
        } else {
          more = *keep;
        }
      } else if (status != PGRES_SINGLE_TUPLE && status != PGRES_TUPLES_OK && more && st.ok()) {
        st = result_error(raw, sql);
      }
    }
    return st;
  }

  void drain() {
    while (PGresult* r = PQgetResult(conn_)) PQclear(r);
  }

  Status fetch_all(const std::string& cursor, const std::string& sql, const SqlParams& params,
                   const RowCallback& on_row) {
    // Cursor names are unique, so these statements are never prepared.
    PKG_TRY(run("DECLARE " + cursor + " NO SCROLL CURSOR FOR " + sql, params, /*cacheable=*/false));
    const std::string fetch = "FETCH FORWARD " + std::to_string(kFetchRows) + " FROM " + cursor;
    Status st;
    for (bool more = true; more && st.ok();) {
      auto res = run(fetch, {}, /*cacheable=*/false);
      if (!res.ok()) return std::move(res).error();
      const int rows = PQntuples(res->get());
      for (int r = 0; r < rows && more; ++r) {
        auto keep = on_row(PgRow(res->get(), r));
        if (!keep.ok()) {
          st = std::move(keep).error();
          more = false;
        } else {
          more = *keep;
        }
      }
      if (rows < kFetchRows) more = false;
    }
    // A cursor left open would only live until the transaction ends; close it so long write batches don't
    // accumulate them. After an error the transaction may be aborted, and CLOSE would fail: skip it.
    if (PQtransactionStatus(conn_) == PQTRANS_INTRANS) {
      Status closed = simple("CLOSE " + cursor);
      if (st.ok() && !closed.ok()) return closed;
    }
    return st;
  }

  Status deliver(const PGresult* res, const RowCallback& on_row) {
    const int rows = PQntuples(res);
    for (int r = 0; r < rows; ++r) {
      PKG_ASSIGN_OR_RETURN(bool more, on_row(PgRow(res, r)));
      if (!more) break;
    }
    return ok_status();
  }

  // The error a failed result (or nullptr: a lost connection) stands for, with the statement's start.
  Error result_error(const PGresult* res, const std::string& sql) const {
    if (res != nullptr && PQresultStatus(res) == PGRES_PIPELINE_ABORTED) {
      return make_error(WbemCode::kFailed,
                        "postgresql: not run, an earlier statement of its round trip failed (" + sql.substr(0, 80) +
                            ")");
    }
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    std::string msg = "postgresql: ";
    const char* primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    msg += primary != nullptr ? primary : PQerrorMessage(conn_);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    msg += " (" + sql.substr(0, 80) + ")";
    return make_error(code_for_sqlstate(state != nullptr ? state : ""), std::move(msg));
  }

  PGconn* conn_;
  std::uint64_t cursor_seq_ = 0;
  std::unordered_map<std::string, std::string> prepared_;  // cache_key -> statement name
  std::vector<Deferred> deferred_;
  std::optional<Error> deferred_error_;  // a deferred statement failed; cleared by rollback()
  bool lost_ = false;                    // the protocol state is unknown: replace the connection
  std::unique_ptr<InFlight> started_commit_;  // start_commit()'s round trip, until its answer is read
  std::optional<Status> commit_outcome_;       // its outcome, until finish_commit()
};

}  // namespace

const Dialect& pg_dialect() {
  static const Dialect d{Dialect::Backend::kPostgres, "postgresql"};
  return d;
}

Result<std::unique_ptr<Connection>> open_pg_connection(const std::string& url) {
  PGconn* conn = PQconnectdb(url.c_str());
  if (conn == nullptr) return make_error(WbemCode::kFailed, "postgresql: out of memory connecting");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    PQfinish(conn);
    return make_error(WbemCode::kFailed, "postgresql: cannot connect: " + msg);
  }
  PQsetNoticeProcessor(conn, ignore_notice, nullptr);
  if (PQsetClientEncoding(conn, "UTF8") != 0) {
    PQfinish(conn);
    return make_error(WbemCode::kFailed, "postgresql: the server does not accept client encoding UTF8");
  }
  auto c = std::make_unique<PgConnection>(conn);
  PKG_TRY(c->exec("SET client_min_messages TO warning", {}));
  // A lock another session holds (a maintenance command, a LOCK TABLE left open) would otherwise hold a write, and
  // the writer with it, or a read, for as long as that session likes: past kLockWait the statement fails with
  // WBEM_E_SERVER_TOO_BUSY and its transaction rolls back, as SQLite's busy timeout does.
  PKG_TRY(c->exec("SET lock_timeout = " + std::to_string(kLockWait.count()), {}));
  return std::unique_ptr<Connection>(std::move(c));
}

}  // namespace pkgcast::store
