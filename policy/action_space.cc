// Enumerates joint actions from the agent's decisions and resolves the configured safe default.
#include "policy/action_space.h"

#include <algorithm>
#include <bit>

#include "policy/decision_kind.h"

namespace allot {
namespace {

std::vector<uint32_t> FeasibleChoices(const DecisionConfig& d) {
  std::vector<uint32_t> out;
  const uint32_t n = static_cast<uint32_t>(d.options.size());
  if (!SelectsMany(d.kind)) {
    for (uint32_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  const int max_selected = d.max_selected == 0 ? static_cast<int>(n) : d.max_selected;
  for (uint32_t mask = 0; mask < (1u << n); ++mask) {
    const int k = std::popcount(mask);
    if (k >= d.min_selected && k <= max_selected) out.push_back(mask);
  }
  return out;
}

uint32_t SafeDefaultChoice(const DecisionConfig& d) {
  uint32_t choice = 0;
  for (const std::string& label : d.safe_default) {
    for (uint32_t i = 0; i < d.options.size(); ++i) {
      if (d.options[i].label != label) continue;
      choice = WithOption(d.kind, choice, i);
    }
  }
  return choice;
}

}  // namespace

ActionSpace::ActionSpace(const AgentConfig& agent) {
  size_ = 1;
  for (const DecisionConfig& d : agent.decisions) {
    digits_.push_back(FeasibleChoices(d));
    size_ *= digits_.back().size();
  }
  const size_t n = digits_.size();
  choices_.resize(size_ * n);
  for (size_t j = 0; j < size_; ++j) {
    size_t rest = j;
    for (size_t d = n; d-- > 0;) {
      choices_[j * n + d] = digits_[d][rest % digits_[d].size()];
      rest /= digits_[d].size();
    }
  }
  std::vector<uint32_t> safe;
  for (const DecisionConfig& d : agent.decisions) safe.push_back(SafeDefaultChoice(d));
  safe_default_ = IndexOf(safe);
  if (safe_default_ == size_) safe_default_ = 0;  // unreachable after Validate()
}

size_t ActionSpace::IndexOf(std::span<const uint32_t> choices) const {
  if (choices.size() != digits_.size()) return size_;
  size_t index = 0;
  for (size_t d = 0; d < digits_.size(); ++d) {
    const auto& digit = digits_[d];
    auto it = std::lower_bound(digit.begin(), digit.end(), choices[d]);
    if (it == digit.end() || *it != choices[d]) return size_;
    index = index * digit.size() + static_cast<size_t>(it - digit.begin());
  }
  return index;
}

std::string JointActionLabel(const AgentConfig& agent, const ActionSpace& space, size_t joint) {
  std::string out;
  for (size_t d = 0; d < space.num_decisions(); ++d) {
    const DecisionConfig& decision = agent.decisions[d];
    std::string part;
    ForEachSelected(
        decision.kind, space.Choice(joint, d), static_cast<uint32_t>(decision.options.size()),
        [&](uint32_t o) { part += (part.empty() ? "" : "+") + decision.options[o].label; });
    out += (out.empty() ? "" : " ") + decision.name + "=" + part;
  }
  return out;
}

}  // namespace allot
