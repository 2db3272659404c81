// The TLS instantiation of Session (Beast's ssl_stream over OpenSSL).
#include "server/session.h"

namespace pkgcast::server {

void start_tls_connection(std::shared_ptr<HttpServer::Core> core, tcp::socket socket) {
  auto& context = *core->tls;
  std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(std::move(core), std::move(socket), context)
      ->start();
}

}  // namespace pkgcast::server
