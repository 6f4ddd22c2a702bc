// /metrics on libmicrohttpd's internal polling thread; see metrics_http.h.
#include "server/metrics_http.h"

#include <microhttpd.h>
#include <netdb.h>
#include <prometheus/text_serializer.h>

#include <cstring>
#include <stdexcept>

namespace allot {
namespace {

// A scrape that has not sent its request within this long is dropped.
constexpr unsigned kConnectionTimeoutS = 10;
// Bounds on open connections: Prometheus needs one, a few humans with curl a handful more.
constexpr unsigned kMaxConnections = 64;
constexpr unsigned kMaxConnectionsPerClient = 16;

MHD_Result Reply(MHD_Connection* connection, unsigned status, const char* type,
                 const std::string& body) {
  MHD_Response* response = MHD_create_response_from_buffer(
      body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (!response) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  const MHD_Result queued = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return queued;
}

MHD_Result Handle(void* self, MHD_Connection* connection, const char* url, const char* method,
                  const char*, const char*, size_t* upload_size, void**) {
  if (*upload_size != 0) {  // a body is never needed: drop it
    *upload_size = 0;
    return MHD_YES;
  }
  if (std::strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
      std::strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
    return Reply(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
  }
  if (std::strcmp(url, "/metrics") != 0) {
    return Reply(connection, MHD_HTTP_NOT_FOUND, "text/plain", "only /metrics is served here\n");
  }
  return Reply(connection, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
               static_cast<const MetricsHttpServer*>(self)->Scrape());
}

}  // namespace

MetricsHttpServer::MetricsHttpServer(const std::string& bind_address,
                                     std::shared_ptr<prometheus::Registry> registry,
                                     std::function<void()> before_scrape)
    : registry_(std::move(registry)), before_scrape_(std::move(before_scrape)) {
  const size_t colon = bind_address.rfind(':');
  if (colon == std::string::npos)
    throw std::runtime_error("expected HOST:PORT, got '" + bind_address + "'");
  std::string host = bind_address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string port = bind_address.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found) != 0 ||
      !found) {
    throw std::runtime_error("cannot resolve '" + bind_address + "'");
  }
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD;
  if (found->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  daemon_ = MHD_start_daemon(flags, 0, nullptr, nullptr, &Handle, this,           //
                             MHD_OPTION_SOCK_ADDR, found->ai_addr,                //
                             MHD_OPTION_CONNECTION_TIMEOUT, kConnectionTimeoutS,  //
                             MHD_OPTION_CONNECTION_LIMIT, kMaxConnections,        //
                             MHD_OPTION_PER_IP_CONNECTION_LIMIT, kMaxConnectionsPerClient,
                             MHD_OPTION_END);
  const int error = errno;
  freeaddrinfo(found);
  if (!daemon_) {
    throw std::runtime_error("cannot listen on " + bind_address + ": " + std::strerror(error));
  }
  const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
  port_ = info ? info->port : 0;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (daemon_) MHD_stop_daemon(daemon_);
}

std::string MetricsHttpServer::Scrape() const {
  if (before_scrape_) before_scrape_();
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace allot
