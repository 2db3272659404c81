// The plain-TCP instantiation of Session, compiled apart from the TLS one to keep each unit's build small.
#include "server/session.h"

namespace pkgcast::server {

void start_plain_connection(std::shared_ptr<HttpServer::Core> core, tcp::socket socket) {
  std::make_shared<Session<beast::tcp_stream>>(std::move(core), std::move(socket))->start();
}

}  // namespace pkgcast::server
