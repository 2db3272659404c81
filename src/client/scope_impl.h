// The shared state behind ManagementScope copies and the subscriptions made from them (internal).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "client/http_client.h"
#include "client/url.h"
#include "core/mutex.h"
#include "core/thread_annotations.h"
#include "pkgcast/connection_options.h"

namespace pkgcast::client_detail {

class ScopeImpl {
 public:
  // Kept-alive connections kept for later queries; more run at once when several threads query.
  static constexpr std::size_t kMaxIdleConnections = 4;

  ScopeImpl(client::ServerUrl url, std::string namespace_path, ConnectionOptions options, std::string token);

  // A connection for one query (from the pool, or new); give it back with release() when it ended cleanly.
  Result<std::unique_ptr<client::HttpClient>> acquire() const;
  void release(std::unique_ptr<client::HttpClient> client) const;
  // A connection of its own for an event stream: the idle timeout is ConnectionOptions::event_idle_timeout.
  Result<std::unique_ptr<client::HttpClient>> stream_client() const;

  const client::ServerUrl& url() const { return url_; }
  const std::string& namespace_path() const { return namespace_path_; }
  const ConnectionOptions& options() const { return options_; }

 private:
  client::ServerUrl url_;
  std::string namespace_path_;
  ConnectionOptions options_;
  client::HttpOptions http_options_;
  mutable Mutex mu_;
  mutable std::vector<std::unique_ptr<client::HttpClient>> idle_ PKG_GUARDED_BY(mu_);
};

}  // namespace pkgcast::client_detail
