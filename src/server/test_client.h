// Test helper: a synchronous Beast HTTP/1.1 client on one kept-alive connection, plain or TLS, plus raw socket
// access for malformed input. Tests only.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pkgcast::server::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

using HttpResponse = http::response<http::string_body>;

class TestClient {
 public:
  // Connects to 127.0.0.1:port. With `trusted_cert_pem`, speaks TLS and trusts only that certificate.
  explicit TestClient(std::uint16_t port, std::optional<std::string> trusted_cert_pem = std::nullopt);
  ~TestClient();

  // Sends one request and reads its whole response (chunked or not). Throws boost::system::system_error on a
  // transport error, as Beast's synchronous API does (tests only).
  HttpResponse request(http::verb method, const std::string& target, std::string body = "",
                       std::vector<std::pair<std::string, std::string>> headers = {});
  HttpResponse get(const std::string& target, std::vector<std::pair<std::string, std::string>> headers = {}) {
    return request(http::verb::get, target, "", std::move(headers));
  }

  // A HEAD request: the response's header, with the body it announces left unread (there is none).
  HttpResponse head(const std::string& target, std::vector<std::pair<std::string, std::string>> headers = {});

  // Raw access (plain connections only).
  void write_raw(std::string_view bytes);
  // Reads one response from the connection, whatever was sent before.
  HttpResponse read_response();
  // Reads until the server closes the connection; returns what arrived.
  std::string read_until_closed();
  // Reads one response's header only, leaving the body (a stream) unread on the socket.
  http::response_parser<http::string_body>& read_header();
  // Reads at most `n` more body bytes of the response whose header read_header() returned; "" at its end.
  std::string read_some_body(std::size_t n);
  void close();

  tcp::socket& socket();

 private:
  net::io_context ioc_;
  std::optional<net::ssl::context> tls_context_;
  std::unique_ptr<beast::tcp_stream> plain_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> stream_parser_;
};

}  // namespace pkgcast::server::testing
