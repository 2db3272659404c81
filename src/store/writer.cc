// The single writer: batches of commands in one transaction, each under a savepoint, the journal in the same
// transaction, acknowledgements only after COMMIT (design.md section 9).
#include <limits>

#include "store/backends.h"

#include "store/row_codec.h"
#include "store/sql_store.h"

namespace pkgcast::store {
namespace {

constexpr const char* kSavepoint = "SAVEPOINT pkgcast_command";
constexpr const char* kRollbackTo = "ROLLBACK TO SAVEPOINT pkgcast_command";
constexpr const char* kRelease = "RELEASE SAVEPOINT pkgcast_command";

Status exec_status(Connection& c, const std::string& sql, const SqlParams& params = {}) {
  auto r = c.exec(sql, params);
  if (!r.ok()) return std::move(r).error();
  return ok_status();
}

std::string journal_insert_sql(const Dialect& d) {
  std::string sql = "INSERT INTO pkgcast_journal (revision, commit_time, kind, class_name, instance_key, instance, "
                    "previous) VALUES (";
  for (std::size_t i = 1; i <= 7; ++i) sql += d.placeholder(i) + (i < 7 ? ", " : ")");
  return sql;
}

// The store whose command this thread is running, if any (see WriteTxn: commands read only through it).
thread_local const SqlStore* t_running_command = nullptr;

class RunningCommand {
 public:
  explicit RunningCommand(const SqlStore* store) : previous_(t_running_command) { t_running_command = store; }
  ~RunningCommand() { t_running_command = previous_; }
  RunningCommand(const RunningCommand&) = delete;
  RunningCommand& operator=(const RunningCommand&) = delete;

 private:
  const SqlStore* previous_;
};

}  // namespace

bool SqlStore::on_command_thread() const { return t_running_command == this; }

// The view a command works in: the writer connection inside the batch's transaction.
class SqlStore::Txn final : public WriteTxn {
 public:
  Txn(SqlStore& store, Micros now, std::vector<JournalEntry>& entries)
      : store_(store), conn_(*store.writer_conn_), now_(now), entries_(entries) {}

  Result<std::optional<cim::Instance>> get(const cim::ClassDef& cls, const std::vector<cim::Value>& key) override {
    PKG_ASSIGN_OR_RETURN(const TableInfo* t, store_.schema_.table(cls));
    return get_on(conn_, *t, store_.schema_, key);
  }

  Status scan(const cim::ClassDef& cls, const Predicate& filter, const RowSink& sink,
              const ScanOptions& options) override {
    PKG_ASSIGN_OR_RETURN(const TableInfo* t, store_.schema_.table(cls));
    return scan_on(conn_, *t, store_.schema_, filter, sink, options);
  }

  Status put(const cim::Instance& inst) override { return write(inst, /*must_be_new=*/false); }
  Status insert(const cim::Instance& inst) override { return write(inst, /*must_be_new=*/true); }

  Status remove(const cim::ClassDef& cls, const std::vector<cim::Value>& key) override {
    PKG_ASSIGN_OR_RETURN(const TableInfo* t, store_.schema_.table(cls));
    PKG_ASSIGN_OR_RETURN(SqlParams params, encode_key(*t, key));
    PKG_ASSIGN_OR_RETURN(auto current, get_on(conn_, *t, store_.schema_, key));
    if (!current) return make_error(WbemCode::kNotFound, describe(*t, key) + " does not exist");
    PKG_TRY(exec_status(conn_, t->delete_by_key, params));
    auto old = std::make_shared<const cim::Instance>(std::move(*current));
    return journal(ChangeKind::kDeleted, old, old);
  }

  Result<std::optional<std::string>> get_meta(std::string_view key) override { return get_meta_on(conn_, key); }

  Result<std::vector<std::pair<std::string, std::string>>> list_meta(std::string_view prefix) override {
    return list_meta_on(conn_, prefix);
  }

  Status put_meta(std::string_view key, std::string_view value) override {
    if (key.empty()) return make_error(WbemCode::kInvalidParameter, "meta key is empty");
    PKG_TRY(check_text(key, "meta key"));
    PKG_TRY(check_text(value, "meta value"));
    const Dialect& d = conn_.dialect();
    return exec_status(conn_,
                       "INSERT INTO pkgcast_meta (meta_key, meta_value) VALUES (" + d.placeholder(1) + ", " +
                           d.placeholder(2) + ") ON CONFLICT (meta_key) DO UPDATE SET meta_value = excluded.meta_value",
                       {std::string(key), std::string(value)});
  }

  Status remove_meta(std::string_view key) override {
    PKG_TRY(check_text(key, "meta key"));
    return exec_status(conn_, "DELETE FROM pkgcast_meta WHERE meta_key = " + conn_.dialect().placeholder(1),
                       {std::string(key)});
  }

  Micros now() const override { return now_; }
  Connection& connection() { return conn_; }

 private:
  static std::string describe(const TableInfo& t, const std::vector<cim::Value>& key) {
    cim::Instance probe(*t.cls);
    for (std::size_t k = 0; k < key.size() && k < t.cls->key_indices().size(); ++k) {
      probe.set(t.cls->key_indices()[k], key[k]);
    }
    return probe.relpath();
  }

  Status write(const cim::Instance& inst, bool must_be_new) {
    PKG_ASSIGN_OR_RETURN(const TableInfo* t, store_.schema_.table(inst.class_def()));
    // Everything is checked and converted before the database is touched.
    PKG_ASSIGN_OR_RETURN(EncodedInstance enc, encode_instance(*t, inst));
    if (!t->upsert_returning_previous.empty()) return write_returning_previous(*t, std::move(enc), must_be_new);
    const std::vector<cim::Value> key = key_of(enc.instance);
    PKG_ASSIGN_OR_RETURN(auto current, get_on(conn_, *t, store_.schema_, key));
    if (current && must_be_new) {
      return make_error(WbemCode::kAlreadyExists, current->relpath() + " already exists");
    }
    auto now_inst = std::make_shared<const cim::Instance>(enc.instance);
    if (!current) {
      PKG_TRY(exec_status(conn_, t->insert, enc.params));
      return journal(ChangeKind::kCreated, now_inst, nullptr);
    }
    if (same_values(*t, *current, enc.instance)) return ok_status();
    SqlParams params = std::move(enc.params);
    PKG_ASSIGN_OR_RETURN(SqlParams key_params, encode_key(*t, key));
    for (auto& p : key_params) params.push_back(std::move(p));
    PKG_TRY(exec_status(conn_, t->update_by_key, params));
    return journal(ChangeKind::kModified, now_inst, std::make_shared<const cim::Instance>(std::move(*current)));
  }

  // The same outcome in one statement (PostgreSQL): the write happens and the previous row comes back with it.
  // An unchanged instance is written over with the same values, which no reader can tell, and journals nothing.
  Status write_returning_previous(const TableInfo& t, EncodedInstance enc, bool must_be_new) {
    std::optional<cim::Instance> current;
    PKG_TRY(conn_.query(must_be_new ? t.insert_returning_previous : t.upsert_returning_previous, enc.params,
                        [&](const SqlRow& row) -> Result<bool> {
                          PKG_ASSIGN_OR_RETURN(cim::Instance previous, decode_row(t, row, store_.schema_.registry()));
                          current.emplace(std::move(previous));
                          return false;
                        }));
    // ON CONFLICT DO NOTHING: an insert over an existing instance changed nothing.
    if (current && must_be_new) return make_error(WbemCode::kAlreadyExists, current->relpath() + " already exists");
    auto now_inst = std::make_shared<const cim::Instance>(std::move(enc.instance));
    if (!current) return journal(ChangeKind::kCreated, now_inst, nullptr);
    if (same_values(t, *current, *now_inst)) return ok_status();
    return journal(ChangeKind::kModified, now_inst, std::make_shared<const cim::Instance>(std::move(*current)));
  }

  static bool same_values(const TableInfo& t, const cim::Instance& a, const cim::Instance& b) {
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      if (!(a.get(i) == b.get(i))) return false;
    }
    return true;
  }

  Status journal(ChangeKind kind, std::shared_ptr<const cim::Instance> inst,
                 std::shared_ptr<const cim::Instance> previous) {
    JournalEntry e;
    e.revision = store_.next_revision_;
    e.time = now_;
    e.kind = kind;
    e.class_name = inst->class_name();
    e.key = inst->relpath();
    PKG_ASSIGN_OR_RETURN(std::string inst_json, instance_to_json_text(*inst));
    SqlParam prev_json = SqlNull{};
    if (previous) {
      PKG_ASSIGN_OR_RETURN(std::string p, instance_to_json_text(*previous));
      prev_json = std::move(p);
    }
    // Nothing in the command reads the journal back, so the row travels with the next statement (PostgreSQL);
    // it still lands inside this command's savepoint, and its failure fails the batch (Connection::defer).
    static const std::string sqlite_sql = journal_insert_sql(sqlite_dialect());
    static const std::string pg_sql = journal_insert_sql(pg_dialect());
    PKG_TRY(conn_.defer(conn_.dialect().postgres() ? pg_sql : sqlite_sql,
                        {static_cast<std::int64_t>(e.revision), e.time, static_cast<std::int64_t>(kind), e.class_name,
                         e.key, std::move(inst_json), std::move(prev_json)}));
    ++store_.next_revision_;
    e.instance = std::move(inst);
    e.previous = std::move(previous);
    entries_.push_back(std::move(e));
    return ok_status();
  }

  SqlStore& store_;
  Connection& conn_;
  Micros now_;
  std::vector<JournalEntry>& entries_;
};

std::future<Result<CommitInfo>> SqlStore::submit(WriteCommand command) {
  Pending p{std::move(command), {}};
  auto future = p.promise.get_future();
  {
    std::lock_guard lock(queue_mu_);
    if (!closing_) {
      queue_.push_back(std::move(p));
      queue_cv_.notify_one();
      return future;
    }
  }
  p.promise.set_value(make_error(WbemCode::kShuttingDown, "the store is closed"));
  return future;
}

void SqlStore::writer_loop() {
  for (;;) {
    std::vector<Pending> batch;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;  // closing, and drained
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    run_batch(batch);
  }
}

Status SqlStore::ensure_writer_connection() {
  if (writer_conn_ && !writer_conn_->broken()) return ok_status();
  PKG_ASSIGN_OR_RETURN(writer_conn_, backend_.connect());
  return backend_.claim_writer(*writer_conn_);
}

Status SqlStore::run_command(Pending& p, Txn& txn) {
  RunningCommand running(this);
  try {
    return p.command(txn);
  } catch (const std::exception& e) {
    return make_error(WbemCode::kFailed, std::string("write command threw: ") + e.what());
  } catch (...) {
    return make_error(WbemCode::kFailed, "write command threw");
  }
}

void SqlStore::run_batch(std::vector<Pending>& batch) {
  auto fail_all = [&](const Error& e) {
    for (auto& p : batch) p.promise.set_value(e);
  };
  if (Status st = ensure_writer_connection(); !st.ok()) {
    writer_conn_.reset();  // try again with the next batch
    return fail_all(st.error());
  }
  std::optional<Error> injected_failure;
  {
    std::lock_guard lock(test_mu_);
    injected_failure.swap(fail_next_commit_);
  }
  Connection& conn = *writer_conn_;
  const Micros now = options_.clock->now_micros();
  const std::uint64_t batch_start = next_revision_;
  if (Status st = conn.begin(true); !st.ok()) return fail_all(st.error());

  std::vector<JournalEntry> entries;
  std::vector<std::optional<Error>> failures(batch.size());
  std::vector<std::uint64_t> revisions(batch.size(), 0);
  std::optional<Error> batch_error;
  for (std::size_t i = 0; i < batch.size() && !batch_error; ++i) {
    const std::uint64_t rev_before = next_revision_;
    const std::size_t entries_before = entries.size();
    // The savepoint and its release travel with the next statement (Connection::defer); a failure of either
    // fails every later statement of the batch, so it surfaces no later than COMMIT, which then does not happen.
    if (Status st = conn.defer(kSavepoint); !st.ok()) {
      batch_error = st.error();
      break;
    }
    Txn txn(*this, now, entries);
    Status st = run_command(batch[i], txn);
    if (st.ok()) {
      if (Status rel = conn.defer(kRelease); !rel.ok()) {
        batch_error = rel.error();
        break;
      }
      revisions[i] = next_revision_ - 1;
      continue;
    }
    // The command's own error: undo exactly what it did, journal entries and revisions included.
    failures[i] = st.error();
    next_revision_ = rev_before;
    entries.resize(entries_before);
    if (Status undo = exec_status(conn, kRollbackTo); !undo.ok()) {
      batch_error = undo.error();
    } else if (Status rel = conn.defer(kRelease); !rel.ok()) {
      batch_error = rel.error();
    }
  }
  if (!batch_error && injected_failure) batch_error = std::move(injected_failure);
  Status committed = batch_error ? Status(*batch_error) : conn.commit();
  if (!committed.ok()) {
    if (conn.in_transaction()) (void)conn.rollback();
    next_revision_ = batch_start;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i].promise.set_value(failures[i] ? *failures[i] : committed.error());
    }
    return;
  }
  committed_revision_.store(next_revision_ - 1);
  // Listeners first: once a command's future resolves, every listener (the event engine) has its changes.
  if (!entries.empty()) {
    std::shared_ptr<const std::vector<CommitListener>> listeners;
    {
      std::lock_guard lock(listeners_mu_);
      listeners = listeners_;
    }
    for (const auto& l : *listeners) {
      try {
        l(entries);
      } catch (...) {  // a listener's failure must not take the writer down
      }
    }
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (failures[i]) {
      batch[i].promise.set_value(*failures[i]);
    } else {
      batch[i].promise.set_value(CommitInfo{revisions[i]});
    }
  }
}

Result<std::uint64_t> SqlStore::compact_journal() {
  std::uint64_t dropped = 0;
  const JournalRetention retention = options_.retention;
  auto done = execute([&, retention](WriteTxn& w) -> Status {
    Txn& txn = static_cast<Txn&>(w);
    Connection& c = txn.connection();
    const Dialect& d = c.dialect();
    const std::int64_t last = static_cast<std::int64_t>(next_revision_ - 1);
    // The journal stays a contiguous suffix: drop everything up to the newest entry that is out of retention.
    const std::int64_t by_count = retention.max_entries == 0 || retention.max_entries >= next_revision_
                                      ? 0
                                      : last - static_cast<std::int64_t>(retention.max_entries);
    const std::int64_t age_limit = retention.max_age_seconds == 0
                                       ? std::numeric_limits<std::int64_t>::min()
                                       : txn.now() - retention.max_age_seconds * 1'000'000;
    std::int64_t cut = by_count;
    PKG_TRY(c.query("SELECT max(revision) FROM pkgcast_journal WHERE commit_time < " + d.placeholder(1), {age_limit},
                    [&](const SqlRow& row) -> Result<bool> {
                      if (!row.is_null(0)) {
                        PKG_ASSIGN_OR_RETURN(std::int64_t r, row.as_int(0));
                        cut = std::max(cut, r);
                      }
                      return false;
                    }));
    if (cut <= 0) return ok_status();
    PKG_ASSIGN_OR_RETURN(std::int64_t n,
                         c.exec("DELETE FROM pkgcast_journal WHERE revision <= " + d.placeholder(1), {cut}));
    dropped = static_cast<std::uint64_t>(n);
    if (n == 0) return ok_status();  // already compacted that far: the recorded point never moves back
    return exec_status(c,
                       "INSERT INTO pkgcast_internal (name, value) VALUES (" + d.placeholder(1) + ", " +
                           d.placeholder(2) + ") ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                       {std::string("journal_compacted_through"), std::to_string(cut)});
  });
  if (!done.ok()) return std::move(done).error();
  return dropped;
}

}  // namespace pkgcast::store
