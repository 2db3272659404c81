// The single writer: batches of commands in one transaction, each under a savepoint, the journal in the same
// transaction, acknowledgements only after COMMIT (design.md section 9).
#include <algorithm>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <span>
#include <unordered_map>

#include "store/backends.h"
#include "store/row_cache.h"
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

// Journal rows go in multi-row INSERTs of a few fixed sizes (so the statements stay few and prepared), entries
// without a previous column (created, deleted) apart from modifications (so no parameter is ever NULL: PostgreSQL
// prepares a statement per parameter types, and a NULL has none).
constexpr std::size_t kJournalChunks[] = {64, 16, 4, 1};

std::string make_journal_insert_sql(const Dialect& d, bool with_previous, std::size_t rows) {
  const std::size_t per_row = with_previous ? 7 : 6;
  std::string sql = "INSERT INTO pkgcast_journal (revision, commit_time, kind, class_name, instance_key, instance, "
                    "previous) VALUES ";
  std::size_t n = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    sql += r > 0 ? ", (" : "(";
    for (std::size_t i = 0; i < per_row; ++i) sql += d.placeholder(++n) + (i + 1 < per_row ? ", " : "");
    sql += with_previous ? ")" : ", NULL)";
  }
  return sql;
}

}  // namespace

std::size_t SqlStore::journal_chunk(std::size_t remaining) {
  for (std::size_t c : kJournalChunks) {
    if (remaining >= c) return c;
  }
  return 1;
}

const std::string& SqlStore::journal_insert_sql(bool postgres, bool with_previous, std::size_t rows) {
  static const auto table = [] {
    std::vector<std::string> t;  // [postgres][with_previous][chunk index]
    for (const Dialect* d : {&sqlite_dialect(), &pg_dialect()}) {
      for (bool prev : {false, true}) {
        for (std::size_t c : kJournalChunks) t.push_back(make_journal_insert_sql(*d, prev, c));
      }
    }
    return t;
  }();
  constexpr std::size_t kSizes = std::size(kJournalChunks);
  std::size_t chunk = 0;
  while (chunk + 1 < kSizes && kJournalChunks[chunk] != rows) ++chunk;
  return table[((postgres ? 1 : 0) * 2 + (with_previous ? 1 : 0)) * kSizes + chunk];
}

namespace {

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

// The row writes of a batch's succeeded commands, held until the batch ends so that a row written by many commands
// (a package's Root and ExtraInfo rows, a DP's SMS_DPStatusInfo row, when status messages of a few packages arrive
// together) reaches the database once, with its last values. Rows are independent (no triggers, no foreign keys,
// one unique key per table), so writes of different rows may reach the database in any order; writes of one row
// keep theirs: an UPDATE replaces the values of the held INSERT, UPDATE or upsert of its row (which keeps its kind;
// an upsert still answers the row as the batch found it); any other write of a row first sends the one held for it. Whoever needs the database to hold every
// write (a scan, a savepoint, a read the cache cannot answer, the journal's INSERTs) sends them all first (send()).
// Every journal entry is still written: only the table's statements are merged.
class SqlStore::RowWrites {
 public:
  // kUpsert: PostgreSQL's upsert of a row the writer did not know, answering the previous row to `on_row`
  // (TableInfo::upsert_returning_previous).
  enum class Op : std::uint8_t { kInsert, kUpdate, kUpsert, kOther };

  explicit RowWrites(Connection& conn) : conn_(conn) {}

  // A row statement of a succeeded command. `params` of an update are the row's columns, then its key.
  Status add(Op op, const TableInfo& table, const std::string& ckey, const std::string& sql, SqlParams params,
             RowCallback on_row = {}) {
    if (auto it = index_.find(ckey); it != index_.end()) {
      Write& held = writes_[it->second];
      if (op == Op::kUpdate) {
        // An insert or upsert takes the columns only; an upsert keeps answering the row as the batch found it.
        if (held.op != Op::kUpdate) params.resize(table.columns.size());
        // An update that rewrites the key (its case) is the whole update_by_key, and stays so.
        if (held.op == Op::kUpdate && &sql == &table.update_by_key) held.sql = &sql;
        held.params = std::move(params);
        return ok_status();
      }
      index_.erase(it);
      PKG_TRY(send_one(held));
    }
    // kOther is a DELETE of a row the writer knows exists.
    if (op == Op::kOther) return conn_.defer_write(sql, std::move(params), 1);
    index_.emplace(ckey, writes_.size());
    writes_.push_back(Write{op, &sql, std::move(params), std::move(on_row), &table});
    return ok_status();
  }

  // Every held write to the connection. On PostgreSQL a table's held writes of one kind go out together, as one
  // statement of many rows (TableInfo::insert_many, update_many, upsert_many_returning_previous); the rest one by
  // one, in the order each row was first written. Writes of different rows may go in any order; a row has one
  // held write.
  Status send() {
    std::vector<Write> writes = std::move(writes_);
    writes_.clear();
    index_.clear();
    std::vector<Write*> grouped;
    for (Write& w : writes) {
      if (w.sql != nullptr && !many_sql(w).empty()) grouped.push_back(&w);
    }
    std::stable_sort(grouped.begin(), grouped.end(), [](const Write* a, const Write* b) {
      if (a->op != b->op) return a->op < b->op;
      return std::less<const TableInfo*>()(a->table, b->table);  // any total order: only grouping matters
    });
    for (std::size_t at = 0; at < grouped.size();) {
      std::size_t end = at + 1;
      while (end < grouped.size() && end - at < kMaxRowsPerStatement && grouped[end]->op == grouped[at]->op &&
             grouped[end]->table == grouped[at]->table) {
        ++end;
      }
      PKG_TRY(send_many(std::span<Write*>(grouped).subspan(at, end - at)));
      at = end;
    }
    for (Write& w : writes) PKG_TRY(send_one(w));
    return ok_status();
  }

 private:
  // Rows per statement of many rows: bounds one statement's parameters and answer.
  static constexpr std::size_t kMaxRowsPerStatement = 512;

  struct Write {
    Op op;
    const std::string* sql;  // null: already sent
    SqlParams params;
    RowCallback on_row;        // kUpsert: receives the previous row
    const TableInfo* table;
  };

  // The statement that writes many rows like `w` ("" where there is none: SQLite, keyless classes, kOther).
  static const std::string& many_sql(const Write& w) {
    static const std::string none;
    switch (w.op) {
      case Op::kInsert:
        return w.table->insert_many;
      case Op::kUpdate:
        return w.table->update_many;
      case Op::kUpsert:
        return w.table->upsert_many_returning_previous;
      case Op::kOther:
        break;
    }
    return none;
  }

  Status send_one(Write& w) {
    if (w.sql == nullptr) return ok_status();
    const std::string* sql = w.sql;
    w.sql = nullptr;
    if (w.on_row) return conn_.defer_query(*sql, std::move(w.params), std::move(w.on_row));
    return conn_.defer_write(*sql, std::move(w.params), 1);
  }

  // Writes of one kind to one table's rows (distinct keys) in one statement, each column's values as one array
  // (an update's key is among its columns). The previous rows an upsert answers each go to their own row's
  // callback, found by the row's position in the arrays.
  Status send_many(std::span<Write*> rows) {
    if (rows.size() == 1) return send_one(*rows.front());
    const TableInfo& t = *rows.front()->table;
    const std::size_t columns = t.columns.size();
    SqlParams arrays;
    arrays.reserve(columns);
    std::vector<const SqlParam*> column_values(rows.size());
    for (std::size_t c = 0; c < columns; ++c) {
      for (std::size_t r = 0; r < rows.size(); ++r) column_values[r] = &rows[r]->params.at(c);
      arrays.emplace_back(pg_array_literal(column_values));
    }
    const std::string& sql = many_sql(*rows.front());
    if (rows.front()->op != Op::kUpsert) {
      for (Write* w : rows) w->sql = nullptr;
      return conn_.defer_write(sql, std::move(arrays), static_cast<std::int64_t>(rows.size()));
    }
    auto callbacks = std::make_shared<std::vector<RowCallback>>();
    callbacks->reserve(rows.size());
    for (Write* w : rows) {
      callbacks->push_back(std::move(w->on_row));
      w->sql = nullptr;
    }
    const int position_column = static_cast<int>(columns);
    return conn_.defer_query(sql, std::move(arrays),
                             [callbacks, position_column](const SqlRow& row) -> Result<bool> {
                               PKG_ASSIGN_OR_RETURN(std::int64_t position, row.as_int(position_column));
                               if (position < 1 || static_cast<std::size_t>(position) > callbacks->size()) {
                                 return make_error(WbemCode::kFailed, "an upsert answered a row it was not sent");
                               }
                               auto& on_row = (*callbacks)[static_cast<std::size_t>(position) - 1];
                               if (on_row) {
                                 auto handled = on_row(row);
                                 if (!handled.ok()) return std::move(handled).error();
                               }
                               return true;
                             });
  }

  Connection& conn_;
  std::vector<Write> writes_;
  std::unordered_map<std::string, std::size_t> index_;  // row key (RowCache::row_key) -> its held write
};

// The view a command works in: the writer connection inside the batch's transaction, in front of it the
// writer's row cache (row_cache.h).
//
// Write-behind: a put/insert/remove whose previous row is known (from the cache, or read once) is decided at once
// (journal entry, cache) and its statement held back until the command succeeds; only then does it go to the
// connection (Connection::defer: PostgreSQL pipelines it with the batch's other statements). A command whose
// statements never reached the database needs no savepoint: its failure just drops them and undoes its cache
// changes. A command that must see its own writes in the database (a scan, list_meta, the compaction's SQL) first
// opens its savepoint and hands its held statements over, and from then on writes go straight through
// (materialize()). Reads by key never need that: every row the command wrote is in the cache, and evictions wait
// for the end of the batch.
//
// On PostgreSQL a put of a row the cache does not know is one deferred upsert that answers the previous row; its
// journal entry is settled when that answer arrives (before the batch's COMMIT), so a batch of such puts costs a
// few round trips rather than one per put. On SQLite the previous row is read first (no round trip to save).
class SqlStore::Txn final : public WriteTxn {
 public:
  Txn(SqlStore& store, Micros now, std::vector<BatchEntry>& entries, RowWrites& row_writes)
      : store_(store),
        conn_(*store.writer_conn_),
        cache_(store.row_cache_),
        now_(now),
        entries_(entries),
        row_writes_(row_writes) {}

  Result<std::optional<cim::Instance>> get(const cim::ClassDef& cls, const std::vector<cim::Value>& key) override {
    PKG_ASSIGN_OR_RETURN(const TableInfo* t, store_.schema_.table(cls));
    PKG_ASSIGN_OR_RETURN(SqlParams key_params, encode_key(*t, key));
    const std::string ckey = RowCache::row_key(*t, key_params);
    if (ckey.empty()) {
      PKG_TRY(row_writes_.send());  // the row may be one a held write changes
      return get_on(conn_, *t, store_.schema_, key);
    }
    PKG_ASSIGN_OR_RETURN(auto current, current_row(*t, ckey, key));
    if (!current) return std::optional<cim::Instance>();
    return std::optional<cim::Instance>(*current);
  }

  Status scan(const cim::ClassDef& cls, const Predicate& filter, const RowSink& sink,
              const ScanOptions& options) override {
    PKG_ASSIGN_OR_RETURN(const TableInfo* t, store_.schema_.table(cls));
    PKG_TRY(materialize());
    return scan_on(conn_, *t, store_.schema_, filter, sink, options);
  }

  Status put(const cim::Instance& inst) override { return write(cim::Instance(inst), /*must_be_new=*/false); }
  Status put(cim::Instance&& inst) override { return write(std::move(inst), /*must_be_new=*/false); }
  Status insert(const cim::Instance& inst) override { return write(cim::Instance(inst), /*must_be_new=*/true); }

  Status remove(const cim::ClassDef& cls, const std::vector<cim::Value>& key) override {
    PKG_ASSIGN_OR_RETURN(const TableInfo* t, store_.schema_.table(cls));
    PKG_ASSIGN_OR_RETURN(SqlParams params, encode_key(*t, key));
    const std::string ckey = RowCache::row_key(*t, params);
    std::shared_ptr<const cim::Instance> current;
    if (ckey.empty()) {
      PKG_TRY(materialize());
      PKG_ASSIGN_OR_RETURN(auto found, get_on(conn_, *t, store_.schema_, key));
      if (found) current = std::make_shared<const cim::Instance>(std::move(*found));
      cache_.clear();
    } else {
      PKG_ASSIGN_OR_RETURN(current, current_row(*t, ckey, key));
    }
    if (!current) return make_error(WbemCode::kNotFound, describe(*t, key) + " does not exist");
    PKG_TRY(emit_row(RowWrites::Op::kOther, *t, ckey, t->delete_by_key, std::move(params)));
    if (!ckey.empty()) cache_.set(ckey, {});
    return journal(ChangeKind::kDeleted, current, current, ckey, *t);
  }

  Result<std::optional<std::string>> get_meta(std::string_view key) override {
    const std::string ckey = RowCache::meta_key(key);
    if (const RowCache::Entry* hit = cache_.find(ckey)) return hit->meta;
    PKG_ASSIGN_OR_RETURN(auto value, get_meta_on(conn_, key));
    cache_.set(ckey, {nullptr, value});
    return value;
  }

  Result<std::vector<std::pair<std::string, std::string>>> list_meta(std::string_view prefix) override {
    PKG_TRY(materialize());
    return list_meta_on(conn_, prefix);
  }

  Status put_meta(std::string_view key, std::string_view value) override {
    if (key.empty()) return make_error(WbemCode::kInvalidParameter, "meta key is empty");
    PKG_TRY(check_text(key, "meta key"));
    PKG_TRY(check_text(value, "meta value"));
    static const std::string sqlite_sql = meta_put_sql(sqlite_dialect());
    static const std::string pg_sql = meta_put_sql(pg_dialect());
    PKG_TRY(emit(conn_.dialect().postgres() ? pg_sql : sqlite_sql, {std::string(key), std::string(value)}));
    cache_.set(RowCache::meta_key(key), {nullptr, std::string(value)});
    return ok_status();
  }

  Status remove_meta(std::string_view key) override {
    PKG_TRY(check_text(key, "meta key"));
    static const std::string sqlite_sql =
        "DELETE FROM pkgcast_meta WHERE meta_key = " + sqlite_dialect().placeholder(1);
    static const std::string pg_sql = "DELETE FROM pkgcast_meta WHERE meta_key = " + pg_dialect().placeholder(1);
    PKG_TRY(emit(conn_.dialect().postgres() ? pg_sql : sqlite_sql, {std::string(key)}));
    cache_.set(RowCache::meta_key(key), {nullptr, std::nullopt});
    return ok_status();
  }

  Micros now() const override { return now_; }

  // The connection, with this command's own writes in it (for SQL the WriteTxn interface does not offer).
  Result<Connection*> direct_connection() {
    PKG_TRY(materialize());
    return &conn_;
  }

  // After the command returned success: its held statements go to the connection (write-behind) or its savepoint
  // is released. A failure here fails the batch: held statements may have run in part, with no savepoint to undo.
  Status finish() {
    if (direct_) return conn_.defer(kRelease);
    return hand_over(/*merge=*/true);
  }

  // After the command failed: what it did in the database is undone (its savepoint), what it held back is dropped.
  // The caller drops its journal entries and undoes its cache changes.
  Status abandon() {
    held_.clear();
    if (!direct_) return ok_status();
    auto undo = conn_.exec(kRollbackTo, {});
    if (!undo.ok()) return std::move(undo).error();
    return conn_.defer(kRelease);
  }

 private:
  struct Held {
    const std::string* sql;
    SqlParams params;
    RowCallback on_row;
    // A write of one cached row (row_key), which the batch's RowWrites may merge with later writes of that row.
    RowWrites::Op op = RowWrites::Op::kOther;
    const TableInfo* table = nullptr;
    std::string ckey;
  };

  static std::string meta_put_sql(const Dialect& d) {
    return "INSERT INTO pkgcast_meta (meta_key, meta_value) VALUES (" + d.placeholder(1) + ", " + d.placeholder(2) +
           ") ON CONFLICT (meta_key) DO UPDATE SET meta_value = excluded.meta_value";
  }

  static std::string describe(const TableInfo& t, const std::vector<cim::Value>& key) {
    cim::Instance probe(*t.cls);
    for (std::size_t k = 0; k < key.size() && k < t.cls->key_indices().size(); ++k) {
      probe.set(t.cls->key_indices()[k], key[k]);
    }
    return probe.relpath();
  }

  // The row as the command sees it: from the cache, or read once and cached (null: no such row).
  Result<std::shared_ptr<const cim::Instance>> current_row(const TableInfo& t, const std::string& ckey,
                                                           const std::vector<cim::Value>& key) {
    if (const RowCache::Entry* hit = cache_.find(ckey)) return hit->row;
    PKG_ASSIGN_OR_RETURN(auto found, get_on(conn_, t, store_.schema_, key));
    std::shared_ptr<const cim::Instance> row;
    if (found) row = std::make_shared<const cim::Instance>(std::move(*found));
    cache_.set(ckey, {row, std::nullopt});
    return row;
  }

  // Opens the command's savepoint and hands over what it held back; later writes go straight to the connection.
  // The earlier commands' held row writes go first, outside the savepoint: the database then holds every write.
  Status materialize() {
    if (direct_) return ok_status();
    PKG_TRY(row_writes_.send());
    PKG_TRY(conn_.defer(kSavepoint));
    direct_ = true;
    return hand_over(/*merge=*/false);
  }

  // `merge`: row writes go to the batch's RowWrites (the command succeeded and runs no savepoint); otherwise
  // everything goes straight to the connection.
  Status hand_over(bool merge) {
    std::vector<Held> held = std::move(held_);
    held_.clear();
    for (Held& h : held) {
      Status st = ok_status();
      if (h.table != nullptr && merge) {
        st = row_writes_.add(h.op, *h.table, h.ckey, *h.sql, std::move(h.params), std::move(h.on_row));
      } else if (h.on_row) {
        st = conn_.defer_query(*h.sql, std::move(h.params), std::move(h.on_row));
      } else {
        st = conn_.defer(*h.sql, std::move(h.params));
      }
      if (!st.ok()) return st;
    }
    return ok_status();
  }

  Status emit(const std::string& sql, SqlParams params, RowCallback on_row = {}) {
    if (direct_) {
      if (on_row) return conn_.defer_query(sql, std::move(params), std::move(on_row));
      return conn_.defer(sql, std::move(params));
    }
    held_.push_back(Held{&sql, std::move(params), std::move(on_row), RowWrites::Op::kOther, nullptr, {}});
    return ok_status();
  }

  // PostgreSQL's upsert of the cached row `ckey` that answers its previous row to `on_row`; held like the row writes
  // below, so that the batch sends its upserts of one table together.
  Status emit_upsert(const TableInfo& t, const std::string& ckey, SqlParams params, RowCallback on_row) {
    if (direct_) return conn_.defer_query(t.upsert_returning_previous, std::move(params), std::move(on_row));
    held_.push_back(
        Held{&t.upsert_returning_previous, std::move(params), std::move(on_row), RowWrites::Op::kUpsert, &t, ckey});
    return ok_status();
  }

  // A write of the cached row `ckey` (insert, update by key, or delete).
  Status emit_row(RowWrites::Op op, const TableInfo& t, const std::string& ckey, const std::string& sql,
                  SqlParams params) {
    if (direct_ || ckey.empty()) return emit(sql, std::move(params));
    held_.push_back(Held{&sql, std::move(params), {}, op, &t, ckey});
    return ok_status();
  }

  Status write(cim::Instance inst, bool must_be_new) {
    PKG_ASSIGN_OR_RETURN(const TableInfo* t, store_.schema_.table(inst.class_def()));
    // Everything is checked and converted before the database is touched.
    PKG_ASSIGN_OR_RETURN(EncodedInstance enc, encode_instance(*t, std::move(inst)));
    SqlParams key_params;
    for (std::size_t idx : t->cls->key_indices()) key_params.push_back(enc.params[idx]);
    const std::string ckey = RowCache::row_key(*t, key_params);
    auto now_inst = std::make_shared<const cim::Instance>(std::move(enc.instance));
    if (ckey.empty()) return write_uncached(*t, std::move(enc.params), std::move(key_params), now_inst, must_be_new);

    std::shared_ptr<const cim::Instance> previous;
    if (const RowCache::Entry* hit = cache_.find(ckey)) {
      previous = hit->row;
    } else if (conn_.dialect().postgres() && !must_be_new && !t->upsert_returning_previous.empty()) {
      // Nothing known: one deferred upsert, its journal entry settled by the previous row it answers.
      const std::size_t index = entries_.size();
      PKG_TRY(journal(ChangeKind::kCreated, now_inst, nullptr, ckey, *t));
      entries_[index].awaiting_previous = true;
      std::vector<BatchEntry>* entries = &entries_;
      const cim::ClassRegistry* registry = &store_.schema_.registry();
      // The entry's instance is the command's last write of the row by the time the answer arrives (a later write
      // of it in the same command changes the entry: merge_into_own_entry).
      PKG_TRY(emit_upsert(*t, ckey, std::move(enc.params),
                          [entries, index, t, registry](const SqlRow& row) -> Result<bool> {
                            PKG_ASSIGN_OR_RETURN(cim::Instance was, decode_row(*t, row, *registry));
                            BatchEntry& e = (*entries)[index];
                            e.awaiting_previous = false;
                            if (e.deleted_later) {
                              auto found = std::make_shared<const cim::Instance>(std::move(was));
                              PKG_ASSIGN_OR_RETURN(e.instance_json, instance_to_json_text(*found));
                              e.entry.kind = ChangeKind::kDeleted;
                              e.entry.key = found->relpath();
                              e.entry.instance = found;
                              e.entry.previous = std::move(found);
                              return false;
                            }
                            e.dropped = same_values(*t, was, *e.entry.instance);
                            if (!e.dropped) {
                              PKG_ASSIGN_OR_RETURN(e.previous_json, previous_delta_json_text(*e.entry.instance, was));
                            }
                            e.entry.kind = ChangeKind::kModified;
                            e.entry.previous = std::make_shared<const cim::Instance>(std::move(was));
                            return false;
                          }));
      cache_.set(ckey, {now_inst, std::nullopt});
      return ok_status();
    } else {
      PKG_ASSIGN_OR_RETURN(previous, current_row(*t, ckey, key_of(*now_inst)));
    }
    if (previous && must_be_new) return make_error(WbemCode::kAlreadyExists, previous->relpath() + " already exists");
    if (previous && same_values(*t, *previous, *now_inst)) return ok_status();
    if (previous) {
      SqlParams params = std::move(enc.params);
      for (auto& p : key_params) params.push_back(std::move(p));
      const bool same_key = std::all_of(t->cls->key_indices().begin(), t->cls->key_indices().end(),
                                        [&](std::size_t k) { return previous->get(k) == now_inst->get(k); });
      PKG_TRY(emit_row(RowWrites::Op::kUpdate, *t, ckey, same_key ? t->update_by_same_key : t->update_by_key,
                       std::move(params)));
    } else {
      PKG_TRY(emit_row(RowWrites::Op::kInsert, *t, ckey, t->insert, std::move(enc.params)));
    }
    cache_.set(ckey, {now_inst, std::nullopt});
    return journal(previous ? ChangeKind::kModified : ChangeKind::kCreated, now_inst, previous, ckey, *t);
  }

  // A key the cache cannot follow (non-ASCII text): straight to the database, and the cache is dropped, since the
  // row written may be one cached under another key.
  Status write_uncached(const TableInfo& t, SqlParams params, SqlParams key_params,
                        std::shared_ptr<const cim::Instance> now_inst, bool must_be_new) {
    PKG_TRY(materialize());
    cache_.clear();
    std::optional<cim::Instance> current;
    if (!t.upsert_returning_previous.empty()) {
      PKG_TRY(conn_.query(must_be_new ? t.insert_returning_previous : t.upsert_returning_previous, params,
                          [&](const SqlRow& row) -> Result<bool> {
                            PKG_ASSIGN_OR_RETURN(cim::Instance previous, decode_row(t, row, store_.schema_.registry()));
                            current.emplace(std::move(previous));
                            return false;
                          }));
      // ON CONFLICT DO NOTHING: an insert over an existing instance changed nothing.
      if (current && must_be_new) return make_error(WbemCode::kAlreadyExists, current->relpath() + " already exists");
    } else {
      PKG_ASSIGN_OR_RETURN(current, get_on(conn_, t, store_.schema_, key_of(*now_inst)));
      if (current && must_be_new) return make_error(WbemCode::kAlreadyExists, current->relpath() + " already exists");
      if (current && same_values(t, *current, *now_inst)) return ok_status();
      if (current) {
        for (auto& p : key_params) params.push_back(std::move(p));
        PKG_TRY(exec_status(conn_, t.update_by_key, params));
      } else {
        PKG_TRY(exec_status(conn_, t.insert, params));
      }
    }
    if (!current) return journal(ChangeKind::kCreated, now_inst, nullptr, {}, t);
    if (same_values(t, *current, *now_inst)) return ok_status();
    return journal(ChangeKind::kModified, now_inst, std::make_shared<const cim::Instance>(std::move(*current)), {}, t);
  }

  static bool same_values(const TableInfo& t, const cim::Instance& a, const cim::Instance& b) {
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      if (!(a.get(i) == b.get(i))) return false;
    }
    return true;
  }

  // The entry's revision is given when the batch ends (finish_journal), in entry order, after the entries of
  // failed commands are gone and unchanged puts are dropped. Its JSON is written when the command ends
  // (encode_journal), once, however often the command wrote the row.
  //
  // One entry per row per command: a row the command already journaled (`ckey`, RowCache::row_key; empty for a
  // row the cache cannot follow) changes that entry, so the journal and the events show what the command did,
  // not the steps it took on the way. No reader could see those steps: a command's writes commit together.
  // (A summarizer command applying many DP reports moves a package's Root row once per report; it is journaled
  // once, with its counts before and after the command.)
  Status journal(ChangeKind kind, std::shared_ptr<const cim::Instance> inst,
                 std::shared_ptr<const cim::Instance> previous, const std::string& ckey, const TableInfo& t) {
    if (!ckey.empty()) {
      if (auto it = own_entries_.find(ckey); it != own_entries_.end()) {
        merge_into_own_entry(entries_[it->second], kind, std::move(inst), t);
        // After a deletion, a new row of that key is a new entry.
        if (kind == ChangeKind::kDeleted) own_entries_.erase(it);
        return ok_status();
      }
    }
    BatchEntry b;
    b.entry.time = now_;
    b.entry.kind = kind;
    b.entry.instance = std::move(inst);
    b.entry.previous = std::move(previous);
    if (!ckey.empty() && kind != ChangeKind::kDeleted) own_entries_.emplace(ckey, entries_.size());
    entries_.push_back(std::move(b));
    return ok_status();
  }

  // The command's later write of a row it journaled, folded into that entry: created then modified is created
  // (as last written), modified then modified is modified from the row as the command found it (nothing, when
  // it is back to that), created then deleted is nothing, modified then deleted is deleted (the row as found).
  // An upsert whose previous row is still unknown, then a deletion: settled by the upsert's answer (deleted, as
  // found) or at the end of the batch (no answer: there was no row, so nothing).
  static void merge_into_own_entry(BatchEntry& e, ChangeKind kind, std::shared_ptr<const cim::Instance> inst,
                                   const TableInfo& t) {
    if (kind == ChangeKind::kDeleted) {
      if (e.awaiting_previous) {
        e.deleted_later = true;
      } else if (e.entry.kind == ChangeKind::kCreated) {
        e.dropped = true;
      } else {
        e.entry.kind = ChangeKind::kDeleted;
        e.entry.instance = e.entry.previous;
        e.dropped = false;
      }
      return;
    }
    e.entry.instance = std::move(inst);
    if (e.entry.kind == ChangeKind::kModified) e.dropped = same_values(t, *e.entry.previous, *e.entry.instance);
  }

 public:
  // After the command returned success, before it is committed: its journal entries' JSON. Text the journal
  // cannot hold fails this command rather than the batch. An upsert still awaiting its previous row gets its
  // delta when the answer arrives.
  Status encode_journal(std::size_t first_entry) {
    for (std::size_t i = first_entry; i < entries_.size(); ++i) {
      BatchEntry& b = entries_[i];
      b.entry.class_name = b.entry.instance->class_name();
      b.entry.key = b.entry.instance->relpath();
      PKG_ASSIGN_OR_RETURN(b.instance_json, instance_to_json_text(*b.entry.instance));
      if (b.entry.kind == ChangeKind::kModified && !b.dropped) {
        PKG_ASSIGN_OR_RETURN(b.previous_json, previous_delta_json_text(*b.entry.instance, *b.entry.previous));
      }
    }
    return ok_status();
  }

 private:
  SqlStore& store_;
  Connection& conn_;
  RowCache& cache_;
  Micros now_;
  std::vector<BatchEntry>& entries_;
  RowWrites& row_writes_;
  std::vector<Held> held_;
  std::unordered_map<std::string, std::size_t> own_entries_;  // this command's entries by row (see journal())
  bool direct_ = false;  // the savepoint is open and writes go straight to the connection
};

std::future<Result<CommitInfo>> SqlStore::submit(WriteCommand command) {
  Pending p{std::move(command), {}};
  auto future = p.promise.get_future();
  {
    MutexLock lock(queue_mu_);
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
    bool idle = false;
    {
      MutexLock lock(queue_mu_);
      if (committing_ && queue_.empty()) {
        idle = true;  // nothing to prepare meanwhile: wait for the COMMIT in flight instead
      } else {
        while (!closing_ && queue_.empty()) queue_cv_.wait(queue_mu_);
        if (queue_.empty()) return;  // closing, and drained
        while (!queue_.empty() && batch.size() < options_.max_batch) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
    }
    if (idle) {
      (void)finish_committing(/*batch_running=*/false);
      continue;
    }
    run_batch(batch);
  }
}

Status SqlStore::ensure_writer_connection() {
  if (writer_conn_ && !writer_conn_->broken() && !replace_writer_connection_) return ok_status();
  if (writer_conn_ && !writer_conn_->broken()) backend_.release_writer(*writer_conn_);
  writer_conn_.reset();
  replace_writer_connection_ = false;
  PKG_ASSIGN_OR_RETURN(writer_conn_, backend_.connect());
  PKG_TRY(backend_.claim_writer(*writer_conn_));
  return take_up_commits_whose_answer_was_lost();
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
    row_cache_.clear();
    for (auto& p : batch) p.promise.set_value(e);
  };
  // A COMMIT in flight on a connection that is gone has failed: settle it before the connection is replaced.
  if (committing_ && (!writer_conn_ || writer_conn_->broken())) (void)finish_committing(/*batch_running=*/false);
  if (Status st = ensure_writer_connection(); !st.ok()) {
    writer_conn_.reset();  // try again with the next batch
    return fail_all(st.error());
  }
  std::optional<Error> injected_failure;
  bool fail_at_server = false;
  {
    MutexLock lock(test_mu_);
    injected_failure.swap(fail_next_commit_);
    std::swap(fail_at_server, fail_next_commit_at_server_);
  }
  Connection& conn = *writer_conn_;
  const Micros now = options_.clock->now_micros();
  std::uint64_t batch_start = next_revision_;
  if (Status st = conn.begin(true); !st.ok()) {
    if (committing_) (void)finish_committing(/*batch_running=*/false);
    return fail_all(st.error());
  }

  std::vector<BatchEntry> entries;
  RowWrites row_writes(conn);
  std::vector<std::optional<Error>> failures(batch.size());
  std::vector<std::size_t> entries_end(batch.size(), 0);  // one past each command's last entry
  std::optional<Error> batch_error;
  for (std::size_t i = 0; i < batch.size() && !batch_error; ++i) {
    const std::size_t entries_before = entries.size();
    Txn txn(*this, now, entries, row_writes);
    row_cache_.begin_command();
    Status st = run_command(batch[i], txn);
    if (st.ok()) st = txn.encode_journal(entries_before);
    if (st.ok()) {
      row_cache_.commit_command();
      if (Status fin = txn.finish(); !fin.ok()) batch_error = fin.error();
      entries_end[i] = entries.size();
      continue;
    }
    // The command's own error: undo exactly what it did. Its deferred statements' answers may still arrive while
    // the savepoint is rolled back, so its entries go after that.
    failures[i] = st.error();
    Status undo = txn.abandon();
    entries.resize(entries_before);
    entries_end[i] = entries.size();
    row_cache_.rollback_command();
    if (!undo.ok()) batch_error = undo.error();
  }
  // The batch before this one must have committed before this one may: this batch was decided on its writes.
  if (committing_) {
    Status before = finish_committing(/*batch_running=*/true);
    if (!before.ok()) {
      batch_start = next_revision_;  // moved back to before the batch that failed
      if (!batch_error) {
        batch_error = make_error(before.error().code,
                                 "not committed: the batch of writes before it failed (" + before.error().message + ")");
      }
    }
  }
  std::vector<JournalEntry> committed;
  std::vector<std::uint64_t> revisions(batch.size(), 0);
  if (!batch_error) {
    if (Status sent = row_writes.send(); !sent.ok()) batch_error = sent.error();
  }
  if (!batch_error) {
    auto journaled = finish_journal(conn, entries, entries_end, committed, revisions);
    if (!journaled.ok()) batch_error = journaled.error();
  }
  if (!batch_error && injected_failure) batch_error = std::move(injected_failure);
  if (!batch_error && fail_at_server) {
    // A unique constraint checked at COMMIT, violated by the batch's last statement.
    for (const char* sql : {"CREATE TEMP TABLE pkgcast_commit_probe (x INTEGER UNIQUE DEFERRABLE INITIALLY DEFERRED)",
                            "INSERT INTO pkgcast_commit_probe VALUES (1), (1)"}) {
      if (Status st = conn.defer(sql); !st.ok()) batch_error = st.error();
    }
  }
  Status done = batch_error ? Status(*batch_error) : conn.start_commit();
  if (!done.ok()) {
    if (conn.in_transaction()) (void)conn.rollback();
    next_revision_ = batch_start;
    row_cache_.clear();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i].promise.set_value(failures[i] ? *failures[i] : done.error());
    }
    return;
  }
  // Evictions wait for the end of a batch's commands; whether it commits or not, that is now (a failure clears).
  row_cache_.trim();
  committing_.emplace(Committing{std::move(batch), std::move(failures), std::move(committed), std::move(revisions),
                                 batch_start, next_revision_});
  if (!conn.commit_in_background()) (void)finish_committing(/*batch_running=*/false);
}

Status SqlStore::finish_committing(bool batch_running) {
  Committing c = std::move(*committing_);
  committing_.reset();
  Status done = writer_conn_->finish_commit();
  bool lose_answer = false;
  {
    MutexLock lock(test_mu_);
    std::swap(lose_answer, lose_next_commit_answer_);
  }
  if (lose_answer && done.ok()) {
    // As when the connection dies after the server committed and before its answer came: the next batch starts
    // on a new connection.
    replace_writer_connection_ = true;
    return finish_failed_commit(c, make_error(WbemCode::kFailed, "the connection was lost at COMMIT (injected)"),
                                batch_running);
  }
  if (!done.ok()) return finish_failed_commit(c, done.error(), batch_running);
  committed_revision_.store(c.batch_end - 1);
  // Listeners first: once a command's future resolves, every listener (the event engine) has its changes.
  tell_listeners(c.committed);
  for (std::size_t i = 0; i < c.batch.size(); ++i) {
    if (c.failures[i]) {
      c.batch[i].promise.set_value(*c.failures[i]);
    } else {
      c.batch[i].promise.set_value(CommitInfo{c.revisions[i]});
    }
  }
  return ok_status();
}

void SqlStore::tell_listeners(const std::vector<JournalEntry>& committed) {
  if (committed.empty()) return;
  std::shared_ptr<const std::vector<CommitListener>> listeners;
  {
    MutexLock lock(listeners_mu_);
    listeners = listeners_;
  }
  for (const auto& l : *listeners) {
    try {
      l(committed);
    } catch (...) {  // a listener's failure must not take the writer down
    }
  }
}

Status SqlStore::finish_failed_commit(Committing& c, const Error& error, bool batch_running) {
  // A running batch rolls back itself (its own failure follows from this one).
  if (!batch_running && writer_conn_ && writer_conn_->in_transaction()) (void)writer_conn_->rollback();
  next_revision_ = c.batch_start;
  row_cache_.clear();
  for (std::size_t i = 0; i < c.batch.size(); ++i) {
    c.batch[i].promise.set_value(c.failures[i] ? *c.failures[i] : error);
  }
  return error;
}

Status SqlStore::finish_journal(Connection& conn, std::vector<BatchEntry>& entries,
                                const std::vector<std::size_t>& entries_end, std::vector<JournalEntry>& committed,
                                std::vector<std::uint64_t>& revisions) {
  // Every deferred answer is in: the entries of upserts over unknown rows are settled. An upsert that answered
  // nothing created its row; if its command then deleted it, there is nothing to journal.
  PKG_TRY(conn.flush());
  for (BatchEntry& b : entries) {
    if (b.awaiting_previous && b.deleted_later) b.dropped = true;
  }
  // Revisions in entry order, gap-free; a command's revision is its last entry's, or the last before it.
  const std::uint64_t first = next_revision_;
  std::uint64_t next = first;
  std::size_t e = 0;
  for (std::size_t i = 0; i < entries_end.size(); ++i) {
    for (; e < entries_end[i]; ++e) {
      if (!entries[e].dropped) entries[e].entry.revision = next++;
    }
    revisions[i] = next - 1;
  }
  const bool pg = conn.dialect().postgres();
  std::vector<BatchEntry*> whole;    // created and deleted: the previous column is NULL
  std::vector<BatchEntry*> changed;  // modified: the previous column is the delta
  for (BatchEntry& b : entries) {
    if (!b.dropped) (b.entry.kind == ChangeKind::kModified ? changed : whole).push_back(&b);
  }
  // The JSON texts are moved into their statements: nothing reads them after this.
  auto write_rows = [&](const std::vector<BatchEntry*>& rows, bool with_previous) -> Status {
    for (std::size_t at = 0; at < rows.size();) {
      const std::size_t n = journal_chunk(rows.size() - at);
      SqlParams params;
      params.reserve(n * 7);
      for (std::size_t k = 0; k < n; ++k) {
        BatchEntry& b = *rows[at + k];
        params.emplace_back(static_cast<std::int64_t>(b.entry.revision));
        params.emplace_back(b.entry.time);
        params.emplace_back(static_cast<std::int64_t>(b.entry.kind));
        params.emplace_back(b.entry.class_name);
        params.emplace_back(b.entry.key);
        params.emplace_back(std::move(b.instance_json));
        if (with_previous) params.emplace_back(std::move(b.previous_json));
      }
      PKG_TRY(conn.defer(journal_insert_sql(pg, with_previous, n), std::move(params)));
      at += n;
    }
    return ok_status();
  };
  PKG_TRY(write_rows(whole, false));
  PKG_TRY(write_rows(changed, true));
  next_revision_ = next;
  committed.reserve(next - first);
  for (BatchEntry& b : entries) {
    if (!b.dropped) committed.push_back(std::move(b.entry));
  }
  return ok_status();
}

Result<std::uint64_t> SqlStore::compact_journal() {
  std::uint64_t dropped = 0;
  const JournalRetention retention = options_.retention;
  auto done = execute([&, retention](WriteTxn& w) -> Status {
    Txn& txn = static_cast<Txn&>(w);
    PKG_ASSIGN_OR_RETURN(Connection * direct, txn.direct_connection());
    Connection& c = *direct;
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
