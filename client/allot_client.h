// Client library for serving stages: build requests by feature name, call Allocate with a
// deadline, and get the safe default back whenever the service cannot answer in time.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "allot/v1/allocator.grpc.pb.h"

namespace allot {

struct ClientOptions {
  // Per-call deadline for Allocate: keep it well under the stage's own latency budget.
  std::chrono::microseconds allocate_timeout{std::chrono::milliseconds(10)};
  std::chrono::milliseconds control_timeout{std::chrono::milliseconds(1000)};
};

struct AllocationResult {
  v1::AllocateResponse response;  // the server's answer, or the local safe default
  grpc::Status status;            // status of the call (OK when the server answered)
  bool from_server = false;
};

class AllotClient;

// How to reach a server with server.tls: the CA that signed its certificate, this client's own
// certificate and key for mutual TLS, and the name to check the server's certificate against
// when the target address is not in it (empty: the target's host).
struct ClientTls {
  std::string ca_file;  // empty: plaintext
  std::string cert_file;
  std::string key_file;
  std::string server_name;
};

// A channel to `target` over plaintext or TLS. Throws std::runtime_error naming a file that
// cannot be read.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target, const ClientTls& tls,
                                           grpc::ChannelArguments args = {});

// Fills an AllocateRequest by feature name; unset features are 0.
class RequestBuilder {
 public:
  // Throws std::invalid_argument naming the feature when the agent has no such feature.
  RequestBuilder& Set(const std::string& feature, float value);
  RequestBuilder& RequestId(std::string id);
  RequestBuilder& UserId(std::string id);
  RequestBuilder& Cache(v1::Stage stage, double age_seconds, uint32_t size);
  RequestBuilder& Behavior(uint64_t item_id);
  const v1::AllocateRequest& request() const { return request_; }

 private:
  friend class AllotClient;
  RequestBuilder(std::string agent, const std::map<std::string, int>* feature_index, size_t width);
  v1::AllocateRequest request_;
  const std::map<std::string, int>* feature_index_;
};

class AllotClient {
 public:
  AllotClient(std::shared_ptr<grpc::Channel> channel, ClientOptions options = {});

  // Reads the feature/action schema from the server (GetControlState). Call once at start-up
  // and after the server's config changes; requests can be built only for agents it lists.
  grpc::Status LoadSchema();
  const v1::ControlState& schema() const { return schema_; }
  // Throws std::invalid_argument when the agent is not in the schema.
  RequestBuilder NewRequest(const std::string& agent) const;

  // Never fails: on any error or timeout the result holds the schema's safe default actions,
  // marked fallback, and the call's status.
  AllocationResult Allocate(const v1::AllocateRequest& request) const;
  // Asynchronous form for callers with their own event loop; `done` runs on a gRPC thread.
  void AllocateAsync(const v1::AllocateRequest& request,
                     std::function<void(AllocationResult)> done) const;

  grpc::Status ReportLoad(const v1::LoadReport& report) const;
  // Safe default for an agent from the schema (empty response when the agent is unknown).
  v1::AllocateResponse SafeDefault(const std::string& agent, const std::string& reason) const;
  v1::Allocator::Stub& stub() const { return *stub_; }

 private:
  std::unique_ptr<v1::Allocator::Stub> stub_;
  ClientOptions options_;
  v1::ControlState schema_;
  std::map<std::string, std::map<std::string, int>> feature_index_;  // agent -> feature -> position
};

}  // namespace allot
