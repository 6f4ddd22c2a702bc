// Kind names; see decision_kind.h.
#include "policy/decision_kind.h"

namespace allot {

const char* DecisionKindName(DecisionKind kind) {
  return NameOf(kDecisionKinds, kind).data();  // the table's literals are NUL-terminated
}

std::optional<DecisionKind> ParseDecisionKind(std::string_view name) {
  return ParseName(kDecisionKinds, name);
}

}  // namespace allot
