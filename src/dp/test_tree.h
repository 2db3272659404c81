// Test helpers: source trees on disk, their manifest and chunks (fixed-size cuts, enough for the agent, which
// never re-chunks), and a byte-for-byte comparison of two trees, modes and link targets included.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "content/content.h"

namespace pkgcast::dp::testing {

// A fresh directory, removed with its contents when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct BuiltContent {
  content::Manifest manifest;
  std::string manifest_bytes;
  std::string manifest_hash;                  // hex
  std::map<std::string, std::string> chunks;  // hex -> raw bytes
  std::uint64_t total_size = 0;
};

// Walks `source` (files, directories, symlinks) and cuts files every `chunk_size` bytes.
BuiltContent build_content(const std::filesystem::path& source, std::size_t chunk_size = 64 * 1024);

// The same through the content library's own ingest (FastCDC cuts, as the site server makes them), with the
// library kept under `library_dir`.
BuiltContent ingest_content(const std::filesystem::path& source, const std::filesystem::path& library_dir);

void write_file(const std::filesystem::path& path, std::string_view bytes, unsigned mode = 0644);
std::string read_all(const std::filesystem::path& path);
std::string pseudo_random(std::size_t n, std::uint64_t seed);

// "" when the trees are identical (same entries, types, modes, bytes, link targets), else the first difference.
std::string diff_trees(const std::filesystem::path& a, const std::filesystem::path& b);

}  // namespace pkgcast::dp::testing
