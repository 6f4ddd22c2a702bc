// An in-process AllotServer on 127.0.0.1 with free ports and its config in a temp file.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "allot/v1/allocator.grpc.pb.h"
#include "server/allot_server.h"

namespace allot::testing {

// Replaces the first `from` in `yaml` by `to` (fails the test if `from` is absent).
void ReplaceOnce(std::string& yaml, const std::string& from, const std::string& to);
// The embedded default config with `from` replaced by `to` (fails the test if `from` is absent).
std::string DefaultConfigWith(const std::string& from, const std::string& to);
// Hermetic: a config that still names the working directory's var/models gets `dir`/models
// instead, so a bundle trained in the checkout cannot change what a test sees.
std::string WithOwnModelDir(std::string yaml, const std::string& dir);
// config/allot-continuous.yaml from the source tree (fails the test if it cannot be read).
std::string ContinuousConfigYaml();
// Checks that a rank queue length served on that config lies on its range's grid (50 to 400 in
// steps of 25).
void ExpectOnContinuousRankGrid(uint32_t length);

class TestServer {
 public:
  // `clock` (the system clock when null) must outlive the server.
  explicit TestServer(const std::string& config_yaml = EmbeddedDefaultConfigYaml(),
                      const Clock* clock = nullptr);
  ~TestServer();

  AllotServer& server() { return *server_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  std::shared_ptr<grpc::Channel> channel() const;
  std::unique_ptr<v1::Allocator::Stub> stub() const { return v1::Allocator::NewStub(channel()); }
  const std::string& config_path() const { return config_path_; }
  void WriteConfig(const std::string& yaml) const;
  // GET /metrics from the exposer.
  std::string ScrapeMetrics() const;

 private:
  std::string dir_;
  std::string config_path_;
  std::unique_ptr<AllotServer> server_;
};

// Sends `n` valid Allocate calls for `agent` (8 features, values 0, 0.01, ...), so that the
// engine's reservoir holds scored requests for the control loop; returns how many succeeded.
int AllocateMany(v1::Allocator::Stub& stub, const std::string& agent, int n);

// One ReportLoad of `module` at `cpu` and 1000 QPS, stamped now + offset_ms; true when accepted.
bool ReportLoad(v1::Allocator::Stub& stub, const std::string& module, double cpu,
                int64_t offset_ms = 0);

// The server's control state (fails the test when the call fails).
v1::ControlState GetState(v1::Allocator::Stub& stub);

// A valid request for the agent with `width` features, all set to `value`.
v1::AllocateRequest MakeRequest(const std::string& agent, int width, float value = 0.3f);

// One Allocate call with a deadline `timeout` from now.
grpc::Status Call(v1::Allocator::Stub& stub, const v1::AllocateRequest& request,
                  v1::AllocateResponse* response,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

// Checks that `response` is the default config's recall safe default (channels i2i and hot,
// elastic recall off), marked as a fallback for `reason`.
void ExpectRecallSafeDefault(const v1::AllocateResponse& response, const std::string& reason);

}  // namespace allot::testing
