// The allot.v1.Allocator gRPC service on the callback API: validate, decide, answer, measure.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "allot/v1/allocator.grpc.pb.h"
#include "policy/allocation_engine.h"
#include "policy/arm_split.h"
#include "policy/clock.h"
#include "policy/telemetry_store.h"
#include "server/caller_rate_limiter.h"
#include "server/control_runner.h"
#include "server/metrics.h"
#include "server/server_config.h"

namespace allot {

// One experiment arm's own serving state: its bundle, and its own engine (prices, reservoir,
// cache budget) and control loop. Shared by the serving snapshots that route to it, so a request
// in flight keeps it alive across a reload that removes the arm.
struct ArmRuntime {
  std::string name;
  std::unique_ptr<AllocationEngine> engine;
  std::unique_ptr<ControlRunner> control;
  ~ArmRuntime() {
    if (control) control->Stop();
  }
};

// What a request reads about one arm.
struct ArmServing {
  std::string name;
  double weight = 0.0;
  std::shared_ptr<ArmRuntime> runtime;           // null for the main arm (the service's engine)
  std::shared_ptr<const PolicySnapshot> policy;  // null for the main arm (ServingSnapshot::policy)
  std::vector<ArmMetrics> metrics;               // per agent
};

// What one request reads: the policy and the metric handles resolved for it, swapped together.
struct ServingSnapshot {
  std::shared_ptr<const PolicySnapshot> policy;
  ServerConfig server;  // request limits, deadline floor, explain rate
  std::vector<AgentMetrics> agent_metrics;
  // The candidate deciding in shadow (null: none) on shadow_sample_rate of the calls.
  std::shared_ptr<const PolicySnapshot> shadow;
  double shadow_sample_rate = 0.0;
  std::vector<ShadowMetrics> shadow_metrics;
  // Experiment arms, main first; empty when none are configured.
  std::vector<ArmServing> arms;
  std::vector<double> arm_weights;         // of arms[1..], for ArmOf
  std::shared_ptr<ArmLoadShare> arm_load;  // predicted cost by arm and module
};

// A served decision that the shadow candidate makes too, once the answer is written. It owns
// copies of what it reads (only sampled calls pay for them): the handler's request and cache
// list are reused by the thread's next call before the shadow decides.
struct ShadowTask {
  std::shared_ptr<const ServingSnapshot> serving;  // null: no shadow decision for this call
  size_t agent = 0;
  size_t served_joint = 0;
  std::string request_id;
  std::vector<float> features;
  std::vector<CachedStage> caches;
};

// Whether a call is in the shadow sample: by a hash of its request_id, so that every stage (and
// every replica) shadows the same requests; calls without one by a per-thread generator.
bool InShadowSample(const std::string& request_id, double rate);

// The shadow's agreement counts for GetControlState.
void FillShadowState(const ServingSnapshot& serving, v1::ShadowState* out);

// The methods take raw bodies and parse them here, so that a body that is not the method's
// message gets INVALID_ARGUMENT saying so (gRPC's typed handlers answer UNIMPLEMENTED with no
// message).
using RawAllocatorService =
    v1::Allocator::WithRawCallbackMethod_Allocate<v1::Allocator::WithRawCallbackMethod_ReportLoad<
        v1::Allocator::WithRawCallbackMethod_GetControlState<v1::Allocator::Service>>>;

class AllocatorService final : public RawAllocatorService {
 public:
  AllocatorService(AllocationEngine& engine, TelemetryStore& telemetry, ServerMetrics& metrics,
                   const ControlRunner& control, const Clock& clock);

  void SetServing(std::shared_ptr<const ServingSnapshot> serving) {
    serving_.store(std::move(serving));
  }
  std::shared_ptr<const ServingSnapshot> serving() const { return serving_.load(); }

  grpc::ServerUnaryReactor* Allocate(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ReportLoad(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetControlState(grpc::CallbackServerContext* context,
                                            const grpc::ByteBuffer* request,
                                            grpc::ByteBuffer* response) override;

  // Fills the control state (also used by the process for its start-up log line).
  void FillControlState(v1::ControlState* state) const;
  void FillArmStates(const ServingSnapshot& serving, v1::ControlState* state) const;

  // Calls whose handler is running now (handlers answer inline, in microseconds).
  int calls_in_handlers() const { return in_handlers_.load(std::memory_order_acquire); }

 private:
  // shed: over server.max_in_flight, so the safe default answers without scoring.
  grpc::Status DoAllocate(grpc::CallbackServerContext* context,
                          const std::shared_ptr<const ServingSnapshot>& serving, bool shed,
                          const v1::AllocateRequest& request, v1::AllocateResponse* response,
                          ShadowTask* shadow);
  void DecideInShadow(const ShadowTask& task) const;
  grpc::Status DoReportLoad(const grpc::CallbackServerContext& context,
                            const v1::LoadReport& request);

  AllocationEngine& engine_;
  TelemetryStore& telemetry_;
  ServerMetrics& metrics_;
  const ControlRunner& control_;
  const Clock& clock_;
  CallerRateLimiter explain_limiter_{clock_};
  std::atomic<std::shared_ptr<const ServingSnapshot>> serving_;
  std::atomic<int> in_handlers_{0};
};

}  // namespace allot
