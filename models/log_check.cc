#include "models/log_check.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "policy/action_space.h"
#include "policy/decision_kind.h"

namespace allot::models {

namespace {

AgentLogCheck CheckAgent(const LoggedActions& logged, size_t agent_index,
                         const AgentConfig& agent) {
  const ActionSpace space(agent);
  AgentLogCheck out;
  out.agent = agent.name;
  out.decided = static_cast<int64_t>(logged.decided[agent_index]);
  out.explored = static_cast<int64_t>(logged.explored[agent_index]);
  out.propensity = static_cast<int64_t>(logged.propensity[agent_index]);
  out.randomised = static_cast<int64_t>(logged.randomised[agent_index]);
  for (size_t j = 0; j < space.size(); ++j) {
    out.joint_count.push_back(static_cast<int64_t>(logged.joint[agent_index][j]));
    out.joint_label.push_back(JointActionLabel(agent, space, j));
  }
  for (const DecisionConfig& d : agent.decisions) {
    DecisionCounts counts{d.name, d.kind, {}};
    for (const OptionConfig& o : d.options) counts.options.push_back({o.label, 0});
    out.decisions.push_back(std::move(counts));
  }
  // Options from the joint counts: every selected option of a joint action counts its requests.
  for (size_t j = 0; j < space.size(); ++j) {
    if (out.joint_count[j] == 0) {
      out.never_joint.push_back(j);
      continue;
    }
    for (size_t d = 0; d < space.num_decisions(); ++d) {
      DecisionCounts& counts = out.decisions[d];
      ForEachSelected(counts.kind, space.Choice(j, d), static_cast<uint32_t>(counts.options.size()),
                      [&](uint32_t o) { counts.options[o].count += out.joint_count[j]; });
    }
  }
  out.unexpected_gaps =
      !out.never_joint.empty() && out.explored >= 10 * static_cast<int64_t>(space.size());
  out.exploration_recorded = out.explored > 0 || out.propensity > 0;
  out.thin_exploration = out.randomised < 10 * static_cast<int64_t>(space.size());
  if (out.thin_exploration) {
    for (size_t j = 0; j < space.size(); ++j)
      if (out.joint_count[j] < kMinLoggedPerAction)
        out.unlogged.push_back(static_cast<uint32_t>(j));
    // Nothing logged at all (an agent never asked): no evidence either way, nothing excluded.
    if (out.unlogged.size() == space.size()) out.unlogged.clear();
  }
  for (size_t d = 0; d < out.decisions.size(); ++d) {
    for (size_t o = 0; o < out.decisions[d].options.size(); ++o) {
      if (out.decisions[d].options[o].count == 0) out.never_option.emplace_back(d, o);
    }
  }
  return out;
}

std::string Percent(int64_t part, int64_t whole) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%",
                whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0);
  return buf;
}

void FormatAgent(const AgentLogCheck& a, size_t top_joint, std::ostringstream& out) {
  out << "agent " << a.agent << ": asked in " << a.decided << " requests, "
      << Percent(a.explored, a.decided) << " explored, propensity logged for "
      << Percent(a.propensity, a.decided) << ", randomised " << Percent(a.randomised, a.decided)
      << "\n";
  const size_t n = a.joint_count.size();
  out << "  joint actions: " << n - a.never_joint.size() << " of " << n << " occur; most logged:\n";
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return a.joint_count[x] > a.joint_count[y]; });
  for (size_t k = 0; k < std::min(top_joint, n) && a.joint_count[order[k]] > 0; ++k) {
    const size_t j = order[k];
    out << "    " << j << "  " << a.joint_label[j] << "  " << Percent(a.joint_count[j], a.decided)
        << "\n";
  }
  for (const DecisionCounts& d : a.decisions) {
    out << "  " << d.name << " (" << DecisionKindName(d.kind) << "):";
    for (const OptionCount& o : d.options)
      out << "  " << o.label << " " << Percent(o.count, a.decided);
    out << "\n";
  }
  for (const auto& [d, o] : a.never_option) {
    out << "  NEVER LOGGED: " << a.decisions[d].name << "=" << a.decisions[d].options[o].label
        << " (check the joint-action encoding, or that the logging policy explores)\n";
  }
  if (!a.never_joint.empty()) {
    out << "  joint actions never logged (" << a.never_joint.size() << "):";
    const size_t shown = std::min<size_t>(a.never_joint.size(), 8);
    for (size_t k = 0; k < shown; ++k) out << " " << a.never_joint[k];
    if (shown < a.never_joint.size()) out << " ...";
    out << "; the models learn nothing about them but what their options share with others\n";
  }
  if (!a.unlogged.empty()) {
    out << "  THIN EXPLORATION: " << a.randomised << " randomised requests for " << n
        << " joint actions; the " << a.unlogged.size() << " logged fewer than "
        << kMinLoggedPerAction << " times will never be chosen by a bundle trained on this log "
        << "(log with exploration to learn them)\n";
    if (!a.exploration_recorded)
      out << "  (the log records no exploration, neither explored flags nor propensities, so none "
             "of its requests counts as randomised: record them to tell a random logging policy "
             "from a deterministic one)\n";
  }
  if (a.unexpected_gaps) {
    out << "  MISSING: " << a.never_joint.size() << " joint actions never occur although "
        << a.explored << " explored requests would log each ~"
        << a.explored / static_cast<int64_t>(n) << " times under uniform exploration (check "
        << "the joint-action encoding: mixed radix, last decision fastest)\n";
  }
}

}  // namespace

bool LogCheck::flagged() const {
  return std::any_of(agents.begin(), agents.end(), [](const AgentLogCheck& a) {
    return !a.never_option.empty() || a.unexpected_gaps;
  });
}

LoggedActions::LoggedActions(const AllotConfig& config)
    : decided(config.agents.size(), 0.0),
      explored(config.agents.size(), 0.0),
      propensity(config.agents.size(), 0.0),
      randomised(config.agents.size(), 0.0) {
  for (const AgentConfig& agent : config.agents) joint.emplace_back(ActionSpace(agent).size(), 0.0);
}

void LoggedActions::Add(const TrainingLog& log) {
  rows += static_cast<double>(log.rows);
  for (size_t a = 0; a < log.agents.size() && a < joint.size(); ++a) {
    const AgentColumns& columns = log.agents[a];
    for (size_t row = 0; row < log.rows; ++row) {
      if (!columns.decided[row]) continue;
      decided[a] += 1;
      explored[a] += columns.explored[row];
      propensity[a] += columns.propensity[row] > 0;
      // A stochastic logging policy that marks nothing as explored still randomises: an action
      // it gave less than even odds was a draw, not its choice.
      randomised[a] += columns.explored[row] != 0 ||
                       (columns.propensity[row] > 0 && columns.propensity[row] < 0.5f);
      joint[a][static_cast<size_t>(columns.joint[row])] += 1;
    }
  }
}

LogCheck CheckLogs(const LoggedActions& logged, const AllotConfig& config) {
  LogCheck out;
  out.rows = static_cast<int64_t>(logged.rows);
  for (size_t a = 0; a < config.agents.size(); ++a)
    out.agents.push_back(CheckAgent(logged, a, config.agents[a]));
  return out;
}

LogCheck CheckLogs(const TrainingLog& log, const AllotConfig& config) {
  LoggedActions logged(config);
  logged.Add(log);
  return CheckLogs(logged, config);
}

std::string FormatLogCheck(const LogCheck& check, size_t top_joint) {
  std::ostringstream out;
  out << check.rows << " logged requests\n";
  for (const AgentLogCheck& a : check.agents) FormatAgent(a, top_joint, out);
  out << (check.flagged()
              ? "check-logs: some actions never occur (see NEVER LOGGED and MISSING above)\n"
              : "check-logs: every option of every decision occurs\n");
  return out.str();
}

}  // namespace allot::models
