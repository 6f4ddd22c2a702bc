// The allot.v1.Allocator gRPC service on the callback API: validate, decide, answer, measure.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "allot/v1/allocator.grpc.pb.h"
#include "policy/allocation_engine.h"
#include "policy/clock.h"
#include "policy/telemetry_store.h"
#include "server/caller_rate_limiter.h"
#include "server/control_runner.h"
#include "server/metrics.h"

namespace allot {

// What one request reads: the policy and the metric handles resolved for it, swapped together.
struct ServingSnapshot {
  std::shared_ptr<const PolicySnapshot> policy;
  std::vector<AgentMetrics> agent_metrics;
};

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

  // Calls whose handler is running now (handlers answer inline, in microseconds).
  int calls_in_handlers() const { return in_handlers_.load(std::memory_order_acquire); }

 private:
  grpc::Status DoAllocate(grpc::CallbackServerContext* context, const v1::AllocateRequest& request,
                          v1::AllocateResponse* response);
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
