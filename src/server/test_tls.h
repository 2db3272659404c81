// Test helper: a throw-away self-signed certificate for 127.0.0.1, made with OpenSSL's C API (no `openssl` tool
// needed). Tests only.
#pragma once

#include <filesystem>
#include <string>

namespace pkgcast::server::testing {

struct SelfSigned {
  std::string cert_pem;
  std::string key_pem;
};

// An EC P-256 key and a certificate for CN=127.0.0.1 with subjectAltName IP:127.0.0.1, valid for a day.
SelfSigned make_self_signed();

// Writes `text` to `path` (tests only; no atomicity needed).
void write_file(const std::filesystem::path& path, const std::string& text);

}  // namespace pkgcast::server::testing
