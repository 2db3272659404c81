// Opening, the reader pool, reads and journal reads. The writer is in writer.cc.
#include "store/sql_store.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <thread>

#include "core/strings.h"
#include "store/backends.h"
#include "store/predicate_sql.h"
#include "store/row_codec.h"

namespace pkgcast::store {
namespace {

// Only one process may write a PostgreSQL database: the revision counter lives in the writer's memory.
// The key is "pkgcast" in ASCII; advisory locks are scoped to the current database.
constexpr std::int64_t kWriterLockKey = 0x706b6763617374;
constexpr int kWriterLockAttempts = 20;
// SQLite writer connection's page cache, in KiB. 16 MiB held a 100,000-row summarizer run's hot pages as well as
// 64 MiB did; 64 MiB cost more in filling (store_bench: 28,000 puts/s against 35,000) and 50 MB more resident.
constexpr int kSqliteWriterCacheKib = 16 * 1024;
// WAL pages between automatic checkpoints (SQLite's default is 1,000): a summary page rewritten by many batches is
// copied into the database once per checkpoint, so fewer checkpoints copy fewer pages (a tenth fewer writes per
// status change at 10,000 against 1,000), for a WAL of up to about 40 MB.
constexpr int kSqliteCheckpointPages = 10'000;

std::int64_t clamp_limit(std::uint64_t n) {
  return n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
             ? std::numeric_limits<std::int64_t>::max()
             : static_cast<std::int64_t>(n);
}

Result<BackendSpec> backend_for(const std::string& url) {
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    BackendSpec b;
    b.name = "postgresql";
    b.dialect = &pg_dialect();
    b.connect = [url] { return open_pg_connection(url); };
    b.claim_writer = [](Connection& c) -> Status {
      bool got = false;
      // A writer that just exited may still hold the lock for a moment while its server process ends.
      for (int attempt = 0; attempt < kWriterLockAttempts && !got; ++attempt) {
        if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        PKG_TRY(c.query("SELECT pg_try_advisory_lock($1)", {kWriterLockKey}, [&](const SqlRow& row) -> Result<bool> {
          PKG_ASSIGN_OR_RETURN(got, row.as_bool(0));
          return false;
        }));
      }
      if (!got) {
        return make_error(WbemCode::kServerTooBusy,
                          "another pkgcast process is writing to this PostgreSQL database (advisory lock " +
                              std::to_string(kWriterLockKey) + " is held)");
      }
      // The writer's statements are prepared once and soon run on generic plans, planned when a table may still
      // be nearly empty (the last-message table, the meta area): a sequential scan then looks cheapest and stays
      // the plan while the table grows to millions of rows (it was most of the server's time per status change).
      // Every writer statement is a key lookup or a scan in key or index order, so an index is always the right
      // plan for it.
      auto tuned = c.exec("SET enable_seqscan = off");
      if (!tuned.ok()) return std::move(tuned).error();
      return ok_status();
    };
    b.release_writer = [](Connection& c) { (void)c.exec("SELECT pg_advisory_unlock($1)", {kWriterLockKey}); };
    return b;
  }
  std::string path = url;
  if (path.rfind("sqlite:", 0) == 0) {
    path = path.substr(7);
  } else if (path.find("://") != std::string::npos) {
    return make_error(WbemCode::kInvalidParameter,
                      "unsupported database URL '" + url + "' (use a file path, sqlite:PATH or postgresql://...)");
  }
  if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0) {
    return make_error(WbemCode::kInvalidParameter,
                      "SQLite needs a database file path (got '" + url + "'); readers and the writer share it");
  }
  BackendSpec b;
  b.name = "sqlite";
  b.dialect = &sqlite_dialect();
  b.connect = [path] { return open_sqlite_connection(path); };
  // The writer's page cache holds the hot rows of a batch (summary rows, index pages, the journal's tail): at the
  // default 2 MB a batch spilled dirty pages into the WAL before its COMMIT, writing many of them twice, and read
  // the rest back through pread. Readers keep the default: there are many of them and their scans stream.
  b.claim_writer = [](Connection& c) -> Status {
    auto r = c.exec("PRAGMA cache_size=-" + std::to_string(kSqliteWriterCacheKib));
    if (!r.ok()) return std::move(r).error();
    auto w = c.exec("PRAGMA wal_autocheckpoint=" + std::to_string(kSqliteCheckpointPages));
    if (!w.ok()) return std::move(w).error();
    return ok_status();
  };
  b.release_writer = [](Connection&) {};
  return b;
}

Result<JournalEntry> decode_journal_row(const SqlRow& row, const cim::ClassRegistry& registry) {
  JournalEntry e;
  PKG_ASSIGN_OR_RETURN(std::int64_t rev, row.as_int(0));
  PKG_ASSIGN_OR_RETURN(e.time, row.as_int(1));
  PKG_ASSIGN_OR_RETURN(std::int64_t kind, row.as_int(2));
  if (rev <= 0 || kind < 1 || kind > 3) return make_error(WbemCode::kFailed, "corrupt journal row");
  e.revision = static_cast<std::uint64_t>(rev);
  e.kind = static_cast<ChangeKind>(kind);
  e.class_name = std::string(row.as_text(3));
  e.key = std::string(row.as_text(4));
  PKG_ASSIGN_OR_RETURN(cim::Instance inst, instance_from_json_text(row.as_text(5), registry));
  e.instance = std::make_shared<const cim::Instance>(std::move(inst));
  if (!row.is_null(6)) {
    PKG_ASSIGN_OR_RETURN(cim::Instance prev, previous_from_json_text(row.as_text(6), *e.instance, registry));
    e.previous = std::make_shared<const cim::Instance>(std::move(prev));
  } else if (e.kind == ChangeKind::kDeleted) {
    e.previous = e.instance;  // a deletion's previous instance is the instance as it was
  }
  return e;
}

// The journal's entries after `after`, in revision order, at most `limit`, decoded.
Status stream_journal_on(Connection& conn, const cim::ClassRegistry& registry, std::uint64_t after,
                         std::uint64_t limit, const std::function<bool(JournalEntry&&)>& sink) {
  const Dialect& d = conn.dialect();
  const std::string sql =
      "SELECT revision, commit_time, kind, class_name, instance_key, instance, previous FROM pkgcast_journal "
      "WHERE revision > " + d.placeholder(1) + " ORDER BY revision LIMIT " + d.placeholder(2);
  return conn.stream(sql, {clamp_limit(after), clamp_limit(limit)}, [&](const SqlRow& row) -> Result<bool> {
    PKG_ASSIGN_OR_RETURN(JournalEntry e, decode_journal_row(row, registry));
    return sink(std::move(e));
  });
}

Result<std::uint64_t> read_uint(Connection& conn, const std::string& sql, const SqlParams& params) {
  std::uint64_t v = 0;
  PKG_TRY(conn.query(sql, params, [&](const SqlRow& row) -> Result<bool> {
    if (!row.is_null(0)) {
      PKG_ASSIGN_OR_RETURN(std::int64_t n, row.as_int(0));
      v = n < 0 ? 0 : static_cast<std::uint64_t>(n);
    }
    return false;
  }));
  return v;
}

Result<std::uint64_t> compacted_through(Connection& conn) {
  const Dialect& d = conn.dialect();
  std::uint64_t v = 0;
  PKG_TRY(conn.query("SELECT value FROM pkgcast_internal WHERE name = " + d.placeholder(1),
                     {std::string("journal_compacted_through")}, [&](const SqlRow& row) -> Result<bool> {
                       v = std::strtoull(std::string(row.as_text(0)).c_str(), nullptr, 10);
                       return false;
                     }));
  return v;
}

// The stores whose reader connections this thread holds, innermost last: a read inside another read's callback
// on the same store is nested and draws from the nested allowance.
thread_local std::vector<const SqlStore*> t_leases;

std::size_t readers_for(const OpenOptions& options) {
  if (options.max_readers != 0) return options.max_readers;
  const bool pg = options.url.rfind("postgresql://", 0) == 0 || options.url.rfind("postgres://", 0) == 0;
  return pg ? kDefaultPostgresReaders : kDefaultSqliteReaders;
}

}  // namespace

// A reader connection on loan from the pool; returned when the lease ends, on every path.
class SqlStore::Lease {
 public:
  Lease(SqlStore* store, std::unique_ptr<Connection> conn, bool nested, bool pooled)
      : store_(store), conn_(std::move(conn)), nested_(nested), pooled_(pooled) {}
  Lease(Lease&& o) noexcept = default;
  Lease& operator=(Lease&&) = delete;
  ~Lease() {
    if (conn_) store_->give_back(std::move(conn_), nested_);
  }
  Connection& operator*() { return *conn_; }
  Connection* operator->() { return conn_.get(); }
  bool pooled() const { return pooled_; }  // taken from the idle pool rather than connected for this lease

 private:
  SqlStore* store_;
  std::unique_ptr<Connection> conn_;
  bool nested_;
  bool pooled_;
};

Result<std::unique_ptr<Store>> Store::open(const OpenOptions& options) {
  if (options.registry == nullptr || options.clock == nullptr) {
    return make_error(WbemCode::kInvalidParameter, "OpenOptions needs a registry and a clock");
  }
  if (options.max_batch == 0) return make_error(WbemCode::kInvalidParameter, "OpenOptions.max_batch must be >= 1");
  if (options.reader_wait.count() < 0) {
    return make_error(WbemCode::kInvalidParameter, "OpenOptions.reader_wait must not be negative");
  }
  PKG_ASSIGN_OR_RETURN(BackendSpec backend, backend_for(options.url));
  return SqlStore::open(options, std::move(backend));
}

SqlStore::SqlStore(const OpenOptions& options, BackendSpec backend, Schema schema)
    : options_(options), backend_(std::move(backend)), schema_(std::move(schema)),
      max_readers_(readers_for(options)), row_cache_(options.writer_cache_rows),
      listeners_(std::make_shared<const std::vector<CommitListener>>()) {}

SqlStore::~SqlStore() { close(); }

Result<std::unique_ptr<Store>> SqlStore::open(const OpenOptions& options, BackendSpec backend) {
  PKG_ASSIGN_OR_RETURN(Schema schema, Schema::build(*options.registry, *backend.dialect));
  std::unique_ptr<SqlStore> store(new SqlStore(options, std::move(backend), std::move(schema)));
  PKG_ASSIGN_OR_RETURN(store->writer_conn_, store->backend_.connect());
  PKG_TRY(store->backend_.claim_writer(*store->writer_conn_));
  PKG_TRY(migrate(*store->writer_conn_, store->schema_));
  PKG_ASSIGN_OR_RETURN(std::uint64_t max_rev,
                       read_uint(*store->writer_conn_, "SELECT max(revision) FROM pkgcast_journal", {}));
  PKG_ASSIGN_OR_RETURN(std::uint64_t compacted, compacted_through(*store->writer_conn_));
  const std::uint64_t last = std::max(max_rev, compacted);
  store->next_revision_ = last + 1;
  store->committed_revision_ = last;
  store->writer_ = std::thread([s = store.get()] { s->writer_loop(); });
  return std::unique_ptr<Store>(std::move(store));
}

Status SqlStore::refuse_read_in_command(std::string_view what) const {
  return make_error(WbemCode::kInvalidOperation,
                    std::string("a write command read through the Store (") + std::string(what) +
                        "); a command reads only through its WriteTxn, which sees the batch's own writes");
}

Result<SqlStore::Lease> SqlStore::lease() {
  if (on_command_thread()) return refuse_read_in_command("a reader connection").error();
  const bool nested = std::find(t_leases.begin(), t_leases.end(), this) != t_leases.end();
  const std::size_t level = nested ? 1 : 0;
  std::unique_ptr<Connection> conn;
  {
    MutexLock lock(pool_mu_);
    const auto deadline = std::chrono::steady_clock::now() + options_.reader_wait;
    while (!pool_closed_ && leased_[level] >= max_readers_) {
      if (!pool_cv_.wait_until(pool_mu_, deadline)) break;
    }
    const bool free = pool_closed_ || leased_[level] < max_readers_;
    if (pool_closed_) return make_error(WbemCode::kShuttingDown, "the store is closed");
    if (!free) {
      return make_error(WbemCode::kServerTooBusy,
                        "every database reader connection is busy (" + std::to_string(max_readers_) +
                            (nested ? " nested" : "") + " reads running, db_max_readers); waited " +
                            std::to_string(options_.reader_wait.count()) + " ms (db_reader_wait_ms)");
    }
    ++leased_[level];
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    } else {
      ++open_readers_;
    }
  }
  const bool pooled = conn != nullptr;
  if (!conn) {
    auto connected = backend_.connect();
    if (!connected.ok()) {
      {
        MutexLock lock(pool_mu_);
        --leased_[level];
        --open_readers_;
      }
      pool_cv_.notify_all();  // waiters for both allowances share the condition
      return std::move(connected).error();
    }
    conn = std::move(connected).value();
  }
  t_leases.push_back(this);
  return Lease(this, std::move(conn), nested, pooled);
}

Status SqlStore::reading(const std::function<Status(Connection&)>& read, const bool* delivered) {
  for (int attempt = 0;; ++attempt) {
    PKG_ASSIGN_OR_RETURN(Lease conn, lease());
    Status st = read(*conn);
    if (st.ok() || attempt > 0 || !conn.pooled() || !conn->broken() || (delivered != nullptr && *delivered)) {
      return st;
    }
  }
}

void SqlStore::give_back(std::unique_ptr<Connection> conn, bool nested) {
  if (auto it = std::find(t_leases.rbegin(), t_leases.rend(), this); it != t_leases.rend()) {
    t_leases.erase(std::next(it).base());
  }
  // A connection left inside a transaction (a read that failed half-way) is reset, or dropped when that fails
  // or the connection is lost.
  bool keep = !conn->broken();
  if (keep && conn->in_transaction()) keep = conn->rollback().ok() && !conn->broken();
  std::unique_ptr<Connection> drop;  // closed outside the lock
  {
    MutexLock lock(pool_mu_);
    --leased_[nested ? 1 : 0];
    if (keep && !pool_closed_ && idle_.size() < max_readers_) {
      idle_.push_back(std::move(conn));
    } else {
      drop = std::move(conn);
      --open_readers_;
    }
  }
  pool_cv_.notify_all();  // waiters for both allowances share the condition
}

std::size_t SqlStore::reader_connections_for_test() {
  MutexLock lock(pool_mu_);
  return open_readers_;
}

Result<std::optional<cim::Instance>> SqlStore::get_on(Connection& conn, const TableInfo& t, const Schema& schema,
                                                      const std::vector<cim::Value>& key) {
  PKG_ASSIGN_OR_RETURN(SqlParams params, encode_key(t, key));
  std::optional<cim::Instance> out;
  PKG_TRY(conn.query(t.select_by_key, params, [&](const SqlRow& row) -> Result<bool> {
    PKG_ASSIGN_OR_RETURN(cim::Instance inst, decode_row(t, row, schema.registry()));
    out.emplace(std::move(inst));
    return false;
  }));
  return out;
}

Status SqlStore::scan_on(Connection& conn, const TableInfo& t, const Schema& schema, const Predicate& filter,
                         const RowSink& sink, const ScanOptions& options) {
  SqlParams params;
  PKG_ASSIGN_OR_RETURN(std::string where, render_predicate(filter, t, conn.dialect(), params));
  if (!options.order.empty()) return scan_ordered_on(conn, t, schema, where, std::move(params), sink, options);
  if (options.after) {
    // Keyset paging: the row value of the ORDER BY's own expressions, compared with the same expressions over
    // the bound key, so the resumed order is the scan's (NOCASE on SQLite, lower(.. COLLATE "C") on PostgreSQL).
    const auto& keys = t.cls->key_indices();
    if (keys.empty()) {
      where = "1=0";
    } else {
      PKG_ASSIGN_OR_RETURN(SqlParams key_params, encode_key(t, *options.after));
      std::string lhs;
      std::string rhs;
      for (std::size_t k = 0; k < keys.size(); ++k) {
        const cim::Type type = t.cls->property(keys[k]).type;
        params.push_back(std::move(key_params[k]));
        lhs += (k > 0 ? ", " : "") + column_expr(conn.dialect(), t.columns[keys[k]], type);
        rhs += (k > 0 ? ", " : "") + value_expr(conn.dialect(), params.size(), type);
      }
      where = "(" + where + ") AND (" + lhs + ") > (" + rhs + ")";
    }
  }
  std::string sql = "SELECT " + t.select_list + " FROM " + t.table + " WHERE " + where + t.order_by;
  if (options.limit) {
    params.emplace_back(clamp_limit(*options.limit));
    sql += " LIMIT " + conn.dialect().placeholder(params.size());
  }
  return conn.stream(sql, params, [&](const SqlRow& row) -> Result<bool> {
    PKG_ASSIGN_OR_RETURN(cim::Instance inst, decode_row(t, row, schema.registry()));
    return sink(std::move(inst));
  });
}

namespace {

// One statement of an ordered scan's page, without its LIMIT (which depends on the rows earlier statements gave).
using PageStatement = std::pair<std::string, SqlParams>;

// The key columns as one row value, in the form the key index and the ORDER BY use, and the bound key `after`
// in the matching form, its values appended to `params`.
Result<std::pair<std::string, std::string>> key_row_values(const Dialect& d, const TableInfo& t,
                                                             const std::vector<cim::Value>& after, SqlParams& params) {
  const auto& keys = t.cls->key_indices();
  PKG_ASSIGN_OR_RETURN(SqlParams key_params, encode_key(t, after));
  std::string lhs;
  std::string rhs;
  for (std::size_t k = 0; k < keys.size(); ++k) {
    const cim::Type type = t.cls->property(keys[k]).type;
    params.push_back(std::move(key_params[k]));
    lhs += (k > 0 ? ", " : "") + column_expr(d, t.columns[keys[k]], type);
    rhs += (k > 0 ? ", " : "") + value_expr(d, params.size(), type);
  }
  return std::make_pair(std::move(lhs), std::move(rhs));
}

// A one-term order: `col, key...`, every column in the term's direction (so a descending sort breaks ties by the
// key descending), which is one index on (col, key...) walked forwards or backwards: schema.cc gives such an index
// to the columns administrators sort large classes by, and the database walks it with no sort step; for other
// columns it sorts as before. NULL sorts before every value (first ascending, last descending), but SQLite puts
// NULL first in an index and PostgreSQL last, so the NULL rows and the others are separate statements, each
// ordered by the bare index columns, run in the order's sequence. A page resumes after (v, k) with the row value
// `(col, key...) > (v, k...)` (`<` descending), which both databases seek to in the index (a NULL col makes the
// comparison NULL, so NULL rows never match it); after a NULL v it resumes inside the NULL rows with
// `col IS NULL AND (key...) > (k...)`. Statements of the part before the resumption point are left out. Outside a
// transaction the two statements see two snapshots, as two pages do: a row whose column turns from NULL to a value
// between them may be answered twice, as one updated between pages may.
Result<std::vector<PageStatement>> one_term_statements(const Dialect& d, const TableInfo& t, const std::string& where,
                                                       const SqlParams& params, const ScanOptions& options) {
  const SortKey& term = options.order.front();
  const cim::PropertyDef& p = t.cls->property(term.property);
  const std::string& col = t.columns[term.property];
  const std::string dir = term.descending ? " DESC" : " ASC";
  const std::string after_op = term.descending ? " < " : " > ";
  const auto& keys = t.cls->key_indices();
  std::string order = column_expr(d, col, p.type) + dir;
  for (std::size_t k : keys) order += ", " + column_expr(d, t.columns[k], t.cls->property(k).type) + dir;
  const std::string head = "SELECT " + t.select_list + " FROM " + t.table + " WHERE (" + where + ") AND ";

  // The NULL part comes first ascending and last descending.
  enum class Part { kNulls, kValues };
  const Part sequence[2] = {term.descending ? Part::kValues : Part::kNulls,
                            term.descending ? Part::kNulls : Part::kValues};
  std::size_t first = 0;  // the part the scan resumes in
  if (options.after) {
    const bool after_null = (*options.after_sort)[0].is_null();
    first = (sequence[0] == Part::kNulls) == after_null ? 0 : 1;
  }
  std::vector<PageStatement> out;
  for (std::size_t i = first; i < 2; ++i) {
    SqlParams own = params;
    std::string cond;
    if (i == first && options.after && sequence[i] == Part::kNulls) {
      PKG_ASSIGN_OR_RETURN(auto key_rows, key_row_values(d, t, *options.after, own));
      cond = col + " IS NULL AND (" + key_rows.first + ")" + after_op + "(" + key_rows.second + ")";
    } else if (i == first && options.after) {
      // The sort value is bound before the key's values, in text order (SQLite's placeholders are positional).
      PKG_ASSIGN_OR_RETURN(SqlParam value, encode_value((*options.after_sort)[0], p.type, p.name));
      own.push_back(std::move(value));
      const std::string value_text = value_expr(d, own.size(), p.type);
      PKG_ASSIGN_OR_RETURN(auto key_rows, key_row_values(d, t, *options.after, own));
      cond = "(" + column_expr(d, col, p.type) + ", " + key_rows.first + ")" + after_op + "(" + value_text + ", " +
             key_rows.second + ")";
    } else {
      cond = col + (sequence[i] == Part::kNulls ? " IS NULL" : " IS NOT NULL");
    }
    out.emplace_back(head + cond + " ORDER BY " + order, std::move(own));
  }
  return out;
}

// A multi-term order: ORDER BY the sort terms, then the key ascending. NULL placement is written out ((col IS NULL)
// first or last) because SQLite and PostgreSQL disagree by default. Keyset resumption over (sort values..., key) is
// the OR of "equal on terms 0..i-1 and after on term i", and finally "equal on every term and key greater", each
// written with the same expressions as the ORDER BY so that the database's order and the resumption agree. No
// index serves it: the database sorts the matching rows for every page.
Result<std::vector<PageStatement>> multi_term_statements(const Dialect& d, const TableInfo& t, std::string where,
                                                         SqlParams params, const ScanOptions& options) {
  std::string order;
  for (const SortKey& term : options.order) {
    const cim::PropertyDef& p = t.cls->property(term.property);
    const std::string& col = t.columns[term.property];
    order += (order.empty() ? "" : ", ") + std::string("(") + col + " IS NULL) " + (term.descending ? "ASC" : "DESC") +
             ", " + column_expr(d, col, p.type) + (term.descending ? " DESC" : " ASC");
  }
  for (std::size_t k : t.cls->key_indices()) order += ", " + column_expr(d, t.columns[k], t.cls->property(k).type);

  if (options.after) {
    // SQLite's placeholders are positional, so every occurrence of a value is bound again, in text order.
    auto bind_value = [&](const cim::Value& v, cim::Type type, const std::string& name) -> Result<std::string> {
      PKG_ASSIGN_OR_RETURN(SqlParam param, encode_value(v, type, name));
      params.push_back(std::move(param));
      return value_expr(d, params.size(), type);
    };
    // Term i's "equal" (after == false) or "after" test against the resumption row.
    auto term_test = [&](std::size_t i, bool after) -> Result<std::string> {
      const SortKey& term = options.order[i];
      const cim::PropertyDef& p = t.cls->property(term.property);
      const std::string& col = t.columns[term.property];
      const cim::Value& v = (*options.after_sort)[i];
      if (v.is_null()) {
        if (!after) return col + " IS NULL";
        return term.descending ? std::string("1=0") : col + " IS NOT NULL";
      }
      const std::string expr = column_expr(d, col, p.type);
      PKG_ASSIGN_OR_RETURN(std::string value, bind_value(v, p.type, p.name));
      if (!after) return expr + " = " + value;
      return term.descending ? "(" + expr + " < " + value + " OR " + col + " IS NULL)" : expr + " > " + value;
    };
    auto equal_prefix = [&](std::size_t n) -> Result<std::string> {
      std::string out;
      for (std::size_t j = 0; j < n; ++j) {
        PKG_ASSIGN_OR_RETURN(std::string eq, term_test(j, false));
        out += eq + " AND ";
      }
      return out;
    };
    std::string any;
    for (std::size_t i = 0; i < options.order.size(); ++i) {
      PKG_ASSIGN_OR_RETURN(std::string prefix, equal_prefix(i));
      PKG_ASSIGN_OR_RETURN(std::string after, term_test(i, true));
      any += (any.empty() ? "" : " OR ") + std::string("(") + prefix + after + ")";
    }
    PKG_ASSIGN_OR_RETURN(std::string all_equal, equal_prefix(options.order.size()));
    PKG_ASSIGN_OR_RETURN(auto key_rows, key_row_values(d, t, *options.after, params));
    any += " OR (" + all_equal + "(" + key_rows.first + ") > (" + key_rows.second + "))";
    where = "(" + where + ") AND (" + any + ")";
  }
  std::vector<PageStatement> out;
  out.emplace_back("SELECT " + t.select_list + " FROM " + t.table + " WHERE " + where + " ORDER BY " + order,
                   std::move(params));
  return out;
}

// The statements of one page of an ordered scan, run in sequence; validates the order and the resumption.
Result<std::vector<PageStatement>> ordered_statements(const Dialect& d, const TableInfo& t, std::string where,
                                                      SqlParams params, const ScanOptions& options) {
  for (const SortKey& term : options.order) {
    if (term.property >= t.columns.size()) {
      return make_error(WbemCode::kInvalidParameter, "sort property " + std::to_string(term.property) +
                                                         " is out of range for " + t.cls->name());
    }
    const cim::PropertyDef& p = t.cls->property(term.property);
    if (p.type.array || p.type.base == cim::CimType::kObject) {
      return make_error(WbemCode::kInvalidParameter, "cannot sort " + t.cls->name() + " by " + p.name +
                                                         ": arrays and embedded objects have no order");
    }
  }
  if (options.after) {
    if (!options.after_sort || options.after_sort->size() != options.order.size()) {
      return make_error(WbemCode::kInvalidParameter, "an ordered scan resumes with one sort value per order term");
    }
    // A keyless class holds one instance at most: any resumption is past it.
    if (t.cls->key_indices().empty()) return std::vector<PageStatement>{};
  }
  if (options.order.size() == 1) return one_term_statements(d, t, where, params, options);
  return multi_term_statements(d, t, std::move(where), std::move(params), options);
}

}  // namespace

Status SqlStore::scan_ordered_on(Connection& conn, const TableInfo& t, const Schema& schema, std::string where,
                                 SqlParams params, const RowSink& sink, const ScanOptions& options) {
  PKG_ASSIGN_OR_RETURN(std::vector<PageStatement> statements,
                       ordered_statements(conn.dialect(), t, std::move(where), std::move(params), options));
  std::optional<std::uint64_t> left = options.limit;  // rows the page may still take
  bool stopped = false;
  for (auto& [sql, own] : statements) {
    if (stopped || (left && *left == 0)) break;
    if (left) {
      own.emplace_back(clamp_limit(*left));
      sql += " LIMIT " + conn.dialect().placeholder(own.size());
    }
    PKG_TRY(conn.stream(sql, own, [&](const SqlRow& row) -> Result<bool> {
      PKG_ASSIGN_OR_RETURN(cim::Instance inst, decode_row(t, row, schema.registry()));
      if (left) --*left;
      stopped = !sink(std::move(inst));
      return !stopped;
    }));
  }
  return ok_status();
}

Result<std::optional<std::string>> SqlStore::get_meta_on(Connection& conn, std::string_view key) {
  PKG_TRY(check_text(key, "meta key"));
  std::optional<std::string> out;
  PKG_TRY(conn.query("SELECT meta_value FROM pkgcast_meta WHERE meta_key = " + conn.dialect().placeholder(1),
                     {std::string(key)}, [&](const SqlRow& row) -> Result<bool> {
                       out = std::string(row.as_text(0));
                       return false;
                     }));
  return out;
}

Result<std::optional<cim::Instance>> SqlStore::get(const cim::ClassDef& cls, const std::vector<cim::Value>& key) {
  PKG_ASSIGN_OR_RETURN(const TableInfo* t, schema_.table(cls));
  std::optional<cim::Instance> out;
  PKG_TRY(reading([&](Connection& conn) -> Status {
    PKG_ASSIGN_OR_RETURN(out, get_on(conn, *t, schema_, key));
    return ok_status();
  }));
  return out;
}

Status SqlStore::scan(const cim::ClassDef& cls, const Predicate& filter, const RowSink& sink,
                      const ScanOptions& options) {
  PKG_ASSIGN_OR_RETURN(const TableInfo* t, schema_.table(cls));
  bool delivered = false;
  const RowSink counted = [&](cim::Instance&& inst) {
    delivered = true;
    return sink(std::move(inst));
  };
  return reading([&](Connection& conn) { return scan_on(conn, *t, schema_, filter, counted, options); }, &delivered);
}

Result<std::uint64_t> SqlStore::count(const cim::ClassDef& cls, const Predicate& filter) {
  PKG_ASSIGN_OR_RETURN(const TableInfo* t, schema_.table(cls));
  std::int64_t n = 0;
  PKG_TRY(reading([&](Connection& conn) -> Status {
    SqlParams params;
    PKG_ASSIGN_OR_RETURN(std::string where, render_predicate(filter, *t, conn.dialect(), params));
    return conn.stream("SELECT COUNT(*) FROM " + t->table + " WHERE " + where, params,
                       [&](const SqlRow& row) -> Result<bool> {
                         PKG_ASSIGN_OR_RETURN(n, row.as_int(0));
                         return false;
                       });
  }));
  return static_cast<std::uint64_t>(n);
}

Result<std::optional<std::string>> SqlStore::get_meta(std::string_view key) {
  std::optional<std::string> out;
  PKG_TRY(reading([&](Connection& conn) -> Status {
    PKG_ASSIGN_OR_RETURN(out, get_meta_on(conn, key));
    return ok_status();
  }));
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> SqlStore::list_meta_on(Connection& conn,
                                                                                std::string_view prefix) {
  PKG_TRY(check_text(prefix, "meta prefix"));
  std::vector<std::pair<std::string, std::string>> out;
  // Keys compare by bytes (BINARY / COLLATE "C"), so the prefix's keys are one range starting at the prefix.
  PKG_TRY(conn.stream("SELECT meta_key, meta_value FROM pkgcast_meta WHERE meta_key >= " +
                          conn.dialect().placeholder(1) + " ORDER BY meta_key",
                      {std::string(prefix)}, [&](const SqlRow& row) -> Result<bool> {
                        const std::string_view key = row.as_text(0);
                        if (key.substr(0, prefix.size()) != prefix) return false;
                        out.emplace_back(std::string(key), std::string(row.as_text(1)));
                        return true;
                      }));
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> SqlStore::list_meta(std::string_view prefix) {
  PKG_TRY(check_text(prefix, "meta prefix"));
  std::vector<std::pair<std::string, std::string>> out;
  PKG_TRY(reading([&](Connection& conn) -> Status {
    PKG_ASSIGN_OR_RETURN(out, list_meta_on(conn, prefix));
    return ok_status();
  }));
  return out;
}

Result<std::uint64_t> SqlStore::last_revision() { return committed_revision_.load(); }

Result<std::uint64_t> SqlStore::first_revision() {
  const std::uint64_t last = committed_revision_.load();
  std::uint64_t first = 0;
  PKG_TRY(reading([&](Connection& conn) -> Status {
    PKG_ASSIGN_OR_RETURN(first, read_uint(conn, "SELECT min(revision) FROM pkgcast_journal", {}));
    return ok_status();
  }));
  return first == 0 ? last + 1 : first;
}

Status SqlStore::read_journal(std::uint64_t after, std::size_t limit,
                              const std::function<bool(JournalEntry&&)>& sink) {
  const std::uint64_t last = committed_revision_.load();
  if (after > last) {
    return make_error(WbemCode::kInvalidParameter, "revision " + std::to_string(after) +
                                                       " is beyond the last revision " + std::to_string(last) +
                                                       " of this database");
  }
  bool delivered = false;
  const auto counted = [&](JournalEntry&& e) {
    delivered = true;
    return sink(std::move(e));
  };
  return reading([&](Connection& conn) -> Status {
    // One read transaction, so the compaction check and the rows come from the same snapshot.
    PKG_TRY(conn.begin(false));
    auto body = [&]() -> Status {
      PKG_ASSIGN_OR_RETURN(std::uint64_t compacted, compacted_through(conn));
      if (after < compacted) {
        return make_error(WbemCode::kNotFound, "revision " + std::to_string(after + 1) +
                                                   " was compacted (the journal now starts after revision " +
                                                   std::to_string(compacted) + "); re-list, then watch");
      }
      return stream_journal_on(conn, schema_.registry(), after, limit, counted);
    };
    Status st = body();
    Status end = conn.rollback();  // read-only
    if (st.ok() && !end.ok()) return end;
    return st;
  }, &delivered);
}

void SqlStore::add_commit_listener(CommitListener listener) {
  MutexLock lock(listeners_mu_);
  auto next = std::make_shared<std::vector<CommitListener>>(*listeners_);
  next->push_back(std::move(listener));
  listeners_ = std::move(next);
}

void SqlStore::close() {
  MutexLock close_lock(close_mu_);
  {
    MutexLock lock(queue_mu_);
    closing_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (writer_conn_ && !writer_conn_->broken()) backend_.release_writer(*writer_conn_);
  writer_conn_.reset();
  std::vector<std::unique_ptr<Connection>> idle;
  {
    MutexLock lock(pool_mu_);
    pool_closed_ = true;
    idle.swap(idle_);
    open_readers_ -= idle.size();
  }
  pool_cv_.notify_all();
}

Result<std::pair<std::string, SqlParams>> SqlStore::scan_sql_for_test(const cim::ClassDef& cls,
                                                                      const Predicate& filter) {
  PKG_ASSIGN_OR_RETURN(const TableInfo* t, schema_.table(cls));
  SqlParams params;
  PKG_ASSIGN_OR_RETURN(std::string where, render_predicate(filter, *t, *backend_.dialect, params));
  return std::make_pair("SELECT " + t->select_list + " FROM " + t->table + " WHERE " + where + t->order_by,
                        std::move(params));
}

Result<std::vector<std::pair<std::string, SqlParams>>> SqlStore::ordered_scan_sql_for_test(
    const cim::ClassDef& cls, const Predicate& filter, const ScanOptions& options) {
  PKG_ASSIGN_OR_RETURN(const TableInfo* t, schema_.table(cls));
  const Dialect& d = *backend_.dialect;
  SqlParams params;
  PKG_ASSIGN_OR_RETURN(std::string where, render_predicate(filter, *t, d, params));
  PKG_ASSIGN_OR_RETURN(std::vector<PageStatement> statements,
                       ordered_statements(d, *t, std::move(where), std::move(params), options));
  for (auto& [sql, own] : statements) {
    if (!options.limit) continue;
    own.emplace_back(clamp_limit(*options.limit));
    sql += " LIMIT " + d.placeholder(own.size());
  }
  return statements;
}

void SqlStore::lose_next_commit_answer_for_test() {
  MutexLock lock(test_mu_);
  lose_next_commit_answer_ = true;
}

Status SqlStore::take_up_commits_whose_answer_was_lost() {
  Connection& conn = *writer_conn_;
  PKG_ASSIGN_OR_RETURN(std::uint64_t last, read_uint(conn, "SELECT max(revision) FROM pkgcast_journal", {}));
  if (last < next_revision_) return ok_status();
  // At most the batches whose answers were lost: a few thousand entries.
  std::vector<JournalEntry> found;
  PKG_TRY(stream_journal_on(conn, schema_.registry(), next_revision_ - 1, last - next_revision_ + 1,
                            [&](JournalEntry&& e) {
                              found.push_back(std::move(e));
                              return true;
                            }));
  next_revision_ = last + 1;
  committed_revision_.store(last);
  tell_listeners(found);
  return ok_status();
}

void SqlStore::fail_next_commit_for_test(Error error) {
  MutexLock lock(test_mu_);
  fail_next_commit_ = std::move(error);
}

bool SqlStore::fail_next_commit_at_server_for_test() {
  if (!backend_.dialect->postgres()) return false;
  MutexLock lock(test_mu_);
  fail_next_commit_at_server_ = true;
  return true;
}

Result<std::string> SqlStore::query_text_for_test(const std::vector<std::string>& setup, const std::string& sql,
                                                  const SqlParams& params) {
  PKG_ASSIGN_OR_RETURN(Lease conn, lease());
  for (const auto& s : setup) PKG_TRY(conn->exec(s, {}));
  std::string out;
  PKG_TRY(conn->query(sql, params, [&](const SqlRow& row) -> Result<bool> {
    for (int c = 0; c < row.columns(); ++c) {
      out += row.is_null(c) ? "NULL" : std::string(row.as_text(c));
      out += c + 1 < row.columns() ? "|" : "\n";
    }
    return true;
  }));
  return out;
}

}  // namespace pkgcast::store
