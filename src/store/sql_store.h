// The one Store implementation, over either backend's Connection. Internal to src/store.
//
// Threads: any thread reads, on a connection leased from a small pool (one connection per thread at a time, as
// SQLite's multi-thread mode requires); one writer thread owns the writer connection and runs every command.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "core/mutex.h"
#include "core/thread_annotations.h"
#include "store/row_cache.h"
#include "store/schema.h"
#include "store/sql.h"
#include "store/store.h"

namespace pkgcast::store {

struct BackendSpec {
  std::string name;  // "sqlite" or "postgresql"
  const Dialect* dialect = nullptr;
  std::function<Result<std::unique_ptr<Connection>>()> connect;
  // Runs on every new writer connection before migrations (PostgreSQL: the single-writer advisory lock).
  std::function<Status(Connection&)> claim_writer;
  // Runs on the writer connection when the store closes (PostgreSQL: release the lock at once rather than when
  // the server process behind the connection has exited, which happens asynchronously).
  std::function<void(Connection&)> release_writer;
};

class SqlStore final : public Store {
 public:
  static Result<std::unique_ptr<Store>> open(const OpenOptions& options, BackendSpec backend);
  ~SqlStore() override;

  std::string_view backend_name() const override { return backend_.name; }
  const cim::ClassRegistry& registry() const override { return schema_.registry(); }
  Result<std::optional<cim::Instance>> get(const cim::ClassDef& cls, const std::vector<cim::Value>& key) override;
  Status scan(const cim::ClassDef& cls, const Predicate& filter, const RowSink& sink,
              const ScanOptions& options) override;
  Result<std::uint64_t> count(const cim::ClassDef& cls, const Predicate& filter) override;
  Result<std::optional<std::string>> get_meta(std::string_view key) override;
  Result<std::vector<std::pair<std::string, std::string>>> list_meta(std::string_view prefix) override;
  std::future<Result<CommitInfo>> submit(WriteCommand command) PKG_EXCLUDES(queue_mu_) override;
  Result<std::uint64_t> last_revision() override;
  Result<std::uint64_t> first_revision() override;
  Status read_journal(std::uint64_t after, std::size_t limit,
                      const std::function<bool(JournalEntry&&)>& sink) override;
  Result<std::uint64_t> compact_journal() override;
  void add_commit_listener(CommitListener listener) PKG_EXCLUDES(listeners_mu_) override;
  void close() PKG_EXCLUDES(close_mu_, queue_mu_, pool_mu_) override;

  // The SQL a scan would run, for tests that check an index serves it (EXPLAIN).
  Result<std::pair<std::string, SqlParams>> scan_sql_for_test(const cim::ClassDef& cls, const Predicate& filter);
  // The statements one page of an ordered scan (options.order not empty) would run, in sequence, each with the
  // page's whole LIMIT when it has one.
  Result<std::vector<std::pair<std::string, SqlParams>>> ordered_scan_sql_for_test(const cim::ClassDef& cls,
                                                                                   const Predicate& filter,
                                                                                   const ScanOptions& options);
  // Runs `setup` statements then `sql` on one reader connection; returns the rows as text ("a|b\n" per row).
  Result<std::string> query_text_for_test(const std::vector<std::string>& setup, const std::string& sql,
                                          const SqlParams& params);
  // Makes the COMMIT of the next batch to start fail with `error` (after running its commands), as a full disk
  // would.
  void fail_next_commit_for_test(Error error) PKG_EXCLUDES(test_mu_);
  // Makes the database itself refuse the next batch's COMMIT, after every statement of the batch has run: a
  // constraint checked only at COMMIT is violated (PostgreSQL; false where the backend has no such constraint).
  bool fail_next_commit_at_server_for_test() PKG_EXCLUDES(test_mu_);
  // Makes the writer lose the answer of the next COMMIT it reads (and its connection) after the commit succeeded,
  // as when the connection dies at that moment: the batch's commands fail though their changes committed.
  void lose_next_commit_answer_for_test() PKG_EXCLUDES(test_mu_);
  // Rows in the writer's cache. Only from a command (the writer thread).
  std::size_t cached_rows_for_test() const { return row_cache_.size(); }

  // Shared by the reader and writer paths (writer.cc).
  static Result<std::optional<cim::Instance>> get_on(Connection& conn, const TableInfo& t, const Schema& schema,
                                                     const std::vector<cim::Value>& key);
  static Status scan_on(Connection& conn, const TableInfo& t, const Schema& schema, const Predicate& filter,
                        const RowSink& sink, const ScanOptions& options);
  static Status scan_ordered_on(Connection& conn, const TableInfo& t, const Schema& schema, std::string where,
                                SqlParams params, const RowSink& sink, const ScanOptions& options);
  static Result<std::optional<std::string>> get_meta_on(Connection& conn, std::string_view key);
  static Result<std::vector<std::pair<std::string, std::string>>> list_meta_on(Connection& conn,
                                                                               std::string_view prefix);

  // Reader connections now open (leased and idle), for tests of the pool's bound.
  std::size_t reader_connections_for_test() PKG_EXCLUDES(pool_mu_);
  // The bound on concurrent reads (OpenOptions::max_readers, or the backend's default).
  std::size_t max_readers() const { return max_readers_; }

 private:
  class Lease;
  class Txn;
  class RowWrites;
  // One journal entry of the running batch. Its revision is given at the end of the batch (finish_journal).
  struct BatchEntry {
    JournalEntry entry;
    std::string instance_json;  // the journal's encoding of entry.instance
    // The journal's `previous` column: for kModified the delta (row_codec.h, previous_delta_json_text); empty for
    // kCreated and kDeleted, whose column is NULL (a deletion's previous instance is its instance).
    std::string previous_json;
    bool dropped = false;       // a put that turned out to change nothing: no entry
    // PostgreSQL's upsert of a row the writer did not know: kCreated until its answer names the previous row.
    bool awaiting_previous = false;
    // ... and the same command then deleted the row: deleted if the answer names a previous row, else nothing.
    bool deleted_later = false;
  };
  struct Pending {
    WriteCommand command;
    std::promise<Result<CommitInfo>> promise;
  };

  SqlStore(const OpenOptions& options, BackendSpec backend, Schema schema);

  Result<Lease> lease() PKG_EXCLUDES(pool_mu_);
  // Runs `read` on a leased connection. When it fails because a connection taken from the idle pool turns out to
  // have been lost while it waited there (the database restarted or failed over, pg_terminate_backend, an idle
  // reaper), and nothing was delivered yet (`*delivered` false, when given), it runs once more on a new connection:
  // a reader must not fail because of the pool's history.
  Status reading(const std::function<Status(Connection&)>& read, const bool* delivered = nullptr)
      PKG_EXCLUDES(pool_mu_);
  void give_back(std::unique_ptr<Connection> conn, bool nested) PKG_EXCLUDES(pool_mu_);
  // True on the writer thread while it runs one of this store's commands (writer.cc).
  bool on_command_thread() const;
  Status refuse_read_in_command(std::string_view what) const;

  // A batch whose COMMIT was sent and not yet answered (Connection::start_commit): its commands' answers wait for
  // it. Revisions [batch_start, batch_end) are its entries'.
  struct Committing {
    std::vector<Pending> batch;
    std::vector<std::optional<Error>> failures;  // commands that failed on their own
    std::vector<JournalEntry> committed;         // what listeners get
    std::vector<std::uint64_t> revisions;        // each command's revision
    std::uint64_t batch_start = 0;
    std::uint64_t batch_end = 0;
  };

  void writer_loop() PKG_EXCLUDES(queue_mu_);
  // Runs a batch's commands and sends its COMMIT. Where the connection commits in the background, the batch stays
  // in committing_ while the next one is prepared; that one settles it (finish_committing) before it commits.
  void run_batch(std::vector<Pending>& batch) PKG_EXCLUDES(test_mu_, listeners_mu_);
  // Reads committing_'s COMMIT outcome and answers its commands (listeners first). On failure the revisions and
  // the cache go back to before it; `batch_running`: a later batch is on the connection and undoes itself.
  Status finish_committing(bool batch_running) PKG_EXCLUDES(listeners_mu_, test_mu_);
  Status finish_failed_commit(Committing& c, const Error& error, bool batch_running);
  // On a new writer connection: a COMMIT whose answer was lost with the old one may have committed all the same.
  // The journal says; such entries go to the listeners now (they were not told) and revisions go on after them.
  Status take_up_commits_whose_answer_was_lost() PKG_EXCLUDES(listeners_mu_);
  void tell_listeners(const std::vector<JournalEntry>& committed) PKG_EXCLUDES(listeners_mu_);
  Status ensure_writer_connection();
  Status run_command(Pending& p, Txn& txn);
  // Settles the batch's entries (deferred answers), numbers them, and queues their journal rows; fills `committed`
  // (what listeners get) and each command's revision.
  Status finish_journal(Connection& conn, std::vector<BatchEntry>& entries, const std::vector<std::size_t>& entries_end,
                        std::vector<JournalEntry>& committed, std::vector<std::uint64_t>& revisions);
  static std::size_t journal_chunk(std::size_t remaining);
  static const std::string& journal_insert_sql(bool postgres, bool with_previous, std::size_t rows);

  const OpenOptions options_;
  const BackendSpec backend_;
  const Schema schema_;

  // The reader pool. `leased_[0]` counts top-level reads, `leased_[1]` reads nested in another read on the same
  // thread; each is bounded by max_readers_, and idle connections by max_readers_ too.
  const std::size_t max_readers_;
  Mutex pool_mu_;
  CondVar pool_cv_;
  std::vector<std::unique_ptr<Connection>> idle_ PKG_GUARDED_BY(pool_mu_);
  std::size_t leased_[2] PKG_GUARDED_BY(pool_mu_) = {0, 0};
  std::size_t open_readers_ PKG_GUARDED_BY(pool_mu_) = 0;  // idle + leased
  bool pool_closed_ PKG_GUARDED_BY(pool_mu_) = false;

  Mutex queue_mu_;
  CondVar queue_cv_;
  std::deque<Pending> queue_ PKG_GUARDED_BY(queue_mu_);
  bool closing_ PKG_GUARDED_BY(queue_mu_) = false;
  Mutex close_mu_;  // serializes close()
  std::thread writer_;

  // Writer thread only (and open(), before the thread starts).
  std::unique_ptr<Connection> writer_conn_;
  RowCache row_cache_;
  std::uint64_t next_revision_ = 1;
  std::optional<Committing> committing_;
  bool replace_writer_connection_ = false;  // the next batch starts on a new connection
  // The last committed revision; read by any thread.
  std::atomic<std::uint64_t> committed_revision_{0};

  Mutex test_mu_;
  std::optional<Error> fail_next_commit_ PKG_GUARDED_BY(test_mu_);
  bool fail_next_commit_at_server_ PKG_GUARDED_BY(test_mu_) = false;
  bool lose_next_commit_answer_ PKG_GUARDED_BY(test_mu_) = false;

  Mutex listeners_mu_;
  std::shared_ptr<const std::vector<CommitListener>> listeners_ PKG_GUARDED_BY(listeners_mu_);
};

}  // namespace pkgcast::store
