// Conversions between the policy library's types and the allot.v1 wire messages.
#pragma once

#include "allot/v1/allocator.pb.h"
#include "policy/allocation_engine.h"
#include "policy/explanation.h"
#include "policy/telemetry_store.h"

namespace allot {

// Writes the chosen actions, prices and flags of an allocation into the response.
void FillAllocateResponse(const Allocation& allocation, v1::AllocateResponse* response);

// The explanation of a decision (policy/explanation.h) on the wire.
void FillExplanation(const DecisionExplanation& explanation, const AllotConfig& config,
                     v1::Explanation* out);

// The feature and action schema of every agent (so clients need not read the YAML).
void FillAgentSchemas(const PolicySnapshot& policy, v1::ControlState* state);

v1::ActionKind ToProto(DecisionKind kind);

}  // namespace allot
