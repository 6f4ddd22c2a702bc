// A minimal HTTP endpoint serving the Prometheus text format at /metrics.
//
// Why not prometheus-cpp's Exposer: its civetweb server fails to start inside a process that also
// loads LibTorch (mg_start returns no context after binding the port), and Prometheus scrapes a
// replica a few times a minute, so a single-threaded endpoint is all that is needed.
#pragma once

#include <prometheus/registry.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

namespace allot {

class MetricsHttpServer {
 public:
  // bind_address "HOST:PORT" (port 0 picks a free one). Throws std::runtime_error naming the
  // address when it cannot listen.
  MetricsHttpServer(const std::string& bind_address,
                    std::shared_ptr<prometheus::Registry> registry);
  ~MetricsHttpServer();

  int port() const { return port_; }

 private:
  void Serve();
  void Handle(int client);

  std::shared_ptr<prometheus::Registry> registry_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace allot
