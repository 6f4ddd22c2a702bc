// Kind names; see decision_kind.h.
#include "policy/decision_kind.h"

namespace allot {

const char* DecisionKindName(DecisionKind kind) {
  switch (kind) {
    case DecisionKind::kLink:
      return "link";
    case DecisionKind::kSwitch:
      return "switch";
    case DecisionKind::kQueue:
      return "queue";
  }
  return "unknown";
}

std::optional<DecisionKind> ParseDecisionKind(std::string_view name) {
  for (DecisionKind kind : {DecisionKind::kLink, DecisionKind::kSwitch, DecisionKind::kQueue}) {
    if (name == DecisionKindName(kind)) return kind;
  }
  return std::nullopt;
}

}  // namespace allot
