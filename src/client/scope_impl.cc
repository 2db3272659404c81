#include "client/scope_impl.h"

namespace pkgcast::client_detail {

ScopeImpl::ScopeImpl(client::ServerUrl url, std::string namespace_path, ConnectionOptions options, std::string token)
    : url_(std::move(url)), namespace_path_(std::move(namespace_path)), options_(std::move(options)) {
  http_options_.token = std::move(token);
  http_options_.ca_file = options_.ca_file;
  http_options_.insecure = options_.insecure;
  http_options_.timeout = options_.timeout;
}

Result<std::unique_ptr<client::HttpClient>> ScopeImpl::acquire() const {
  {
    MutexLock lock(mu_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  return client::HttpClient::create(url_, http_options_);
}

void ScopeImpl::release(std::unique_ptr<client::HttpClient> client) const {
  MutexLock lock(mu_);
  if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(client));
}

Result<std::unique_ptr<client::HttpClient>> ScopeImpl::stream_client() const {
  client::HttpOptions o = http_options_;
  o.timeout = options_.event_idle_timeout;
  return client::HttpClient::create(url_, std::move(o));
}

}  // namespace pkgcast::client_detail
