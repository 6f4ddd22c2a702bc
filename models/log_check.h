// What a training log holds per agent, before any training: how often each joint action and each
// option was logged, and which never were. A wrong joint-action encoding (a raw channel bitmask, a
// queue length where its index belongs) is still in range and trains without complaint; it shows
// up here as options that never occur and a lopsided distribution.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/training_log.h"
#include "policy/config.h"

namespace allot::models {

struct OptionCount {
  std::string label;
  int64_t count = 0;  // requests whose logged action selected this option
};

struct DecisionCounts {
  std::string name;
  DecisionKind kind = DecisionKind::kQueue;
  std::vector<OptionCount> options;  // config order
};

struct AgentLogCheck {
  std::string agent;
  int64_t decided = 0;               // requests the agent was asked about
  int64_t explored = 0;              // ... of which the logging policy explored
  int64_t propensity = 0;            // ... of which carry a propensity
  int64_t randomised = 0;            // ... explored, or logged with a propensity below 0.5
  std::vector<int64_t> joint_count;  // per joint action
  std::vector<std::string> joint_label;
  std::vector<DecisionCounts> decisions;
  // Indices into joint_count that never occur, and options (decision, option) never selected.
  std::vector<size_t> never_joint;
  std::vector<std::pair<size_t, size_t>> never_option;
  // Joint actions are missing although the log explored enough that uniform exploration would
  // have logged each about ten times or more.
  bool unexpected_gaps = false;
  // Some of the agent's requests carry an explored flag or a propensity. A log with neither may
  // come from a random policy as well as from a deterministic one, and counts as not randomised.
  bool exploration_recorded = false;
  // The logging policy hardly randomised (fewer randomised requests than ten per joint action),
  // so what the log holds of each joint action is what that policy chose on purpose. Those
  // logged fewer than kMinLoggedPerAction times are `unlogged`: a model knows nothing of them
  // but an extrapolation from combinations chosen for other reasons, and a bundle trained on the
  // log never chooses them. Empty when the log explored enough to generalise from.
  bool thin_exploration = false;
  std::vector<uint32_t> unlogged;
};

inline constexpr int64_t kMinLoggedPerAction = 10;

struct LogCheck {
  int64_t rows = 0;
  std::vector<AgentLogCheck> agents;  // config order
  // True when some option of some decision never occurs, or joint actions are missing from a log
  // that explored them enough: almost always a wrong encoding (or options the logging policy
  // could not choose).
  bool flagged() const;
};

// What CheckLogs counts, per agent over the requests it was asked about; summed chunk by chunk
// (and rank by rank) for a log that is never in memory whole.
struct LoggedActions {
  explicit LoggedActions(const AllotConfig& config);
  void Add(const TrainingLog& log);
  std::vector<std::vector<double>> joint;  // per agent, per joint action
  // Per agent (propensity: > 0 logged; randomised: as AgentLogCheck's).
  std::vector<double> decided, explored, propensity, randomised;
  double rows = 0;
};

LogCheck CheckLogs(const LoggedActions& logged, const AllotConfig& config);
LogCheck CheckLogs(const TrainingLog& log, const AllotConfig& config);

// Readable report: per agent the joint actions by frequency, every decision's options with their
// shares, and what never occurs.
std::string FormatLogCheck(const LogCheck& check, size_t top_joint = 5);

}  // namespace allot::models
