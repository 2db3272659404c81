#include "dp/version_record.h"

#include <charconv>

namespace pkgcast::dp {

FileFingerprint FileFingerprint::of(const struct stat& st) {
  return {static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_size),
          static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec, true};
}

std::optional<content::Digest> first_line_digest(std::string_view text) {
  std::string_view first = text.substr(0, text.find('\n'));
  while (!first.empty() && (first.back() == '\r' || first.back() == ' ' || first.back() == '\t')) {
    first.remove_suffix(1);
  }
  return content::Digest::from_hex(first);
}

std::string serialize_version_record(const content::Digest& manifest_hash,
                                     const std::vector<FileFingerprint>& fingerprints) {
  std::string out = manifest_hash.hex() + "\n";
  for (std::size_t i = 0; i < fingerprints.size(); ++i) {
    const FileFingerprint& f = fingerprints[i];
    if (!f.known) continue;
    out += std::to_string(i) + " " + std::to_string(f.inode) + " " + std::to_string(f.size) + " " +
           std::to_string(f.mtime_ns) + " " + (f.whole ? "1" : "0") + "\n";
  }
  return out;
}

std::optional<VersionRecord> parse_version_record(std::string_view text, std::size_t entries) {
  const std::size_t eol = text.find('\n');
  auto digest = first_line_digest(text);
  if (!digest) return std::nullopt;
  VersionRecord out{*digest, std::vector<FileFingerprint>(entries)};
  std::string_view rest = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
  while (!rest.empty()) {
    const std::size_t end = rest.find('\n');
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    std::uint64_t entry = 0, inode = 0, size = 0, whole = 0;
    std::int64_t mtime = 0;
    const char* p = line.data();
    const char* const last = line.data() + line.size();
    bool ok = true;
    const auto field = [&](auto& v) {
      if (!ok) return;
      while (p < last && *p == ' ') ++p;
      auto [next, ec] = std::from_chars(p, last, v);
      ok = ec == std::errc() && next != p;
      p = next;
    };
    field(entry);
    field(inode);
    field(size);
    field(mtime);
    field(whole);
    if (!ok || p != last || entry >= entries || whole > 1) continue;
    out.fingerprints[entry] = FileFingerprint{inode, size, mtime, true, whole == 1};
  }
  return out;
}

}  // namespace pkgcast::dp
