// PostgreSQL (libpq) behind the Connection interface.
//
// Parameters travel separately from the SQL text (PQexecParams), typed, in text format. Inside a transaction,
// large results are read through a cursor (DECLARE ... NO SCROLL CURSOR; FETCH n) rather than single-row mode: a
// cursor can stop early without cancelling the statement, which matters inside the writer's transaction, where a
// cancel would abort the whole batch, and lets other statements run on the same connection between fetches (a
// scan's callback may look rows up). A reader's scan outside any transaction uses single-row mode: one round trip.
#include <libpq-fe.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

#include "store/backends.h"

namespace pkgcast::store {
namespace {

// Type OIDs from pg_type (stable since PostgreSQL 7).
constexpr Oid kBoolOid = 16;
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kFloat8Oid = 701;
constexpr int kFetchRows = 512;

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

WbemCode code_for_sqlstate(std::string_view state) {
  if (state == "53100") return WbemCode::kOutOfDiskSpace;            // disk_full
  if (state == "23505") return WbemCode::kAlreadyExists;             // unique_violation
  if (state.substr(0, 2) == "53") return WbemCode::kServerTooBusy;   // insufficient resources
  if (state == "57014") return WbemCode::kTimedOut;                  // query_canceled
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
      } else if (const auto* n = std::get_if<std::int64_t>(&p)) {
        type = kInt8Oid;
        storage[i] = std::to_string(*n);
      } else if (const auto* d = std::get_if<double>(&p)) {
        type = kFloat8Oid;
        char buf[64];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *d);
        storage[i].assign(buf, ec == std::errc() ? end : buf);
      } else if (const auto* b = std::get_if<bool>(&p)) {
        type = kBoolOid;
        storage[i] = *b ? "t" : "f";
      } else {
        type = kTextOid;
        storage[i] = std::get<std::string>(p);
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
    if (!in_transaction()) return stream_single_rows(sql, params, on_row);
    const std::string cursor = "pkgcast_cursor_" + std::to_string(++cursor_seq_);
    return fetch_all(cursor, sql, params, on_row);
  }

  Status begin(bool writer) override {
    // Readers get a snapshot for the whole transaction, so a journal read and its compaction check agree.
    return simple(writer ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  }
  Status commit() override { return simple("COMMIT"); }
  Status rollback() override { return simple("ROLLBACK"); }
  bool in_transaction() const override { return PQtransactionStatus(conn_) != PQTRANS_IDLE; }
  bool broken() const override { return PQstatus(conn_) == CONNECTION_BAD; }

 private:
  Status simple(const std::string& sql) {
    auto r = run(sql, {});
    if (!r.ok()) return std::move(r).error();
    return ok_status();
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
    PKG_TRY(run("DECLARE " + cursor + " NO SCROLL CURSOR FOR " + sql, params));
    const std::string fetch = "FETCH FORWARD " + std::to_string(kFetchRows) + " FROM " + cursor;
    Status st;
    for (bool more = true; more && st.ok();) {
      auto res = run(fetch, {});
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

  Result<ResultPtr> run(const std::string& sql, const SqlParams& params) {
    PgParams p(params);
    ResultPtr res(PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), p.types.data(),
                               p.values.data(), p.lengths.data(), p.formats.data(), 0),
                  &PQclear);
    const ExecStatusType status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return res;
    return result_error(res.get(), sql);
  }

  // The error a failed result (or nullptr: a lost connection) stands for, with the statement's start.
  Error result_error(const PGresult* res, const std::string& sql) const {
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
  return std::unique_ptr<Connection>(std::move(c));
}

}  // namespace pkgcast::store
