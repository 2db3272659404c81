// Raw TCP on loopback for the hostile tests: bytes exactly as an attacker would send them, with no HTTP library
// tidying them up. Every call is bounded in time, so a test that finds a hang fails instead of hanging.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pkgcast::testing {

class RawSocket {
 public:
  // Connects to 127.0.0.1:port; connected() tells whether it worked (a refused or reset connect is a result the
  // connection-limit tests look for).
  explicit RawSocket(std::uint16_t port);
  ~RawSocket();
  RawSocket(RawSocket&& other) noexcept;
  RawSocket& operator=(RawSocket&& other) noexcept;
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  bool connected() const { return fd_ >= 0; }
  // Sends everything; false when the peer has closed or reset.
  bool send(std::string_view bytes);
  // shutdown(SHUT_WR): the client's half-close.
  void shutdown_write();
  // Abortive close (RST), as a killed client.
  void reset();
  // Reads until the peer closes or `timeout` passes; whatever arrived.
  std::string read_until_close(std::chrono::milliseconds timeout);
  // Reads until `needle` has arrived (returns everything so far) or the timeout passes (nullopt).
  std::optional<std::string> read_until(std::string_view needle, std::chrono::milliseconds timeout);
  // True when the peer closed (EOF or reset) within `timeout`; data arriving meanwhile is discarded.
  bool closed_within(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  std::string pending_;
};

// The status code of the first response in `raw` ("HTTP/1.1 400 ..."), or 0 when there is none.
int status_of(std::string_view raw);

// The port of a URL such as "http://127.0.0.1:41234".
std::uint16_t port_of(std::string_view url);

}  // namespace pkgcast::testing
