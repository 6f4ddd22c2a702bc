// Monotone costs over one agent's joint actions: a learned cost model may predict a longer queue
// (or one more channel, or a switch on) cheaper than the shorter one, which the priced argmax
// would then exploit. The truth never works that way, so served costs are raised to at least the
// cost of every joint action that differs in one decision by a cheaper option.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "policy/action_space.h"
#include "policy/config.h"

namespace allot {

class CostOrder {
 public:
  CostOrder(const AgentConfig& agent, const ActionSpace& space);

  // cost: one entry per joint action (joint-index order), or several such arrays back to back
  // (one per module), each enforced on its own. After the call, cost[j] >= cost[k] whenever k is
  // j with one decision's option replaced by a cheaper one: a queue shorter by one length, a
  // switch off instead of on, a channel set without one of its channels.
  void Enforce(std::span<double> cost) const;
  // The joint actions that are one cheaper option away from `joint`.
  std::span<const uint32_t> CheaperNeighbours(size_t joint) const {
    return {neighbours_.data() + offsets_[joint], offsets_[joint + 1] - offsets_[joint]};
  }

 private:
  std::vector<uint32_t> order_;       // every joint after all of its cheaper neighbours
  std::vector<uint32_t> offsets_;     // per joint into neighbours_, plus the end
  std::vector<uint32_t> neighbours_;  // flattened cheaper neighbours
};

}  // namespace allot
