// Building source trees and reading ingested content back, for the library tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "content/content.h"
#include "content/test_util.h"

namespace pkgcast::content::testing {

inline void write(const std::filesystem::path& file, std::string_view bytes, unsigned mode = 0644) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ::chmod(file.c_str(), mode);
}

inline std::string read(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline std::unique_ptr<Library> open_library(const std::filesystem::path& dir) {
  auto lib = Library::open(dir);
  EXPECT_TRUE(lib.ok()) << lib.error().to_string();
  return std::move(lib).value();
}

// The file's bytes put back together from the store.
inline std::string assemble(ChunkStore& store, const ManifestEntry& e) {
  std::string out;
  for (const ChunkRef& c : e.chunks) {
    auto bytes = store.get(c.hash);
    EXPECT_TRUE(bytes.ok()) << bytes.error().to_string();
    if (bytes.ok()) out += *bytes;
  }
  return out;
}

inline const ManifestEntry* find_entry(const Manifest& m, std::string_view path) {
  for (const ManifestEntry& e : m.entries) {
    if (e.path == path) return &e;
  }
  return nullptr;
}

inline std::size_t count_files(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

}  // namespace pkgcast::content::testing
