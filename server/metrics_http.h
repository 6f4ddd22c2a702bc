// The HTTP endpoint serving the Prometheus text format at /metrics, on libmicrohttpd.
//
// Why not prometheus-cpp's Exposer: its civetweb server fails to start inside a process that also
// loads LibTorch (mg_start returns no context after binding the port). libmicrohttpd's polling
// thread serves many connections at once with a timeout each, so one slow client cannot hold a
// scrape up (the hand-written endpoint it replaced served one connection at a time).
#pragma once

#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>

struct MHD_Daemon;

namespace allot {

class MetricsHttpServer {
 public:
  // bind_address "HOST:PORT" (port 0 picks a free one). Throws std::runtime_error naming the
  // address when it cannot listen. before_scrape, when set, runs before each scrape (on the
  // endpoint's thread), for gauges read from live state rather than set on events.
  MetricsHttpServer(const std::string& bind_address, std::shared_ptr<prometheus::Registry> registry,
                    std::function<void()> before_scrape = {});
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }
  // The body of GET /metrics.
  std::string Scrape() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::function<void()> before_scrape_;
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
};

}  // namespace allot
