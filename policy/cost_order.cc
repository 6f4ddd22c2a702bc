// Neighbours are found once per action space; Enforce is one pass in a topological order.
#include "policy/cost_order.h"

#include <algorithm>
#include <bit>
#include <numeric>

namespace allot {
namespace {

// The option index of the next shorter queue, or -1 for the shortest.
int ShorterQueue(const DecisionConfig& d, uint32_t option) {
  int best = -1;
  for (size_t o = 0; o < d.options.size(); ++o) {
    if (d.options[o].queue_length >= d.options[option].queue_length) continue;
    if (best < 0 || d.options[o].queue_length > d.options[static_cast<size_t>(best)].queue_length)
      best = static_cast<int>(o);
  }
  return best;
}

// How many cheaper steps lie below a choice: a topological level (neighbours are one below).
int Level(const DecisionConfig& d, uint32_t choice) {
  switch (d.kind) {
    case DecisionKind::kLink:
      return std::popcount(choice);
    case DecisionKind::kSwitch:
      return static_cast<int>(choice);
    case DecisionKind::kQueue: {
      int level = 0;
      for (const OptionConfig& o : d.options)
        level += o.queue_length < d.options[choice].queue_length;
      return level;
    }
  }
  return 0;
}

}  // namespace

CostOrder::CostOrder(const AgentConfig& agent, const ActionSpace& space) {
  const size_t n = space.size();
  std::vector<int> level(n, 0);
  offsets_.reserve(n + 1);
  offsets_.push_back(0);
  std::vector<uint32_t> choices;
  for (size_t j = 0; j < n; ++j) {
    const auto own = space.Choices(j);
    for (size_t d = 0; d < own.size(); ++d) {
      const DecisionConfig& decision = agent.decisions[d];
      level[j] += Level(decision, own[d]);
      std::vector<uint32_t> cheaper;
      switch (decision.kind) {
        case DecisionKind::kLink:
          for (uint32_t bits = own[d]; bits; bits &= bits - 1) {
            const uint32_t lowest = bits & (~bits + 1);
            cheaper.push_back(own[d] & ~lowest);  // the set without one of its channels
          }
          break;
        case DecisionKind::kSwitch:
          if (own[d] == 1) cheaper.push_back(0);
          break;
        case DecisionKind::kQueue:
          if (const int shorter = ShorterQueue(decision, own[d]); shorter >= 0)
            cheaper.push_back(static_cast<uint32_t>(shorter));
          break;
      }
      for (uint32_t c : cheaper) {
        choices.assign(own.begin(), own.end());
        choices[d] = c;
        const size_t k = space.IndexOf(choices);
        if (k < n) neighbours_.push_back(static_cast<uint32_t>(k));  // else infeasible
      }
    }
    offsets_.push_back(static_cast<uint32_t>(neighbours_.size()));
  }
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), 0u);
  std::stable_sort(order_.begin(), order_.end(),
                   [&](uint32_t a, uint32_t b) { return level[a] < level[b]; });
}

void CostOrder::Enforce(std::span<double> cost) const {
  for (uint32_t j : order_) {
    for (uint32_t k : CheaperNeighbours(j)) cost[j] = std::max(cost[j], cost[k]);
  }
}

}  // namespace allot
