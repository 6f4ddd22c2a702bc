// What each decision kind means for its options, in one place beside decision_kind.h (names and
// how a choice selects options): the choices one step cheaper (the cost order served costs must
// respect), the learned models' encoding of a choice, and the shape a config must give the kind.
// A new kind is a value of DecisionKind and a case in each function here and in decision_kind.cc;
// -Wswitch (an error in CI builds) finds every case left out.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "policy/config.h"

namespace allot {

// How many cheaper steps lie below `choice`: a topological level (a cheaper step is one lower).
int CostLevel(const DecisionConfig& decision, uint32_t choice);

// The choices one step cheaper than `choice` (a link set without one of its channels; a switch
// off; the next shorter queue), appended to `out`.
void AppendCheaperChoices(const DecisionConfig& decision, uint32_t choice,
                          std::vector<uint32_t>& out);

// The models' input code of a choice: a bit per channel (link), the switch itself, or a
// thermometer with one bit per shorter queue length.
size_t ChoiceCodeWidth(const DecisionConfig& decision);
void EncodeChoice(const DecisionConfig& decision, uint32_t choice, std::span<float> code);

// How many choices the kind allows before per-request constraints (link: every subset).
double ChoiceCount(const DecisionConfig& decision);

// The rules of the kind's shape; throws ConfigError naming `path`'s key at fault.
void ValidateDecisionShape(const DecisionConfig& decision, const std::string& path);

}  // namespace allot
