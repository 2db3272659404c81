// The durable status outbox (<data-dir>/outbox/): every status message is a file, written atomically before it is
// sent, and deleted only once the server acknowledged it, so no restart of either side loses one. Each message
// carries an idempotency key, so one sent twice (a crash between the server's answer and the delete) is applied
// once.
//
// Files: "m-<seq>.json" for a final message (installed, failed, removed, validated, ...); "p-<PackageID>.json" for
// the one pending progress message of a package, replaced by each newer one (progress is coalesced). Messages are
// sent in sequence order; putting a final message of a package drops its pending progress message, so a stale
// progress never follows the outcome.
//
// Thread safety: put() from any thread; one sender thread (start/stop) delivers.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "core/mutex.h"
#include "core/result.h"

namespace pkgcast::dp {

struct StatusMessage {
  std::string key;  // 1-128 of [A-Za-z0-9._:-]
  std::string package_id;
  std::uint32_t generation = 0;
  std::string state;  // progress, installed, failed, removed, remove_failed, repairing, validated,
                      // validation_failed, cancelled
  std::uint64_t bytes_done = 0;
  std::uint64_t bytes_total = 0;
  std::string message;

  std::string to_json() const;  // the POST /api/v1/dp/status body
};

// Delivers one message. ok: the server answered (applied or not: the message is done). An error: retry later.
using SendStatus = std::function<Status(const StatusMessage&)>;

struct OutboxOptions {
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{30'000};
};

class Outbox {
 public:
  // Creates the directory when missing and indexes what a previous run left. With a `key_prefix`, a message left
  // there whose key does not start with it (another DP's, from a copied data directory) is removed, not sent with
  // this DP's token.
  static Result<std::unique_ptr<Outbox>> open(const std::filesystem::path& dir, SendStatus send,
                                              OutboxOptions options = {}, const std::string& key_prefix = {});
  ~Outbox();  // stops the sender

  // Durable when it returns ok (the file is fsynced and renamed into place). When the file cannot be written (a
  // full disk), a final message is still sent from memory while this process runs, so the server hears of the
  // outcome now; the error says it is not durable (the caller then does not record the job as done).
  Status put(const StatusMessage& message);

  void start();  // starts the sender thread
  void stop();   // stops it (a send in progress completes first)

  std::size_t pending() const;
  // Waits until nothing is pending or the timeout passes; true when empty.
  bool wait_empty(std::chrono::milliseconds timeout) const;

 private:
  struct Pending {
    std::uint64_t seq = 0;
    std::string file;  // name inside dir_
  };
  Outbox(std::filesystem::path dir, SendStatus send, OutboxOptions options);
  void run();
  Status write_locked(const std::string& name, const StatusMessage& m, std::uint64_t seq) PKG_REQUIRES(mu_);

  const std::filesystem::path dir_;
  const SendStatus send_;
  const OutboxOptions options_;
  mutable Mutex mu_;
  mutable CondVar cv_;
  std::map<std::string, std::uint64_t> files_ PKG_GUARDED_BY(mu_);  // file name -> seq of its content
  std::map<std::uint64_t, StatusMessage> unsaved_ PKG_GUARDED_BY(mu_);  // seq -> a final message put() could not write
  std::uint64_t next_seq_ PKG_GUARDED_BY(mu_) = 1;
  bool stopping_ PKG_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace pkgcast::dp
