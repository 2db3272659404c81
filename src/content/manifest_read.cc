// Reads only the canonical form (docs/content.md), strictly and in one pass, straight into a Manifest: no DOM (a
// manifest of a million files would take gigabytes as a JSON tree), no exceptions, and one byte form per manifest
// (a key out of order, a space or an unusual escape is refused), so that a manifest's id names its content exactly.
#include <charconv>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "content/content.h"
#include "content/tree_rules.h"

namespace pkgcast::content {
namespace {

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  std::size_t pos() const { return pos_; }
  bool at_end() const { return pos_ == in_.size(); }
  bool peek(char c) const { return pos_ < in_.size() && in_[pos_] == c; }
  // Up to `n` bytes at `at`; empty past the end (string_view::substr would throw).
  std::string_view slice(std::size_t at, std::size_t n) const {
    return at < in_.size() ? in_.substr(at, n) : std::string_view();
  }

  Error error(std::string_view what) const {
    return make_error(WbemCode::kInvalidParameter,
                      "manifest: " + std::string(what) + " at byte " + std::to_string(pos_) + where_);
  }
  void set_where(std::string where) { where_ = std::move(where); }

  Status literal(std::string_view text) {
    if (in_.substr(pos_, text.size()) != text) return error("expected '" + std::string(text) + "'");
    pos_ += text.size();
    return ok_status();
  }

  // `"name":`, with the punctuation before it. A different key is named, a repeated one called a duplicate.
  Status key(std::string_view lead, std::string_view name, std::initializer_list<std::string_view> earlier = {}) {
    const std::size_t start = pos_;
    if (in_.substr(pos_, lead.size()) == lead && slice(pos_ + lead.size(), 1) == "\"") {
      pos_ += lead.size();
      const std::size_t key_at = pos_;
      auto found = string();
      if (found.ok() && *found == name && peek(':')) {
        ++pos_;
        return ok_status();
      }
      pos_ = key_at;
      if (found.ok() && *found != name) {
        for (std::string_view e : earlier) {
          if (*found == e) return error("duplicate key '" + *found + "'");
        }
        return error("unexpected key '" + *found + "' where '" + std::string(name) + "' belongs");
      }
    }
    pos_ = start;
    return error("expected key '" + std::string(name) + "'");
  }

  Result<std::string> string() {
    if (!peek('"')) return error("expected a string");
    ++pos_;
    std::string out;
    std::size_t run = pos_;
    while (true) {
      if (pos_ >= in_.size()) return error("unterminated string");
      const auto c = static_cast<unsigned char>(in_[pos_]);
      if (c == '"') break;
      if (c < 0x20) return error("unescaped control byte in a string");
      if (c != '\\') {
        ++pos_;
        continue;
      }
      out.append(in_.substr(run, pos_ - run));
      PKG_ASSIGN_OR_RETURN(const char decoded, escape());
      out.push_back(decoded);
      run = pos_;
    }
    out.append(in_.substr(run, pos_ - run));
    ++pos_;
    return out;
  }

  // A non-negative decimal integer without leading zeros.
  Result<std::uint64_t> number() {
    const std::size_t start = pos_;
    while (pos_ < in_.size() && in_[pos_] >= '0' && in_[pos_] <= '9') ++pos_;
    if (pos_ == start) return error("expected a number");
    if (in_[start] == '0' && pos_ - start > 1) return (pos_ = start, error("number with a leading zero"));
    std::uint64_t v = 0;
    const auto r = std::from_chars(in_.data() + start, in_.data() + pos_, v);
    if (r.ec != std::errc()) return (pos_ = start, error("number out of range"));
    return v;
  }

  Result<std::int64_t> signed_number() {
    const bool negative = peek('-');
    if (negative) ++pos_;
    const std::size_t start = pos_;
    PKG_ASSIGN_OR_RETURN(const std::uint64_t magnitude, number());
    const std::uint64_t limit = negative ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1;
    if (magnitude > limit || (negative && magnitude == 0)) return (pos_ = start, error("number out of range"));
    return negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
  }

  Result<std::uint32_t> number32() {
    const std::size_t start = pos_;
    PKG_ASSIGN_OR_RETURN(const std::uint64_t v, number());
    if (v > UINT32_MAX) return (pos_ = start, error("number out of range"));
    return static_cast<std::uint32_t>(v);
  }

  // 64 lower-case hex digits in quotes.
  Result<Digest> digest() {
    const std::size_t start = pos_;
    if (slice(pos_, 1) != "\"" || slice(pos_ + 65, 1) != "\"") return error("expected a SHA-256 string");
    const std::string_view hex = in_.substr(pos_ + 1, 64);
    for (char c : hex) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
        return error("expected 64 lower-case hex digits");
      }
    }
    pos_ = start + 66;
    return *Digest::from_hex(hex);
  }

 private:
  // The escapes the writer produces, and no others.
  Result<char> escape() {
    const std::string_view rest = in_.substr(pos_);
    if (rest.size() < 2) return error("unterminated escape");
    pos_ += 2;
    switch (rest[1]) {
      case '"': return '"';
      case '\\': return '\\';
      case 'b': return '\b';
      case 'f': return '\f';
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case 'u': break;
      default: return (pos_ -= 2, error("escape the canonical form does not use"));
    }
    auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
    if (rest.size() >= 6 && rest.substr(2, 2) == "00" && hex(rest[4]) >= 0 && hex(rest[4]) <= 1 && hex(rest[5]) >= 0) {
      const char c = static_cast<char>(hex(rest[4]) << 4 | hex(rest[5]));
      if (c != '\b' && c != '\f' && c != '\n' && c != '\r' && c != '\t') {
        pos_ += 4;
        return c;
      }
    }
    pos_ -= 2;
    return error("escape the canonical form does not use");
  }

  std::string_view in_;
  std::size_t pos_ = 0;
  std::string where_;
};

Error quota(std::string what) {
  return make_error(WbemCode::kQuotaViolation, "manifest: " + std::move(what));
}

// Parses one entry and checks what it says by itself (its order and parent are checked by the caller).
Status read_entry(Reader& r, const ManifestLimits& limits, const ChunkingParams& chunking, ManifestEntry& e) {
  PKG_TRY(r.key("{", "path"));
  const std::size_t path_at = r.pos();
  PKG_ASSIGN_OR_RETURN(e.path, r.string());
  r.set_where(" (entry '" + e.path + "')");
  if (Status s = check_entry_path(e.path, limits); !s.ok()) {
    if (s.error().code == WbemCode::kQuotaViolation) return quota(s.error().message);
    return make_error(WbemCode::kInvalidParameter,
                      "manifest: " + s.error().message + " at byte " + std::to_string(path_at));
  }
  if (path_depth(e.path) > limits.max_depth) {
    return quota("path '" + e.path + "' is deeper than the limit of " + std::to_string(limits.max_depth));
  }
  PKG_TRY(r.key(",", "type", {"path"}));
  PKG_ASSIGN_OR_RETURN(const std::string type, r.string());
  if (type == "dir") {
    e.type = EntryType::kDirectory;
    PKG_TRY(r.key(",", "mode", {"path", "type"}));
    PKG_ASSIGN_OR_RETURN(e.mode, r.number32());
    if (e.mode > 07777) return r.error("mode beyond 07777");
  } else if (type == "symlink") {
    e.type = EntryType::kSymlink;
    PKG_TRY(r.key(",", "target", {"path", "type"}));
    PKG_ASSIGN_OR_RETURN(e.target, r.string());
    if (Status s = check_symlink_target(e.path, e.target, limits); !s.ok()) return r.error(s.error().message);
  } else if (type == "file") {
    e.type = EntryType::kFile;
    PKG_TRY(r.key(",", "mode", {"path", "type"}));
    PKG_ASSIGN_OR_RETURN(e.mode, r.number32());
    if (e.mode > 07777) return r.error("mode beyond 07777");
    PKG_TRY(r.key(",", "size", {"path", "type", "mode"}));
    PKG_ASSIGN_OR_RETURN(e.size, r.number());
    PKG_TRY(r.key(",", "sha256", {"path", "type", "mode", "size"}));
    PKG_ASSIGN_OR_RETURN(e.sha256, r.digest());
    PKG_TRY(r.key(",", "chunks", {"path", "type", "mode", "size", "sha256"}));
    PKG_TRY(r.literal("["));
    std::uint64_t sum = 0;
    while (!r.peek(']')) {
      PKG_TRY(r.key(e.chunks.empty() ? "{" : ",{", "sha256"));
      ChunkRef& c = e.chunks.emplace_back();
      PKG_ASSIGN_OR_RETURN(c.hash, r.digest());
      PKG_TRY(r.key(",", "size", {"sha256"}));
      PKG_ASSIGN_OR_RETURN(c.size, r.number32());
      if (c.size == 0 || c.size > chunking.max_size) {
        return r.error("chunk size " + std::to_string(c.size) + " outside 1.." + std::to_string(chunking.max_size));
      }
      PKG_TRY(r.literal("}"));
      sum += c.size;
      if (sum > e.size) return r.error("chunk sizes add up to more than the file size");
    }
    PKG_TRY(r.literal("]"));
    if (sum != e.size) return r.error("chunk sizes add up to " + std::to_string(sum) + ", not the file size");
    // Every chunk but the last is cut at or after min_size.
    for (std::size_t i = 0; i + 1 < e.chunks.size(); ++i) {
      if (e.chunks[i].size < chunking.min_size) {
        return r.error("chunk " + std::to_string(i) + " of " + std::to_string(e.chunks[i].size) +
                       " bytes is shorter than the minimum and not the last");
      }
    }
  } else {
    return r.error("unknown entry type '" + type + "'");
  }
  PKG_TRY(r.literal("}"));
  r.set_where("");
  return ok_status();
}

Result<Manifest> read_manifest(Reader& r, const ManifestLimits& limits) {
  Manifest m;
  PKG_TRY(r.key("{", "format"));
  PKG_ASSIGN_OR_RETURN(const std::string format, r.string());
  if (format != "pkgcast-manifest") return r.error("format '" + format + "' is not pkgcast-manifest");
  PKG_TRY(r.key(",", "version", {"format"}));
  PKG_ASSIGN_OR_RETURN(const std::uint64_t version, r.number());
  if (version != 1) return r.error("unsupported version " + std::to_string(version));
  PKG_TRY(r.key(",", "chunking", {"format", "version"}));
  PKG_TRY(r.key("{", "min"));
  PKG_ASSIGN_OR_RETURN(m.chunking.min_size, r.number32());
  PKG_TRY(r.key(",", "avg", {"min"}));
  PKG_ASSIGN_OR_RETURN(m.chunking.avg_size, r.number32());
  PKG_TRY(r.key(",", "max", {"min", "avg"}));
  PKG_ASSIGN_OR_RETURN(m.chunking.max_size, r.number32());
  PKG_TRY(r.literal("}"));
  if (Status s = check_chunking_params(m.chunking); !s.ok()) return r.error(s.error().message);
  if (m.chunking.max_size > limits.max_chunk_bytes) {
    return quota("chunks of up to " + std::to_string(m.chunking.max_size) + " bytes are more than the limit of " +
                 std::to_string(limits.max_chunk_bytes));
  }
  PKG_TRY(r.key(",", "source_date", {"format", "version", "chunking"}));
  PKG_ASSIGN_OR_RETURN(m.source_date, r.signed_number());
  PKG_TRY(r.key(",", "entries", {"format", "version", "chunking", "source_date"}));
  PKG_TRY(r.literal("["));

  std::unordered_set<std::string> directories;
  // A chunk is named by its SHA-256, so it has one size wherever it is listed; a receiver writes it by that name.
  std::unordered_map<Digest, std::uint32_t, DigestHash> chunk_sizes;
  std::uint64_t total = 0;
  while (!r.peek(']')) {
    if (m.entries.size() == limits.max_entries) {
      return quota("more than the limit of " + std::to_string(limits.max_entries) + " entries");
    }
    if (!m.entries.empty()) PKG_TRY(r.literal(","));
    ManifestEntry& e = m.entries.emplace_back();
    PKG_TRY(read_entry(r, limits, m.chunking, e));
    if (m.entries.size() > 1) {
      const std::string& prev = m.entries[m.entries.size() - 2].path;
      if (e.path == prev) return r.error("path '" + e.path + "' appears twice");
      if (e.path < prev) return r.error("path '" + e.path + "' is out of order (after '" + prev + "')");
    }
    const std::size_t slash = e.path.rfind('/');
    if (slash != std::string::npos && !directories.contains(e.path.substr(0, slash))) {
      return r.error("the parent of '" + e.path + "' is not a directory listed before it");
    }
    if (e.type == EntryType::kDirectory) directories.insert(e.path);
    if (e.type == EntryType::kFile) {
      for (const ChunkRef& c : e.chunks) {
        const auto [it, first] = chunk_sizes.try_emplace(c.hash, c.size);
        if (!first && it->second != c.size) {
          return r.error("chunk " + c.hash.hex() + " is listed with " + std::to_string(it->second) + " and " +
                         std::to_string(c.size) + " bytes");
        }
      }
      total += e.size;
      if (e.size > limits.max_total_size || total > limits.max_total_size) {
        return quota("files add up to more than the limit of " + std::to_string(limits.max_total_size) + " bytes");
      }
    }
  }
  PKG_TRY(r.literal("]}"));
  if (!r.at_end()) return r.error("bytes after the manifest");
  return m;
}

}  // namespace

Result<Manifest> parse_manifest(std::string_view bytes, const ManifestLimits& limits) {
  if (bytes.size() > limits.max_bytes) {
    return quota(std::to_string(bytes.size()) + " bytes, more than the limit of " + std::to_string(limits.max_bytes));
  }
  Reader reader(bytes);
  return read_manifest(reader, limits);
}

}  // namespace pkgcast::content
