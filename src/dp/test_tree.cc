#include "dp/test_tree.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

namespace pkgcast::dp::testing {
namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string templ = (fs::temp_directory_path() / "pkgcast-dp-XXXXXX").string();
  path_ = ::mkdtemp(templ.data());
}

TempDir::~TempDir() {
  std::error_code ec;
  // Read-only directories from manifests: make them removable first.
  for (auto it = fs::recursive_directory_iterator(path_, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
  }
  fs::remove_all(path_, ec);
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& path, std::string_view bytes, unsigned mode) {
  fs::create_directories(path.parent_path());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  ::chmod(path.c_str(), mode);
}

std::string pseudo_random(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

namespace {

std::vector<std::string> relative_paths(const fs::path& root) {
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    out.push_back(it->path().lexically_relative(root).generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

BuiltContent build_content(const fs::path& source, std::size_t chunk_size) {
  BuiltContent b;
  for (const auto& rel : relative_paths(source)) {
    const fs::path p = source / rel;
    struct stat st {};
    ::lstat(p.c_str(), &st);
    content::ManifestEntry e;
    e.path = rel;
    if (S_ISLNK(st.st_mode)) {
      e.type = content::EntryType::kSymlink;
      e.target = fs::read_symlink(p).string();
    } else if (S_ISDIR(st.st_mode)) {
      e.type = content::EntryType::kDirectory;
      e.mode = st.st_mode & 07777;
    } else {
      e.type = content::EntryType::kFile;
      e.mode = st.st_mode & 07777;
      const std::string bytes = read_all(p);
      e.size = bytes.size();
      e.sha256 = content::sha256(bytes);
      for (std::size_t at = 0; at < bytes.size(); at += chunk_size) {
        const std::string piece = bytes.substr(at, chunk_size);
        const auto h = content::sha256(piece);
        e.chunks.push_back({h, static_cast<std::uint32_t>(piece.size())});
        b.chunks[h.hex()] = piece;
      }
      b.total_size += e.size;
    }
    b.manifest.entries.push_back(std::move(e));
  }
  b.manifest_bytes = content::serialize_manifest(b.manifest);
  b.manifest_hash = content::sha256(b.manifest_bytes).hex();
  return b;
}

BuiltContent ingest_content(const fs::path& source, const fs::path& library_dir) {
  BuiltContent b;
  auto library = content::Library::open(library_dir);
  if (!library.ok()) return b;
  auto ingested = (*library)->ingest(source);
  if (!ingested.ok()) return b;
  b.manifest = ingested->manifest;
  b.manifest_bytes = content::serialize_manifest(b.manifest);
  b.manifest_hash = ingested->manifest_id.hex();
  b.total_size = ingested->source_bytes;
  for (const auto& e : b.manifest.entries) {
    for (const auto& c : e.chunks) {
      auto bytes = (*library)->chunks().get(c.hash);
      if (bytes.ok()) b.chunks[c.hash.hex()] = std::move(bytes).value();
    }
  }
  return b;
}

std::string diff_trees(const fs::path& a, const fs::path& b) {
  const auto pa = relative_paths(a);
  const auto pb = relative_paths(b);
  if (pa != pb) {
    std::string d = "entries differ:";
    for (const auto& p : pa) {
      if (std::find(pb.begin(), pb.end(), p) == pb.end()) d += " -" + p;
    }
    for (const auto& p : pb) {
      if (std::find(pa.begin(), pa.end(), p) == pa.end()) d += " +" + p;
    }
    return d;
  }
  for (const auto& rel : pa) {
    struct stat sa {}, sb {};
    ::lstat((a / rel).c_str(), &sa);
    ::lstat((b / rel).c_str(), &sb);
    if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) return rel + ": type differs";
    if (S_ISLNK(sa.st_mode)) {
      if (fs::read_symlink(a / rel) != fs::read_symlink(b / rel)) return rel + ": link target differs";
      continue;
    }
    if ((sa.st_mode & 07777) != (sb.st_mode & 07777)) return rel + ": mode differs";
    if (S_ISREG(sa.st_mode) && read_all(a / rel) != read_all(b / rel)) return rel + ": bytes differ";
  }
  return {};
}

}  // namespace pkgcast::dp::testing
