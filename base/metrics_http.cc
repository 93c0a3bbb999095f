#include "base/metrics_http.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include "httplib.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace mxkey {
namespace {

constexpr size_t kWorkers = 2;
constexpr size_t kMaxQueued = 16;

// httplib's own pool queues every accepted connection without a limit;
// this one makes the accept loop wait instead.
class BoundedTaskQueue : public httplib::TaskQueue {
 public:
  BoundedTaskQueue() {
    for (size_t i = 0; i < kWorkers; ++i) {
      workers_.emplace_back([this] { Work(); });
    }
  }
  ~BoundedTaskQueue() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mu_);
    space_.wait(lock, [&] { return stopping_ || jobs_.size() < kMaxQueued; });
    if (stopping_) return;  // the connection is closed by httplib's stop()
    jobs_.push_back(std::move(fn));
    ready_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    ready_.notify_all();
    space_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        ready_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopping, and nothing left
        job = std::move(jobs_.front());
        jobs_.pop_front();
        space_.notify_one();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable ready_, space_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& listen, const MetricsRegistry* registry) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics-listen expects HOST:PORT, got \"", listen, "\""));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->server_ = std::make_unique<httplib::Server>();
  httplib::Server& server = *s->server_;
  server.new_task_queue = [] { return new BoundedTaskQueue(); };
  server.set_read_timeout(5, 0);
  server.set_write_timeout(5, 0);
  server.set_keep_alive_max_count(10);
  server.set_payload_max_length(8192);
  server.Get("/metrics", [registry](const httplib::Request&,
                                    httplib::Response& response) {
    response.set_content(registry->Render(),
                         "text/plain; version=0.0.4; charset=utf-8");
  });
  if (port == 0) {
    s->port_ = server.bind_to_any_port(host);
  } else if (server.bind_to_port(host, port)) {
    s->port_ = port;
  }
  if (s->port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for metrics on ", listen));
  }
  s->thread_ = std::thread([&server] { server.listen_after_bind(); });
  return s;
}

MetricsServer::~MetricsServer() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace mxkey
