// Neighbours are found once per action space; Enforce is one pass in a topological order.
#include "policy/cost_order.h"

#include <algorithm>
#include <numeric>

#include "policy/decision_rules.h"

namespace allot {
CostOrder::CostOrder(const AgentConfig& agent, const ActionSpace& space) {
  const size_t n = space.size();
  std::vector<int> level(n, 0);
  offsets_.reserve(n + 1);
  offsets_.push_back(0);
  std::vector<uint32_t> choices, cheaper;
  for (size_t j = 0; j < n; ++j) {
    const auto own = space.Choices(j);
    for (size_t d = 0; d < own.size(); ++d) {
      const DecisionConfig& decision = agent.decisions[d];
      level[j] += CostLevel(decision, own[d]);
      cheaper.clear();
      AppendCheaperChoices(decision, own[d], cheaper);
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

// The arrays are walked together, so their independent chains of maxima overlap; each entry's
// running maximum stays in a register rather than being stored after every neighbour.
void CostOrder::Enforce(std::span<double> cost) const {
  const size_t n = order_.size();
  if (n == 0) return;
  const size_t arrays = cost.size() / n;
  for (uint32_t j : order_) {
    const auto cheaper = CheaperNeighbours(j);
    for (size_t a = 0; a < arrays; ++a) {
      double* c = cost.data() + a * n;
      double highest = c[j];
      for (uint32_t k : cheaper) highest = std::max(highest, c[k]);
      c[j] = highest;
    }
  }
}

}  // namespace allot
