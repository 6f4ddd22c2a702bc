// The hindsight optimum (bisection on the true values of every joint option of every request) and
// the best static allocation, both over an OptionTable; OraclePolicy replays the optimum's choices.
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "sim/bisection.h"
#include "sim/option_table.h"
#include "sim/sim_policy.h"
#include "sim/world.h"

namespace allot::sim {

struct OracleSolution {
  std::vector<double> lambda;  // per config module
  OptionTotals totals;
  std::vector<double> cost;  // per config module
};

// Per request argmax of true revenue - sum_m lambda_m cost_m over all agents jointly; lambdas by
// iterated coordinate bisection to meet budget[m] (per config module). By Lagrangian sufficiency
// the result is the exact optimum for the compute it uses.
// `range` restricts the solve to those requests.
OracleSolution SolveOracle(const World& world, const OptionTable& table,
                           const std::vector<double>& budget,
                           const std::vector<double>& warm_lambda = {},
                           const BisectionOptions& options = {}, RequestRange range = {});

// The hindsight optimum when every window of `window_s` simulated seconds must keep within its
// own budget (each module at its CPU target, window by window, rather than over the whole day):
// the best a controller that holds its target can reach. The daily optimum shifts compute from
// troughs into peaks, which the online world punishes with degradation and timeouts.
// Windows of `window_s` covering `duration_s`; the last one ends with the stream (a request at
// exactly duration_s belongs to it), so the windows' budgets add up to the whole stream's.
size_t WindowCount(double duration_s, double window_s);

struct WindowedOracle {
  std::vector<std::vector<double>> lambda;      // per window, per config module
  std::vector<uint32_t> window;                 // per request
  std::vector<uint32_t> chosen, without_reuse;  // per request, as OptionTable::Best gives them
};
// `requests` are the table's, in time order.
WindowedOracle SolveWindowedOracle(const World& world, const OptionTable& table,
                                   std::span<const Request> requests, double window_s,
                                   double duration_s, double scale,
                                   const std::vector<double>& warm_lambda = {},
                                   const BisectionOptions& options = {});

// Per-stage view of per-module vectors and back.
StageVector StageLambdas(const World& world, const std::vector<double>& module_lambda);
std::vector<double> ModuleCosts(const World& world, const StageVector& stage_cost);

struct StaticChoice {
  std::array<uint32_t, kNumStages> joint{};  // by stage
  OptionTotals totals;
  bool fits = true;  // false: nothing fits; this is the one that overshoots least
};
StaticChoice BestStatic(const World& world, const OptionTable& table,
                        const std::vector<double>& budget);

// Replays chosen options (indices into the table, one per request by Request::index), reporting
// the lambdas of each request's window (none: one window).
class OraclePolicy final : public SimPolicy {
 public:
  OraclePolicy(std::string name, const OptionTable& table, std::vector<uint32_t> chosen,
               std::vector<uint32_t> without_reuse, std::vector<std::vector<double>> lambda,
               std::vector<uint32_t> window = {});
  const std::string& name() const override { return name_; }
  AgentChoice Decide(const AgentView& view) override;
  std::optional<uint32_t> Counterfactual(const AgentView& view) override;

 private:
  std::string name_;
  const OptionTable& table_;
  std::vector<uint32_t> chosen_, without_reuse_;
  std::vector<std::vector<double>> lambda_;  // per window
  std::vector<uint32_t> window_;
};

}  // namespace allot::sim
