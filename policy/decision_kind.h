// Decision kinds in one place: their names and how a decision's choice (one number per decision
// in a joint action, see action_space.h) encodes the options it selects. A LINK decision selects
// a set of options (a bit mask over its channels); a SWITCH (off, on) or QUEUE decision selects
// one option (its index).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "policy/named_enum.h"

namespace allot {

enum class DecisionKind { kLink, kSwitch, kQueue };

// "link", "switch", "queue": in configs, schemas, metrics and labels.
inline constexpr EnumNames<DecisionKind, 3> kDecisionKinds{{{DecisionKind::kLink, "link"},
                                                            {DecisionKind::kSwitch, "switch"},
                                                            {DecisionKind::kQueue, "queue"}}};
const char* DecisionKindName(DecisionKind kind);
std::optional<DecisionKind> ParseDecisionKind(std::string_view name);

// True when a choice selects a set of options rather than exactly one.
constexpr bool SelectsMany(DecisionKind kind) { return kind == DecisionKind::kLink; }

// The choice that selects `option` as well (a set kind) or instead (a one-of kind).
constexpr uint32_t WithOption(DecisionKind kind, uint32_t choice, uint32_t option) {
  return SelectsMany(kind) ? (choice | (1u << option)) : option;
}

// Calls f(option index) for every option `choice` selects, in option order; `options` is how
// many options the decision has.
template <typename F>
void ForEachSelected(DecisionKind kind, uint32_t choice, uint32_t options, F&& f) {
  if (!SelectsMany(kind)) {
    f(choice);
    return;
  }
  for (uint32_t i = 0; i < options; ++i) {
    if (choice & (1u << i)) f(i);
  }
}

}  // namespace allot
