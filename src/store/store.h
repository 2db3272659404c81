// The site database: every provider instance, the change journal, and a small internal key/value area, behind one
// interface with two backends (SQLite, embedded default; PostgreSQL via libpq).
//
// Shape (design.md sections 4 and 9):
// - Reads run on the calling thread against committed data, on a connection leased from a bounded pool
//   (OpenOptions::max_readers); a read that cannot get one within OpenOptions::reader_wait fails with
//   WBEM_E_SERVER_TOO_BUSY.
// - Every mutation is a WriteCommand handed to the single writer thread. The writer takes what is waiting (up to a
//   bound), runs each command inside one transaction (holding its writes until it succeeds, or under a savepoint
//   once it needs them in the database, so a failing command changes nothing and does not disturb the others), appends one journal entry per changed instance, commits, and only
//   then resolves each command's future. "Acknowledged" therefore means "durable".
// - Journal revisions are assigned in commit order, start at 1 and have no gaps.
// - The schema derives from the class registry: one table per concrete, non-event class, one column per property.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cim/cim.h"
#include "core/clock.h"
#include "core/result.h"

namespace pkgcast::store {

enum class ChangeKind : std::uint8_t { kCreated = 1, kModified = 2, kDeleted = 3 };
std::string_view change_kind_name(ChangeKind k);  // "created", "modified", "deleted"

// One committed change to one provider instance.
struct JournalEntry {
  std::uint64_t revision = 0;
  Micros time = 0;  // commit time
  ChangeKind kind = ChangeKind::kCreated;
  std::string class_name;
  std::string key;  // the instance's relpath
  // The instance after the change; for kDeleted, the instance as it was.
  std::shared_ptr<const cim::Instance> instance;
  // The instance before the change, for kModified and kDeleted; null for kCreated.
  std::shared_ptr<const cim::Instance> previous;
};

// A filter the store evaluates in SQL. Semantics match WQL's: string comparisons ignore ASCII case, a comparison
// with a NULL column is false, LIKE patterns use SQL's '%' and '_' with '\' as the escape character.
// A Predicate is a pre-filter: callers that need exact WQL semantics evaluate their full condition on the rows
// it returns, so a backend may return more rows than the predicate admits, never fewer.
struct Predicate {
  enum class Kind : std::uint8_t { kTrue, kAnd, kOr, kCompare, kLike, kIsNull, kIsNotNull };
  enum class Op : std::uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };

  Kind kind = Kind::kTrue;
  Op op = Op::kEq;                 // kCompare
  std::size_t property = 0;        // kCompare, kLike, kIsNull, kIsNotNull: index into the class's properties
  cim::Value value;                // kCompare: a scalar of the property's type (never NULL)
  std::string pattern;             // kLike
  std::vector<Predicate> children;  // kAnd, kOr

  static Predicate always() { return {}; }
  static Predicate compare(std::size_t property, Op op, cim::Value value);
  static Predicate like(std::size_t property, std::string sql_pattern);
  static Predicate is_null(std::size_t property, bool negated = false);
  static Predicate all_of(std::vector<Predicate> children);
  static Predicate any_of(std::vector<Predicate> children);
};

// One term of a scan's order: a scalar property (not an array or embedded object), ascending or descending.
// NULL sorts before every value ascending and after every value descending; strings compare without regard to
// ASCII case, as keys do.
struct SortKey {
  std::size_t property = 0;  // index into the class's properties()
  bool descending = false;
};

struct ScanOptions {
  std::optional<std::uint64_t> limit;
  // Sort by these properties, then by key (the order is total and a page can resume; the key in the direction of
  // a single term, else ascending). Empty: key order. The database sorts; the scan streams. A property that is out
  // of range, an array or an object is WBEM_E_INVALID_PARAMETER.
  std::vector<SortKey> order;
  // With `order` and `after`: the sort values (one per order term, NULL allowed) of the row `after` names, so the
  // scan resumes strictly after (after_sort..., after...) in the scan's order. Required then; ignored otherwise.
  std::optional<std::vector<cim::Value>> after_sort;
  // Resume strictly after this key (the key property values in the class's key order), in the scan's key order:
  // string keys compare without regard to ASCII case, as the scan orders them. A caller pages through a class by
  // passing the last key it saw, holding no connection between pages. For a keyless class (one instance at
  // most) any `after` means "past it": no rows. A key of the wrong arity or type is WBEM_E_INVALID_PARAMETER.
  std::optional<std::vector<cim::Value>> after;
};

// Called once per row; return false to stop the scan early.
using RowSink = std::function<bool(cim::Instance&&)>;

// The view of the database a WriteCommand works in: its reads see the batch's own earlier writes.
// Only valid inside the command; never kept.
// A command reads ONLY through its WriteTxn. The Store's own reads see committed data, so from inside a command
// they would miss what earlier commands of the same batch (and the command itself) wrote; the store refuses them
// (WBEM_E_INVALID_OPERATION) when they come from a command running on the writer thread.
class WriteTxn {
 public:
  virtual ~WriteTxn() = default;

  virtual Result<std::optional<cim::Instance>> get(const cim::ClassDef& cls,
                                                   const std::vector<cim::Value>& key) = 0;
  virtual Status scan(const cim::ClassDef& cls, const Predicate& filter, const RowSink& sink,
                      const ScanOptions& options = {}) = 0;

  // Inserts or replaces by key. Journals kCreated or kModified (with the previous instance); an unchanged
  // instance journals nothing. Precondition: every key property is set.
  // String keys compare without regard to ASCII case, as in WMI: putting "abc00001" over "ABC00001" modifies it.
  // What the store cannot keep exactly is refused, changing nothing: a NULL key (WBEM_E_ILLEGAL_NULL), a value
  // that does not convert to its property's type (WBEM_E_TYPE_MISMATCH), a uint64 above INT64_MAX
  // (WBEM_E_VALUE_OUT_OF_RANGE), text that is not UTF-8 or holds NUL, a NaN (WBEM_E_INVALID_PARAMETER), a class
  // without a table (abstract, event, unknown: WBEM_E_INVALID_CLASS).
  virtual Status put(const cim::Instance& inst) = 0;
  // As put(const&), for an instance the caller is done with: the store keeps it rather than a copy of it (the
  // summarizers put several rows per status message).
  virtual Status put(cim::Instance&& inst) { return put(static_cast<const cim::Instance&>(inst)); }
  // As put, but WBEM_E_ALREADY_EXISTS when an instance with that key exists.
  virtual Status insert(const cim::Instance& inst) = 0;
  // Deletes by key and journals kDeleted. WBEM_E_NOT_FOUND when absent.
  virtual Status remove(const cim::ClassDef& cls, const std::vector<cim::Value>& key) = 0;

  // Internal state that is not a provider instance (id counters, token records): an ordered key/value area.
  virtual Result<std::optional<std::string>> get_meta(std::string_view key) = 0;
  // Every meta entry whose key starts with `prefix`, in key order, including the batch's own earlier writes.
  virtual Result<std::vector<std::pair<std::string, std::string>>> list_meta(std::string_view prefix) = 0;
  virtual Status put_meta(std::string_view key, std::string_view value) = 0;
  // Removing an absent key is not an error. Keys and values are UTF-8 text without NUL; keys compare by bytes.
  virtual Status remove_meta(std::string_view key) = 0;

  // The batch's commit-time clock reading (the same for every command of a batch).
  virtual Micros now() const = 0;
};

// Runs on the writer thread. Returning an error rolls back everything this command did. It reads only through the
// WriteTxn it is given (see WriteTxn).
using WriteCommand = std::function<Status(WriteTxn&)>;

struct CommitInfo {
  // The last revision this command journaled, or the store's last revision if it journaled nothing.
  std::uint64_t revision = 0;
};

struct JournalRetention {
  std::uint64_t max_entries = 1'000'000;  // 0 = unlimited
  std::int64_t max_age_seconds = 7 * 86'400;  // 0 = unlimited
};

struct OpenOptions {
  // A file path or "sqlite:PATH" for SQLite; "postgresql://..." or "postgres://..." for PostgreSQL.
  std::string url;
  const cim::ClassRegistry* registry = &cim::ClassRegistry::builtin();
  Clock* clock = &Clock::system();
  JournalRetention retention;
  std::size_t max_batch = 512;  // commands per transaction
  // Rows and meta entries the writer keeps in memory between batches (least recently used go first), so that a
  // command's reads of hot rows (summaries) and the previous instance a write journals need no database read.
  // A batch holds every row it touched until it ends, whatever this says. 0: nothing kept between batches.
  // Each entry costs about the instance's size (1-3 KB for wide classes); at 100,000 the cache's growth cost more
  // than it saved when every write was of a new row.
  std::size_t writer_cache_rows = 16'384;
  // Reader connections: at most max_readers reads run at once (0: the backend's default, kDefaultSqliteReaders
  // or kDefaultPostgresReaders). A read nested in another on the same thread (a lookup from a scan's callback)
  // draws from a second allowance of the same size, so that nesting cannot deadlock the pool: the store opens
  // at most 2 * max_readers reader connections, plus the writer's. A read that finds every connection in use
  // waits at most reader_wait, then fails with WBEM_E_SERVER_TOO_BUSY.
  std::size_t max_readers = 0;
  std::chrono::milliseconds reader_wait{2000};
};

// Well under PostgreSQL's default max_connections (100), even doubled for nested reads.
inline constexpr std::size_t kDefaultPostgresReaders = 16;
// SQLite connections are cheap but each holds a WAL snapshot and a page cache.
inline constexpr std::size_t kDefaultSqliteReaders = 8;

// Thread safety: every method may be called from any thread.
class Store {
 public:
  virtual ~Store() = default;

  // Opens (creating if needed) and migrates the schema to the current version. A database written by an older
  // version of pkgcast is upgraded in place; one written by a newer version is refused (WBEM_E_NOT_SUPPORTED).
  static Result<std::unique_ptr<Store>> open(const OpenOptions& options);

  virtual std::string_view backend_name() const = 0;  // "sqlite" or "postgresql"
  virtual const cim::ClassRegistry& registry() const = 0;

  // Reads see committed data. Each holds a reader connection for its duration (a scan: until its sink stops or
  // the rows end) and gives it back on every path. Not for use inside a WriteCommand (see WriteTxn).
  // `key` holds the key property values in the class's key order.
  virtual Result<std::optional<cim::Instance>> get(const cim::ClassDef& cls, const std::vector<cim::Value>& key) = 0;
  // Streams the instances of exactly `cls` (not its subclasses) that match `filter`, in key order, without
  // holding the whole result in memory.
  virtual Status scan(const cim::ClassDef& cls, const Predicate& filter, const RowSink& sink,
                      const ScanOptions& options = {}) = 0;
  // The number of instances of exactly `cls` that match `filter`, counted by the database (SELECT COUNT(*)) on
  // one reader connection, without reading the rows out. The default scans and counts (for test doubles).
  virtual Result<std::uint64_t> count(const cim::ClassDef& cls, const Predicate& filter);
  virtual Result<std::optional<std::string>> get_meta(std::string_view key) = 0;
  // Every meta entry whose key starts with `prefix`, in key order.
  virtual Result<std::vector<std::pair<std::string, std::string>>> list_meta(std::string_view prefix) = 0;

  // Queues a command for the writer. The future resolves after the batch that ran it has committed, or with
  // the command's own error (nothing of it applied), or with the commit's error (nothing of the batch applied).
  virtual std::future<Result<CommitInfo>> submit(WriteCommand command) = 0;
  Result<CommitInfo> execute(WriteCommand command) { return submit(std::move(command)).get(); }

  // 0 when nothing was ever journaled.
  virtual Result<std::uint64_t> last_revision() = 0;
  // Oldest revision still in the journal (after compaction); last_revision() + 1 when the journal is empty.
  virtual Result<std::uint64_t> first_revision() = 0;
  // Streams entries with revision > after, in order, at most `limit`. WBEM_E_NOT_FOUND ("revision N was
  // compacted") when entries after `after` have been compacted away, so a resume cannot be exact.
  virtual Status read_journal(std::uint64_t after, std::size_t limit,
                              const std::function<bool(JournalEntry&&)>& sink) = 0;
  // Drops entries beyond the retention (count and age). Returns how many were dropped.
  virtual Result<std::uint64_t> compact_journal() = 0;

  // Called on the writer thread after each commit with the entries it committed, in revision order, before the
  // batch's futures resolve (so when execute() returns, every listener has seen its changes). Batches that
  // journaled nothing are not reported. Listeners must be quick, must not throw, and must not call
  // submit()/execute() synchronously.
  using CommitListener = std::function<void(const std::vector<JournalEntry>&)>;
  virtual void add_commit_listener(CommitListener listener) = 0;

  // Stops the writer after the queued commands and closes the database. Later submits fail with
  // WBEM_E_SHUTTING_DOWN. Idempotent; the destructor calls it.
  virtual void close() = 0;
};

// The key values of an instance, in key order.
std::vector<cim::Value> key_of(const cim::Instance& inst);

}  // namespace pkgcast::store
