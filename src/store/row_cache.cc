#include "store/row_cache.h"

#include <cstdint>
#include <cstring>

namespace pkgcast::store {
namespace {

void append_raw(std::string& out, const void* p, std::size_t n) {
  out.append(static_cast<const char*>(p), n);
}

}  // namespace

std::string RowCache::row_key(const TableInfo& table, const SqlParams& key_params) {
  std::string out;
  out.reserve(16 + 24 * key_params.size());
  const TableInfo* t = &table;
  append_raw(out, &t, sizeof t);
  for (const SqlParam& p : key_params) {
    if (std::holds_alternative<SqlNull>(p)) {
      out += 'N';
    } else if (const auto* n = std::get_if<std::int64_t>(&p)) {
      out += 'I';
      append_raw(out, n, sizeof *n);
    } else if (const auto* d = std::get_if<double>(&p)) {
      out += 'D';
      append_raw(out, d, sizeof *d);
    } else if (const auto* b = std::get_if<bool>(&p)) {
      out += *b ? 'T' : 'F';
    } else {
      const auto& s = std::get<std::string>(p);
      const auto len = static_cast<std::uint32_t>(s.size());
      out += 'S';
      append_raw(out, &len, sizeof len);
      for (char c : s) {
        if (static_cast<unsigned char>(c) >= 0x80) return {};
        out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      }
    }
  }
  return out;
}

std::string RowCache::meta_key(std::string_view key) {
  std::string out(sizeof(const TableInfo*), '\0');  // no table lives at address 0
  out += 'M';
  out += key;
  return out;
}

const RowCache::Entry* RowCache::find(const std::string& key) {
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return &it->second.entry;
}

void RowCache::put_slot(const std::string& key, Entry entry) { store_slot(key, std::move(entry), nullptr); }

// One hash lookup for the undo log and the change: a command sets every row it writes.
void RowCache::store_slot(const std::string& key, Entry entry, UndoLog* undo) {
  auto [it, fresh] = map_.try_emplace(key);
  if (undo != nullptr) undo->emplace_back(key, fresh ? std::nullopt : std::optional<Entry>(it->second.entry));
  if (fresh) {
    lru_.push_front(key);
    it->second.lru = lru_.begin();
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  it->second.entry = std::move(entry);
}

void RowCache::set(const std::string& key, Entry entry) { store_slot(key, std::move(entry), in_command_ ? &undo_ : nullptr); }

void RowCache::clear() {
  map_.clear();
  lru_.clear();
}

void RowCache::begin_command() {
  in_command_ = true;
  undo_.clear();
}

void RowCache::commit_command() {
  in_command_ = false;
  undo_.clear();
}

void RowCache::rollback_command() {
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
    if (it->second) {
      put_slot(it->first, std::move(*it->second));
    } else if (auto found = map_.find(it->first); found != map_.end()) {
      lru_.erase(found->second.lru);
      map_.erase(found);
    }
  }
  in_command_ = false;
  undo_.clear();
}

void RowCache::trim() {
  while (map_.size() > capacity_ && !lru_.empty()) {
    map_.erase(lru_.back());
    lru_.pop_back();
  }
}

}  // namespace pkgcast::store
