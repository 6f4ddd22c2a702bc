// The joint action space of one agent: every combination of its decisions' options, enumerated
// once.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "policy/config.h"

namespace allot {

// Joint action j assigns each decision d a choice:
//   LINK:   a bitmask of selected channels (bit i = options[i]); only subsets that satisfy
//           min_selected/max_selected are enumerated, in increasing mask order;
//   SWITCH: 0 = off, 1 = on;
//   QUEUE:  the option index.
// Joint indices are mixed-radix with the last decision varying fastest. Training logs store joint
// indices, so this order is part of the model-bundle contract.
class ActionSpace {
 public:
  explicit ActionSpace(const AgentConfig& agent);

  size_t size() const { return size_; }
  size_t num_decisions() const { return digits_.size(); }
  // Choice of decision d in joint action j.
  uint32_t Choice(size_t joint, size_t decision) const {
    return choices_[joint * digits_.size() + decision];
  }
  std::span<const uint32_t> Choices(size_t joint) const {
    return {choices_.data() + joint * digits_.size(), digits_.size()};
  }
  // Joint index of the given per-decision choices; returns size() when not in the space.
  size_t IndexOf(std::span<const uint32_t> choices) const;
  size_t safe_default() const { return safe_default_; }
  // Number of feasible choices of decision d (subsets for LINK).
  size_t NumChoices(size_t decision) const { return digits_[decision].size(); }
  uint32_t ChoiceValue(size_t decision, size_t digit) const { return digits_[decision][digit]; }

 private:
  std::vector<std::vector<uint32_t>> digits_;  // feasible choice values per decision
  std::vector<uint32_t> choices_;              // size_ x num_decisions, row-major
  size_t size_ = 0;
  size_t safe_default_ = 0;
};

// A joint action as people read it: "channels=hot+personal prerank_queue=400".
std::string JointActionLabel(const AgentConfig& agent, const ActionSpace& space, size_t joint);

}  // namespace allot
