// Test fixture plumbing: temp config files, port-0 servers and a tiny HTTP client for /metrics.
#include "tests/integration/test_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace allot::testing {

void ReplaceOnce(std::string& yaml, const std::string& from, const std::string& to) {
  const size_t at = yaml.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) yaml.replace(at, from.size(), to);
}

std::string DefaultConfigWith(const std::string& from, const std::string& to) {
  std::string yaml = EmbeddedDefaultConfigYaml();
  ReplaceOnce(yaml, from, to);
  return yaml;
}

std::string WithOwnModelDir(std::string yaml, const std::string& dir) {
  const std::string shared = "  dir: var/models";
  if (const size_t at = yaml.find(shared); at != std::string::npos)
    yaml.replace(at, shared.size(), "  dir: " + dir + "/models");
  return yaml;
}

std::string ContinuousConfigYaml() {
  std::ifstream file(std::string(ALLOT_SOURCE_DIR) + "/config/allot-continuous.yaml");
  const std::string yaml((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  EXPECT_FALSE(yaml.empty()) << "config/allot-continuous.yaml";
  return yaml;
}

void ExpectOnContinuousRankGrid(uint32_t length) {
  EXPECT_GE(length, 50u);
  EXPECT_LE(length, 400u);
  EXPECT_EQ((length - 50) % 25, 0u) << length;
}

TestServer::TestServer(const std::string& config_yaml, const Clock* clock) {
  char tmpl[] = "/tmp/allot-test-XXXXXX";
  dir_ = mkdtemp(tmpl);
  config_path_ = dir_ + "/allot.yaml";
  WriteConfig(config_yaml);
  ServerOptions options;
  options.config_path = config_path_;
  options.listen = "127.0.0.1:0";
  options.metrics_listen = "127.0.0.1:0";
  if (clock) options.clock = clock;
  try {
    server_ = AllotServer::Start(options);
  } catch (...) {
    std::filesystem::remove_all(dir_);  // the destructor does not run for a failed start
    throw;
  }
}

TestServer::~TestServer() {
  server_->Shutdown();
  server_.reset();
  std::filesystem::remove_all(dir_);
}

std::shared_ptr<grpc::Channel> TestServer::channel() const {
  return grpc::CreateChannel(target(), grpc::InsecureChannelCredentials());
}

void TestServer::WriteConfig(const std::string& config_yaml) const {
  const std::string yaml = WithOwnModelDir(config_yaml, dir_);
  // Write then rename, as a config-management agent would, so the watcher never sees half a file.
  const std::string tmp = config_path_ + ".tmp";
  std::ofstream(tmp) << yaml;
  std::filesystem::rename(tmp, config_path_);
}

std::string TestServer::ScrapeMetrics() const {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->metrics_port()));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  // A scrape the endpoint does not answer within 5 s comes back empty (Prometheus's default
  // scrape timeout is 10 s).
  const timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (write(fd, request.data(), request.size()) < 0) {
    close(fd);
    return "";
  }
  std::string response;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;)
    response.append(buf, static_cast<size_t>(n));
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

v1::ControlState GetState(v1::Allocator::Stub& stub) {
  grpc::ClientContext context;
  v1::ControlState state;
  EXPECT_TRUE(stub.GetControlState(&context, v1::GetControlStateRequest(), &state).ok());
  return state;
}

bool ReportLoad(v1::Allocator::Stub& stub, const std::string& module, double cpu,
                int64_t offset_ms) {
  v1::LoadReport report;
  report.set_module(module);
  report.set_cpu_utilization(cpu);
  report.set_qps(1000);
  report.set_timestamp_ms(SystemClock::Instance().NowMs() + offset_ms);
  grpc::ClientContext context;
  v1::ReportLoadResponse ignored;
  return stub.ReportLoad(&context, report, &ignored).ok();
}

int AllocateMany(v1::Allocator::Stub& stub, const std::string& agent, int n) {
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    grpc::ClientContext context;
    v1::AllocateResponse response;
    ok += stub.Allocate(&context, MakeRequest(agent, 8, 0.01f * i), &response).ok();
  }
  return ok;
}

v1::AllocateRequest MakeRequest(const std::string& agent, int width, float value) {
  v1::AllocateRequest r;
  r.set_request_id("test-" + agent);
  r.set_agent(agent);
  for (int i = 0; i < width; ++i) r.add_features(value);
  return r;
}

grpc::Status Call(v1::Allocator::Stub& stub, const v1::AllocateRequest& request,
                  v1::AllocateResponse* response, std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  return stub.Allocate(&context, request, response);
}

void ExpectRecallSafeDefault(const v1::AllocateResponse& response, const std::string& reason) {
  EXPECT_TRUE(response.fallback());
  EXPECT_EQ(response.fallback_reason(), reason);
  ASSERT_EQ(response.decisions_size(), 2);
  EXPECT_EQ(std::vector<std::string>(response.decisions(0).selected().begin(),
                                     response.decisions(0).selected().end()),
            (std::vector<std::string>{"i2i", "hot"}));
  EXPECT_FALSE(response.decisions(1).switch_on());
}

}  // namespace allot::testing
