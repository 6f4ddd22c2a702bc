// Checks of every incoming request; a failure is INVALID_ARGUMENT naming the offending field.
#pragma once

#include <grpcpp/support/status.h>

#include <string>
#include <vector>

#include "allot/v1/allocator.pb.h"
#include "policy/allocation_engine.h"
#include "policy/cache_reuse.h"
#include "policy/telemetry_store.h"
#include "server/server_config.h"

namespace allot {

struct ValidationResult {
  grpc::Status status;
  std::string field;  // the proto field at fault ("" when OK); a metric label
  bool ok() const { return status.ok(); }
};

// On success sets *agent to the agent's index and fills *caches from the request.
// `limits`: the server's size limits on lists and ids.
ValidationResult ValidateAllocateRequest(const v1::AllocateRequest& request,
                                         const PolicySnapshot& policy, const ServerConfig& limits,
                                         size_t* agent, std::vector<CachedStage>* caches);

// now_ms: the server's clock, to refuse reports from the future or older than the window.
ValidationResult ValidateLoadReport(const v1::LoadReport& report, const AllotConfig& config,
                                    const ServerConfig& limits, int64_t now_ms);

}  // namespace allot
