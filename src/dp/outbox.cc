#include "dp/outbox.h"

#include <unistd.h>

#include <algorithm>
#include <optional>
#include <nlohmann/json.hpp>
#include <random>
#include <spdlog/spdlog.h>

#include "client/reconnect.h"
#include "core/paths.h"
#include "dp/fs_util.h"

namespace pkgcast::dp {
namespace {

using nlohmann::json;

// Final messages kept in memory because their files could not be written; beyond this, they are only logged.
constexpr std::size_t kMaxUnsaved = 10'000;

json message_json(const StatusMessage& m) {
  return {{"key", m.key},           {"package_id", m.package_id}, {"generation", m.generation},
          {"state", m.state},       {"bytes_done", m.bytes_done}, {"bytes_total", m.bytes_total},
          {"message", m.message}};
}

Result<std::pair<std::uint64_t, StatusMessage>> read_message(const std::filesystem::path& file) {
  PKG_ASSIGN_OR_RETURN(std::string text, read_file(file.string()));
  json j = json::parse(text, nullptr, false);
  auto bad = make_error(WbemCode::kInvalidParameter, "malformed outbox file '" + file.string() + "'");
  if (!j.is_object()) return bad;
  try {
    StatusMessage m;
    m.key = j.at("key").get<std::string>();
    m.package_id = j.at("package_id").get<std::string>();
    m.generation = j.at("generation").get<std::uint32_t>();
    m.state = j.at("state").get<std::string>();
    m.bytes_done = j.at("bytes_done").get<std::uint64_t>();
    m.bytes_total = j.at("bytes_total").get<std::uint64_t>();
    m.message = j.at("message").get<std::string>();
    return std::make_pair(j.at("seq").get<std::uint64_t>(), std::move(m));
  } catch (const std::exception&) {
    return bad;
  }
}

}  // namespace

std::string StatusMessage::to_json() const { return message_json(*this).dump(); }

Outbox::Outbox(std::filesystem::path dir, SendStatus send, OutboxOptions options)
    : dir_(std::move(dir)), send_(std::move(send)), options_(options) {}

Outbox::~Outbox() { stop(); }

Result<std::unique_ptr<Outbox>> Outbox::open(const std::filesystem::path& dir, SendStatus send,
                                             OutboxOptions options, const std::string& key_prefix) {
  PKG_TRY(ensure_dir(dir));
  std::unique_ptr<Outbox> box(new Outbox(dir, std::move(send), options));
  MutexLock lock(box->mu_);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".tmp.") != std::string::npos) {  // a write cut by a crash: never renamed, never acknowledged
      std::filesystem::remove(entry.path(), ec);
      continue;
    }
    if (!name.ends_with(".json")) continue;
    auto m = read_message(entry.path());
    if (!m.ok()) {
      std::filesystem::remove(entry.path(), ec);  // cannot be sent; atomic writes make this unreachable
      continue;
    }
    if (!key_prefix.empty() && !m->second.key.starts_with(key_prefix)) {
      spdlog::warn("dp agent: outbox file '{}' is another DP's ({}); removed, not sent", entry.path().string(),
                   m->second.key);
      std::filesystem::remove(entry.path(), ec);
      continue;
    }
    box->files_[name] = m->first;
    box->next_seq_ = std::max(box->next_seq_, m->first + 1);
  }
  if (ec) return io_error("list", dir, ec.value());
  return box;
}

Status Outbox::write_locked(const std::string& name, const StatusMessage& m, std::uint64_t seq) {
  json j = message_json(m);
  j["seq"] = seq;
  PKG_TRY(write_file_atomic((dir_ / name).string(), j.dump(), 0600));
  files_[name] = seq;
  return ok_status();
}

Status Outbox::put(const StatusMessage& m) {
  MutexLock lock(mu_);
  const std::uint64_t seq = next_seq_++;
  if (m.state == "progress") {
    PKG_TRY(write_locked("p-" + m.package_id + ".json", m, seq));
    cv_.notify_all();
    return ok_status();
  }
  char name[40];
  std::snprintf(name, sizeof name, "m-%020llu.json", static_cast<unsigned long long>(seq));
  Status written = write_locked(name, m, seq);
  if (!written.ok() && unsaved_.size() < kMaxUnsaved) unsaved_[seq] = m;  // sent from memory all the same
  const std::string progress = "p-" + m.package_id + ".json";
  if (files_.erase(progress) > 0) {
    std::error_code ec;
    std::filesystem::remove(dir_ / progress, ec);
  }
  cv_.notify_all();
  return written;
}

void Outbox::start() {
  MutexLock lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void Outbox::stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

std::size_t Outbox::pending() const {
  MutexLock lock(mu_);
  return files_.size() + unsaved_.size();
}

bool Outbox::wait_empty(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(mu_);
  while (!files_.empty() || !unsaved_.empty()) {
    if (!cv_.wait_until(mu_, deadline)) return files_.empty() && unsaved_.empty();
  }
  return true;
}

void Outbox::run() {
  std::mt19937_64 rng(std::random_device{}());
  unsigned failures = 0;
  for (;;) {
    std::string name;  // empty: the message is unsaved_[seq]
    std::uint64_t seq = 0;
    std::optional<StatusMessage> unsaved;
    {
      MutexLock lock(mu_);
      while (!stopping_ && files_.empty() && unsaved_.empty()) cv_.wait(mu_);
      if (stopping_) return;
      // The oldest message first.
      auto oldest = std::min_element(files_.begin(), files_.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
      if (!unsaved_.empty() && (oldest == files_.end() || unsaved_.begin()->first < oldest->second)) {
        seq = unsaved_.begin()->first;
        unsaved = unsaved_.begin()->second;
      } else {
        name = oldest->first;
        seq = oldest->second;
      }
    }
    Status sent = ok_status();
    if (unsaved) {
      sent = send_(*unsaved);
    } else if (auto m = read_message(dir_ / name); m.ok()) {
      sent = send_(m->second);
    }  // an unreadable file is dropped
    MutexLock lock(mu_);
    if (sent.ok() && unsaved) {
      failures = 0;
      unsaved_.erase(seq);
      cv_.notify_all();
      continue;
    }
    if (sent.ok()) {
      failures = 0;
      // A progress file replaced while it was being sent holds a newer message: keep that one.
      if (auto it = files_.find(name); it != files_.end() && it->second == seq) {
        files_.erase(it);
        std::error_code ec;
        std::filesystem::remove(dir_ / name, ec);
      }
      cv_.notify_all();
      continue;
    }
    ++failures;
    const double unit = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    const auto delay = client_detail::reconnect_delay(failures, options_.initial_backoff, options_.max_backoff, unit);
    const auto deadline = std::chrono::steady_clock::now() + delay;
    while (!stopping_ && cv_.wait_until(mu_, deadline)) {
    }
    if (stopping_) return;
  }
}

}  // namespace pkgcast::dp
