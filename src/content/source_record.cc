// The source record's text form, one line each:
//   pkgcast-source-record 1
//   manifest <64 hex>
//   <entry> <device> <inode> <size> <mtime s> <mtime ns> <ctime s> <ctime ns>     (per recorded file)
//   sha256 <64 hex of every byte before this line>
// Canonical: decimal without leading zeros or '+', single spaces, '\n' endings, entries increasing.
#include "content/source_record.h"

#include <charconv>

namespace pkgcast::content {
namespace {

constexpr std::string_view kHeader = "pkgcast-source-record 1\n";
constexpr std::string_view kManifest = "manifest ";
constexpr std::string_view kChecksum = "sha256 ";

// Splits off the next line (without its '\n'); nullopt when no '\n' is left.
std::optional<std::string_view> next_line(std::string_view& rest) {
  const std::size_t end = rest.find('\n');
  if (end == std::string_view::npos) return std::nullopt;
  const std::string_view line = rest.substr(0, end);
  rest.remove_prefix(end + 1);
  return line;
}

template <typename Int>
bool take_number(std::string_view& line, Int& out, bool last) {
  const std::size_t end = last ? line.size() : line.find(' ');
  if (end == std::string_view::npos || end == 0) return false;
  const std::string_view text = line.substr(0, end);
  // The canonical form only: no leading zero (but "0"), no "-0".
  const std::size_t digits = text.front() == '-' ? 1 : 0;
  if (text.size() > digits + 1 && text[digits] == '0') return false;
  if (text == "-0") return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc{} || ptr != text.data() + text.size()) return false;
  line.remove_prefix(last ? end : end + 1);
  return true;
}

std::optional<SourceRecord::File> parse_file_line(std::string_view line) {
  SourceRecord::File f;
  FileStamp& s = f.stamp;
  if (take_number(line, f.entry, false) && take_number(line, s.device, false) && take_number(line, s.inode, false) &&
      take_number(line, s.size, false) && take_number(line, s.mtime_sec, false) &&
      take_number(line, s.mtime_nsec, false) && take_number(line, s.ctime_sec, false) &&
      take_number(line, s.ctime_nsec, true) && line.empty()) {
    return f;
  }
  return std::nullopt;
}

// The header and manifest lines, taken off the front of `rest`.
std::optional<Digest> take_manifest_id(std::string_view& rest) {
  if (!rest.starts_with(kHeader)) return std::nullopt;
  rest.remove_prefix(kHeader.size());
  const auto line = next_line(rest);
  if (!line || !line->starts_with(kManifest)) return std::nullopt;
  const std::string_view hex = line->substr(kManifest.size());
  const auto id = Digest::from_hex(hex);
  // Lower-case only, as written, so that a record has one form.
  if (!id || id->hex() != hex) return std::nullopt;
  return id;
}

}  // namespace

std::optional<Digest> source_record_manifest(std::string_view head) { return take_manifest_id(head); }

FileStamp FileStamp::of(const struct stat& st) {
  return FileStamp{static_cast<std::uint64_t>(st.st_dev),  static_cast<std::uint64_t>(st.st_ino),
                   static_cast<std::uint64_t>(st.st_size), st.st_mtim.tv_sec,
                   st.st_mtim.tv_nsec,                     st.st_ctim.tv_sec,
                   st.st_ctim.tv_nsec};
}

std::string serialize_source_record(const SourceRecord& record) {
  std::string out(kHeader);
  out += kManifest;
  out += record.manifest_id.hex();
  out += '\n';
  for (const SourceRecord::File& f : record.files) {
    const FileStamp& s = f.stamp;
    out += std::to_string(f.entry) + ' ' + std::to_string(s.device) + ' ' + std::to_string(s.inode) + ' ' +
           std::to_string(s.size) + ' ' + std::to_string(s.mtime_sec) + ' ' + std::to_string(s.mtime_nsec) + ' ' +
           std::to_string(s.ctime_sec) + ' ' + std::to_string(s.ctime_nsec) + '\n';
  }
  const std::string checksum = sha256(out).hex();
  out += kChecksum;
  out += checksum;
  out += '\n';
  return out;
}

std::optional<SourceRecord> parse_source_record(std::string_view bytes) {
  // The checksum line is the last one; everything before it is what it covers.
  const std::size_t line_len = kChecksum.size() + 64 + 1;
  if (bytes.size() < kHeader.size() + line_len || bytes.back() != '\n') return std::nullopt;
  const std::string_view covered = bytes.substr(0, bytes.size() - line_len);
  const std::string_view checksum_line = bytes.substr(covered.size(), line_len - 1);
  if (!checksum_line.starts_with(kChecksum)) return std::nullopt;
  const auto checksum = Digest::from_hex(checksum_line.substr(kChecksum.size()));
  if (!checksum || *checksum != sha256(covered)) return std::nullopt;

  std::string_view rest = covered;
  const auto id = take_manifest_id(rest);
  if (!id) return std::nullopt;
  SourceRecord record;
  record.manifest_id = *id;
  while (!rest.empty()) {
    const auto line = next_line(rest);
    if (!line) return std::nullopt;
    auto file = parse_file_line(*line);
    if (!file || (!record.files.empty() && file->entry <= record.files.back().entry)) return std::nullopt;
    record.files.push_back(*file);
  }
  return record;
}

}  // namespace pkgcast::content
