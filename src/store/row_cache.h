// The writer's cache of rows and meta entries as its transaction sees them. Internal to src/store.
//
// Why it is right to answer from memory: the writer is the only process that writes the database (PostgreSQL: the
// advisory lock; SQLite: the writer's in-memory revision counter already needs one writing process), every write
// goes through the writer thread, and the cache is updated with each write before the command reads again. What
// could make it wrong is a write that does not happen after all, so:
// - a command's changes to the cache are logged and undone when the command fails (begin/commit/rollback_command);
// - a batch that does not commit clears the whole cache (clear()).
// Entries are evicted, least recently used first, only between batches (trim()): a row written by the running
// batch stays cached until the batch ends, which the write-behind path relies on (writer.cc).
//
// A cached entry says either "this row/value" or "no such row/value" (known absent).
//
// Thread safety: writer thread only.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cim/cim.h"
#include "store/schema.h"
#include "store/sql.h"

namespace pkgcast::store {

class RowCache {
 public:
  struct Entry {
    std::shared_ptr<const cim::Instance> row;  // instances: null = known absent
    std::optional<std::string> meta;           // meta entries: nullopt = known absent
  };

  explicit RowCache(std::size_t capacity) : capacity_(capacity) {}

  // The cache key of a row: its table and its encoded key (key_params: the key's parameters in key order, as
  // encode_key or encode_instance made them). String keys are folded to ASCII lower case, as both backends compare
  // them. Empty (not cacheable) when a string key holds a non-ASCII byte: before schema 3 PostgreSQL folded such a
  // key under the database's locale; both backends fold ASCII only now, and the bypass is kept as a mere cost.
  static std::string row_key(const TableInfo& table, const SqlParams& key_params);
  static std::string meta_key(std::string_view key);

  // nullptr when not cached. Marks the entry recently used. The pointer is valid until the next change.
  const Entry* find(const std::string& key);
  // Logged for undo when a command is open.
  void set(const std::string& key, Entry entry);
  // Drops everything (a batch that did not commit, a write the cache cannot follow). The undo log stays valid:
  // undoing a command after a clear() restores only what the command changed, which was true before it ran.
  void clear();

  void begin_command();
  void commit_command();
  void rollback_command();

  // Evicts least recently used entries down to the capacity. Between batches only.
  void trim();
  std::size_t size() const { return map_.size(); }

 private:
  struct Slot {
    Entry entry;
    std::list<std::string>::iterator lru;
  };
  using UndoLog = std::vector<std::pair<std::string, std::optional<Entry>>>;
  void put_slot(const std::string& key, Entry entry);
  // Sets `key`, first logging its state before the change to `undo` when given.
  void store_slot(const std::string& key, Entry entry, UndoLog* undo);

  std::size_t capacity_;
  std::unordered_map<std::string, Slot> map_;
  std::list<std::string> lru_;  // most recently used first
  bool in_command_ = false;
  // For the running command: each key's state before a change (nullopt: not cached), in change order.
  UndoLog undo_;
};

}  // namespace pkgcast::store
