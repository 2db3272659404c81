// The canonical serialization (docs/content.md): one fixed key order, no whitespace, strings escaped one way only,
// so a manifest has exactly one byte form and its id is a function of its content.
#include <charconv>

#include "content/content.h"

namespace pkgcast::content {
namespace {

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void raw(std::string_view s) { out_.append(s); }

  void number(std::uint64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
  }
  void signed_number(std::int64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
  }

  // '"' and '\' escaped with a backslash; control bytes as \b \f \n \r \t or \u00xx (lower-case hex); every other
  // byte, UTF-8 included, as it is.
  void string(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out_.push_back('"');
    std::size_t run = 0;  // start of the bytes not yet copied
    for (std::size_t i = 0; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out_.append(s.substr(run, i - run));
      run = i + 1;
      switch (c) {
        case '"': out_.append("\\\""); break;
        case '\\': out_.append("\\\\"); break;
        case '\b': out_.append("\\b"); break;
        case '\f': out_.append("\\f"); break;
        case '\n': out_.append("\\n"); break;
        case '\r': out_.append("\\r"); break;
        case '\t': out_.append("\\t"); break;
        default:
          out_.append("\\u00");
          out_.push_back(kHex[c >> 4]);
          out_.push_back(kHex[c & 0xF]);
      }
    }
    out_.append(s.substr(run));
    out_.push_back('"');
  }

  void digest(const Digest& d) {
    out_.push_back('"');
    out_.append(d.hex());
    out_.push_back('"');
  }

 private:
  std::string& out_;
};

void write_entry(Writer& w, const ManifestEntry& e) {
  w.raw("{\"path\":");
  w.string(e.path);
  switch (e.type) {
    case EntryType::kDirectory:
      w.raw(",\"type\":\"dir\",\"mode\":");
      w.number(e.mode);
      break;
    case EntryType::kSymlink:
      w.raw(",\"type\":\"symlink\",\"target\":");
      w.string(e.target);
      break;
    case EntryType::kFile:
      w.raw(",\"type\":\"file\",\"mode\":");
      w.number(e.mode);
      w.raw(",\"size\":");
      w.number(e.size);
      w.raw(",\"sha256\":");
      w.digest(e.sha256);
      w.raw(",\"chunks\":[");
      for (std::size_t i = 0; i < e.chunks.size(); ++i) {
        w.raw(i == 0 ? "{\"sha256\":" : ",{\"sha256\":");
        w.digest(e.chunks[i].hash);
        w.raw(",\"size\":");
        w.number(e.chunks[i].size);
        w.raw("}");
      }
      w.raw("]");
      break;
  }
  w.raw("}");
}

}  // namespace

std::string serialize_manifest(const Manifest& m) {
  std::string out;
  std::size_t estimate = 160;
  for (const ManifestEntry& e : m.entries) estimate += 128 + e.path.size() + e.target.size() + 90 * e.chunks.size();
  out.reserve(estimate);
  Writer w(out);
  w.raw("{\"format\":\"pkgcast-manifest\",\"version\":1,\"chunking\":{\"min\":");
  w.number(m.chunking.min_size);
  w.raw(",\"avg\":");
  w.number(m.chunking.avg_size);
  w.raw(",\"max\":");
  w.number(m.chunking.max_size);
  w.raw("},\"source_date\":");
  w.signed_number(m.source_date);
  w.raw(",\"entries\":[");
  for (std::size_t i = 0; i < m.entries.size(); ++i) {
    if (i != 0) w.raw(",");
    write_entry(w, m.entries[i]);
  }
  w.raw("]}");
  return out;
}

Digest manifest_id(const Manifest& manifest) {
  return sha256(serialize_manifest(manifest));
}

std::uint64_t Manifest::total_size() const {
  std::uint64_t total = 0;
  for (const ManifestEntry& e : entries) {
    if (e.type == EntryType::kFile) total += e.size;
  }
  return total;
}

}  // namespace pkgcast::content
