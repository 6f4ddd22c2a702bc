// See decision_rules.h.
#include "policy/decision_rules.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "policy/yaml_map.h"

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

// Options with a shorter queue than `option`'s.
int ShorterQueues(const DecisionConfig& d, uint32_t option) {
  int shorter = 0;
  for (const OptionConfig& o : d.options)
    shorter += o.queue_length < d.options[option].queue_length;
  return shorter;
}

}  // namespace

int CostLevel(const DecisionConfig& d, uint32_t choice) {
  switch (d.kind) {
    case DecisionKind::kLink:
      return std::popcount(choice);
    case DecisionKind::kSwitch:
      return static_cast<int>(choice);
    case DecisionKind::kQueue:
      return ShorterQueues(d, choice);
  }
  return 0;
}

void AppendCheaperChoices(const DecisionConfig& d, uint32_t choice, std::vector<uint32_t>& out) {
  switch (d.kind) {
    case DecisionKind::kLink:
      for (uint32_t bits = choice; bits; bits &= bits - 1) {
        const uint32_t lowest = bits & (~bits + 1);
        out.push_back(choice & ~lowest);  // the set without one of its channels
      }
      break;
    case DecisionKind::kSwitch:
      if (choice == 1) out.push_back(0);
      break;
    case DecisionKind::kQueue:
      if (const int shorter = ShorterQueue(d, choice); shorter >= 0)
        out.push_back(static_cast<uint32_t>(shorter));
      break;
  }
}

size_t ChoiceCodeWidth(const DecisionConfig& d) {
  switch (d.kind) {
    case DecisionKind::kLink:
      return d.options.size();
    case DecisionKind::kSwitch:
      return 1;
    case DecisionKind::kQueue:
      return d.options.size() > 1 ? d.options.size() - 1 : 1;
  }
  return 1;
}

void EncodeChoice(const DecisionConfig& d, uint32_t choice, std::span<float> code) {
  std::fill(code.begin(), code.end(), 0.0f);
  switch (d.kind) {
    case DecisionKind::kLink:
      for (size_t o = 0; o < code.size(); ++o) code[o] = (choice >> o) & 1u ? 1.0f : 0.0f;
      break;
    case DecisionKind::kSwitch:
      code[0] = static_cast<float>(choice);
      break;
    case DecisionKind::kQueue: {
      const size_t bits = std::min(code.size(), static_cast<size_t>(ShorterQueues(d, choice)));
      std::fill(code.begin(), code.begin() + static_cast<std::ptrdiff_t>(bits), 1.0f);
      break;
    }
  }
}

double ChoiceCount(const DecisionConfig& d) {
  return SelectsMany(d.kind) ? std::pow(2.0, static_cast<double>(d.options.size()))
                             : static_cast<double>(d.options.size());
}

void ValidateDecisionShape(const DecisionConfig& d, const std::string& path) {
  const int n = static_cast<int>(d.options.size());
  switch (d.kind) {
    case DecisionKind::kLink:
      if (n > 12) YamlMap::Fail(path + ".options", "at most 12 channels (subsets are enumerated)");
      if (d.min_selected < 0 || d.min_selected > n)
        YamlMap::Fail(path + ".min_selected", "out of range");
      if (d.max_selected < 0 || d.max_selected > n)
        YamlMap::Fail(path + ".max_selected", "out of range");
      if (d.max_selected != 0 && d.max_selected < d.min_selected)
        YamlMap::Fail(path + ".max_selected", "must be >= min_selected");
      break;
    case DecisionKind::kSwitch:
      if (n != 2 || d.options[0].label != "off" || d.options[1].label != "on") {
        YamlMap::Fail(path + ".options",
                      "a switch has exactly two options named off, on (in that order)");
      }
      break;
    case DecisionKind::kQueue:
      break;
  }
}

}  // namespace allot
