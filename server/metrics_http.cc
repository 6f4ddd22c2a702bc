// One connection at a time: read the request line, answer, close. poll() with a short timeout
// lets the destructor stop the thread promptly.
#include "server/metrics_http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <prometheus/text_serializer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace allot {
namespace {

void WriteAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

std::string Response(const std::string& status, const std::string& type, const std::string& body) {
  return "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         body;
}

}  // namespace

MetricsHttpServer::MetricsHttpServer(const std::string& bind_address,
                                     std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)) {
  const size_t colon = bind_address.rfind(':');
  if (colon == std::string::npos)
    throw std::runtime_error("expected HOST:PORT, got '" + bind_address + "'");
  const std::string host = bind_address.substr(0, colon);
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
  listen_fd_ = socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, found->ai_protocol);
  const int yes = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  const bool ok = listen_fd_ >= 0 && bind(listen_fd_, found->ai_addr, found->ai_addrlen) == 0 &&
                  listen(listen_fd_, 64) == 0;
  freeaddrinfo(found);
  if (!ok) {
    const std::string why = std::strerror(errno);
    if (listen_fd_ >= 0) close(listen_fd_);
    throw std::runtime_error("cannot listen on " + bind_address + ": " + why);
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  thread_ = std::thread([this] { Serve(); });
}

MetricsHttpServer::~MetricsHttpServer() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
}

void MetricsHttpServer::Serve() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    Handle(client);
    close(client);
  }
}

void MetricsHttpServer::Handle(int client) {
  // The request line is all we need; a slow client gets one second.
  std::string request;
  char buf[2048];
  while (request.find("\r\n") == std::string::npos && request.size() < 8192) {
    pollfd p{client, POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0) return;
    const ssize_t n = recv(client, buf, sizeof(buf), 0);
    if (n <= 0) return;
    request.append(buf, static_cast<size_t>(n));
  }
  const std::string line = request.substr(0, request.find("\r\n"));
  if (line.rfind("GET /metrics ", 0) == 0 || line.rfind("GET /metrics?", 0) == 0) {
    const std::string body = prometheus::TextSerializer().Serialize(registry_->Collect());
    WriteAll(client, Response("200 OK", "text/plain; version=0.0.4; charset=utf-8", body));
  } else if (line.rfind("GET ", 0) == 0) {
    WriteAll(client, Response("404 Not Found", "text/plain", "only /metrics is served here\n"));
  } else {
    WriteAll(client, Response("405 Method Not Allowed", "text/plain", "GET only\n"));
  }
}

}  // namespace allot
