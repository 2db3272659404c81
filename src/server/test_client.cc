#include "server/test_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <limits>

namespace pkgcast::server::testing {

TestClient::TestClient(std::uint16_t port, std::optional<std::string> trusted_cert_pem) {
  const tcp::endpoint ep(net::ip::make_address("127.0.0.1"), port);
  if (trusted_cert_pem) {
    tls_context_.emplace(net::ssl::context::tls_client);
    tls_context_->add_certificate_authority(net::buffer(*trusted_cert_pem));
    tls_context_->set_verify_mode(net::ssl::verify_peer);
    tls_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc_, *tls_context_);
    beast::get_lowest_layer(*tls_).connect(ep);
    beast::get_lowest_layer(*tls_).socket().set_option(tcp::no_delay(true));
    tls_->handshake(net::ssl::stream_base::client);
  } else {
    plain_ = std::make_unique<beast::tcp_stream>(ioc_);
    plain_->connect(ep);
    plain_->socket().set_option(tcp::no_delay(true));
  }
}

TestClient::~TestClient() { close(); }

tcp::socket& TestClient::socket() {
  return tls_ ? beast::get_lowest_layer(*tls_).socket() : plain_->socket();
}

HttpResponse TestClient::request(http::verb method, const std::string& target, std::string body,
                                 std::vector<std::pair<std::string, std::string>> headers) {
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (auto& [name, value] : headers) req.set(name, value);
  req.body() = std::move(body);
  req.prepare_payload();
  if (tls_) {
    http::write(*tls_, req);
  } else {
    http::write(*plain_, req);
  }
  return read_response();
}

HttpResponse TestClient::head(const std::string& target, std::vector<std::pair<std::string, std::string>> headers) {
  http::request<http::empty_body> req{http::verb::head, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (auto& [name, value] : headers) req.set(name, value);
  http::response_parser<http::string_body> parser;
  parser.skip(true);
  if (tls_) {
    http::write(*tls_, req);
    http::read(*tls_, buffer_, parser);
  } else {
    http::write(*plain_, req);
    http::read(*plain_, buffer_, parser);
  }
  return parser.release();
}

HttpResponse TestClient::read_response() {
  http::response_parser<http::string_body> parser;
  // Not boost::none: Boost 1.74 compares a Content-Length with an empty limit as "greater".
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (tls_) {
    http::read(*tls_, buffer_, parser);
  } else {
    http::read(*plain_, buffer_, parser);
  }
  return parser.release();
}

void TestClient::write_raw(std::string_view bytes) { net::write(socket(), net::buffer(bytes.data(), bytes.size())); }

std::string TestClient::read_until_closed() {
  std::string out(static_cast<const char*>(buffer_.data().data()), buffer_.size());
  buffer_.consume(buffer_.size());
  char chunk[4096];
  boost::system::error_code ec;
  while (true) {
    const std::size_t n = socket().read_some(net::buffer(chunk), ec);
    if (ec) break;
    out.append(chunk, n);
  }
  return out;
}

http::response_parser<http::string_body>& TestClient::read_header() {
  stream_parser_.emplace();
  stream_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());  // not boost::none (see read_response)
  http::read_header(*plain_, buffer_, *stream_parser_);
  return *stream_parser_;
}

std::string TestClient::read_some_body(std::size_t n) {
  auto& body = stream_parser_->get().body();
  body.clear();
  while (body.size() < n && !stream_parser_->is_done()) {
    http::read_some(*plain_, buffer_, *stream_parser_);
  }
  return body;
}

void TestClient::close() {
  boost::system::error_code ec;
  if (tls_) {
    beast::get_lowest_layer(*tls_).socket().close(ec);
  } else if (plain_) {
    plain_->socket().close(ec);
  }
}

}  // namespace pkgcast::server::testing
