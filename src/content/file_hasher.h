// A file's SHA-256 and each of its chunks' SHA-256, computed over the same bytes in one pass. The ingest hashes
// every byte twice (the chunk's name, and the whole file's hash in the manifest), and so does the DP agent (each
// chunk's check, and each file's whole-file check); hashing is most of their CPU after compression.
//
// With x86 SHA extensions (SHA-NI) the two hashes run interleaved, one 64-byte block of each at a time: a single
// SHA-256 stream waits on the latency of the round instructions, so a second independent stream fills the gaps
// (2.5 GB/s of bytes hashed per CPU-second against 1.6 for OpenSSL's one stream, on the 2-core build machine).
// Without them, OpenSSL hashes each. Both give the same digests (file_hasher_test.cc checks them against OpenSSL).
//
// Not thread-safe; one per file being read.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "content/content.h"

namespace pkgcast::content {

class FileHasher {
 public:
  enum class Engine {
    kBest,     // SHA-NI when the CPU has it, else OpenSSL
    kOpenSsl,  // OpenSSL only (what kBest falls back to; tests compare the two)
  };
  explicit FileHasher(Engine engine = Engine::kBest);
  ~FileHasher();
  FileHasher(const FileHasher&) = delete;
  FileHasher& operator=(const FileHasher&) = delete;

  // Appends `chunk` (the next bytes of the file, any length, empty included) to the file's hash and returns the
  // SHA-256 of `chunk` alone.
  Digest add_chunk(std::span<const std::uint8_t> chunk);
  // Appends `bytes` to the file's hash only (for bytes whose chunk digest is known already).
  void append(std::span<const std::uint8_t> bytes);
  // The SHA-256 of every byte added. The object may not be used afterwards.
  Digest finish();

  // Whether kBest uses the SHA extensions on this CPU.
  static bool accelerated();

 private:
  struct Ni;
  const bool use_ni_;
  std::unique_ptr<Ni> ni_;       // the file's hash in progress, with use_ni_
  std::optional<Sha256> whole_;  // the file's hash in progress, without
};

}  // namespace pkgcast::content
