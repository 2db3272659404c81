// The Configuration Manager SDK's package-status sample (QueryPackageStatus), ported to pkgcast's client library:
// it subscribes to the creation and the modification of SMS_PackageStatusRootSummarizer instances with the
// document's two queries, unchanged, and prints Name, Targeted and Installed for each event. pkgcast pushes each
// change as it commits, so the WITHIN 120 of the original costs nothing and delays nothing.
//
//   package_status [--server URL] [--token T | --token-file F] [--namespace NS] [--count N] [--timeout S]
//
// The server, token and token file default to $PKGCAST_SERVER, $PKGCAST_TOKEN and $PKGCAST_TOKEN_FILE. With
// --count the program exits after N events; with --timeout it gives up (exit 1) after S seconds without them.
#include <pkgcast/pkgcast.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view kCreationQuery =
    "SELECT * FROM __InstanceCreationEvent WITHIN 120 WHERE TargetInstance ISA 'SMS_PackageStatusRootSummarizer'";
constexpr std::string_view kModificationQuery =
    "SELECT * FROM __InstanceModificationEvent WITHIN 120 WHERE TargetInstance ISA "
    "'SMS_PackageStatusRootSummarizer'";

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

int usage() {
  std::cerr << "usage: package_status [--server URL] [--token T | --token-file F] [--namespace NS] [--count N]"
               " [--timeout S]\n";
  return 2;
}

// Prints one event the way the sample does, one line each so that another program can read them.
class Printer {
 public:
  explicit Printer(long max_events) : max_events_(max_events) {}

  void print(const pkgcast::Instance& e) {
    const pkgcast::Value& package = e["TargetInstance"];
    std::lock_guard lock(mu_);
    if (max_events_ > 0 && printed_ >= max_events_) return;
    std::cout << "Name: " << package["Name"].to_string() << "  Targeted: " << package["Targeted"].to_string()
              << "  Installed: " << package["Installed"].to_string() << "  (" << e.class_name() << " of "
              << package["PackageID"].to_string() << ", revision " << e.revision().value_or(0) << ")" << std::endl;
    ++printed_;
    done_.notify_all();
  }

  void stopped(const pkgcast::Status& status) {
    std::lock_guard lock(mu_);
    if (!status.ok() && status.error().code != pkgcast::WbemCode::kCallCancelled) {
      std::cerr << "error: " << status.error().to_string() << std::endl;
      failed_ = true;
      done_.notify_all();
    }
  }

  // True when max_events arrived (or forever with 0) before the timeout; false on a timeout or an error.
  bool wait(std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    auto enough = [&] { return failed_ || (max_events_ > 0 && printed_ >= max_events_); };
    if (timeout.count() == 0) {
      done_.wait(lock, enough);
    } else if (!done_.wait_for(lock, timeout, enough)) {
      std::cerr << "error: WBEM_E_TIMED_OUT: " << printed_ << " of " << max_events_ << " events within "
                << timeout.count() << " s" << std::endl;
      return false;
    }
    return !failed_;
  }

 private:
  const long max_events_;
  std::mutex mu_;
  std::condition_variable done_;
  long printed_ = 0;
  bool failed_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  pkgcast::ConnectionOptions options;
  std::string server = env_or("PKGCAST_SERVER", "http://127.0.0.1:8750");
  options.token = env_or("PKGCAST_TOKEN", "");
  options.token_file = env_or("PKGCAST_TOKEN_FILE", "");
  std::string ns;
  long count = 0;
  long timeout = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) return usage();
    const std::string value = argv[++i];
    try {
      if (arg == "--server") {
        server = value;
      } else if (arg == "--token") {
        options.token = value;
      } else if (arg == "--token-file") {
        options.token_file = value;
      } else if (arg == "--namespace") {
        ns = value;
      } else if (arg == "--count") {
        count = std::stol(value);
      } else if (arg == "--timeout") {
        timeout = std::stol(value);
      } else {
        return usage();
      }
    } catch (const std::exception&) {
      return usage();
    }
  }

  try {
    pkgcast::ManagementScope scope(server, ns, options);
    Printer printer(count);

    pkgcast::EventWatcher creations(scope, std::string(kCreationQuery));
    pkgcast::EventWatcher modifications(scope, std::string(kModificationQuery));
    for (pkgcast::EventWatcher* w : {&creations, &modifications}) {
      w->on_event_arrived([&printer](const pkgcast::Instance& e) { printer.print(e); });
      w->on_stopped([&printer](const pkgcast::Status& s) { printer.stopped(s); });
      w->on_resync([](const pkgcast::Error& gap) { std::cerr << "warning: events lost: " << gap.to_string() << "\n"; });
    }
    creations.start();
    modifications.start();
    std::cerr << "watching SMS_PackageStatusRootSummarizer" << std::endl;
    const bool ok = printer.wait(std::chrono::seconds(timeout));
    creations.stop();
    modifications.stop();
    return ok ? 0 : 1;
  } catch (const pkgcast::ManagementError& e) {
    std::cerr << "error: " << e.code_name() << ": " << e.message() << std::endl;
    return 1;
  }
}
