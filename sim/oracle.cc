// Oracle and static search over the hindsight tables.
#include "sim/oracle.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace allot::sim {

StageVector StageLambdas(const World& world, const std::vector<double>& module_lambda) {
  StageVector out{};
  for (int s = 0; s < kNumStages; ++s) {
    const size_t m = static_cast<size_t>(world.layout().stage_module(s));
    out[s] = m < module_lambda.size() ? module_lambda[m] : 0.0;
  }
  return out;
}

std::vector<double> ModuleCosts(const World& world, const StageVector& stage_cost) {
  std::vector<double> out(world.num_modules(), 0.0);
  for (int s = 0; s < kNumStages; ++s)
    out[static_cast<size_t>(world.layout().stage_module(s))] += stage_cost[s];
  return out;
}

OracleSolution SolveOracle(const World& world, const OptionTable& table,
                           const std::vector<double>& budget,
                           const std::vector<double>& warm_lambda, const BisectionOptions& options,
                           RequestRange range) {
  range.end = std::min(range.end, table.num_requests());
  const size_t n = range.end - std::min(range.begin, range.end);
  std::vector<double> start = warm_lambda;
  const bool cold = start.empty();
  if (cold) {
    for (const ModuleConfig& m : world.config().modules) start.push_back(m.initial_lambda);
  }
  // Warm start on every 8th request (budget scaled alike), then polish on all of them.
  constexpr size_t kStride = 8;
  if (cold && n >= 50 * kStride) {
    const CostFunction sampled = [&](const std::vector<double>& lambda) {
      std::vector<double> c =
          ModuleCosts(world, table.BestSampled(StageLambdas(world, lambda), kStride, range).cost);
      for (double& x : c)
        x *= static_cast<double>(n) / static_cast<double>((n + kStride - 1) / kStride);
      return c;
    };
    BisectionOptions rough = options;
    rough.tolerance = std::max(options.tolerance, 1e-2);
    start = CoordinateBisection(sampled, budget, start, rough);
  }
  const CostFunction cost = [&](const std::vector<double>& lambda) {
    return ModuleCosts(world, table.BestSampled(StageLambdas(world, lambda), 1, range).cost);
  };
  OracleSolution s;
  s.lambda = CoordinateBisection(cost, budget, start, options);
  s.totals = table.Best(StageLambdas(world, s.lambda), nullptr, nullptr, range);
  s.cost = ModuleCosts(world, s.totals.cost);
  return s;
}

size_t WindowCount(double duration_s, double window_s) {
  return std::max<size_t>(1, static_cast<size_t>(std::ceil(duration_s / window_s - 1e-9)));
}

WindowedOracle SolveWindowedOracle(const World& world, const OptionTable& table,
                                   std::span<const Request> requests, double window_s,
                                   double duration_s, double scale,
                                   const std::vector<double>& warm_lambda,
                                   const BisectionOptions& options) {
  WindowedOracle out;
  out.window.resize(requests.size());
  const size_t windows = WindowCount(duration_s, window_s);
  size_t begin = 0;
  for (size_t k = 0; k < windows; ++k) {
    const double start = window_s * static_cast<double>(k);
    const bool last = k + 1 == windows;
    size_t end = begin;
    while (end < requests.size() && (last || requests[end].sim_s < start + window_s)) {
      out.window[end] = static_cast<uint32_t>(k);
      ++end;
    }
    const double span = last ? duration_s - start : window_s;
    const OracleSolution s = SolveOracle(world, table, world.Budgets(span, scale), warm_lambda,
                                         options, RequestRange{begin, end});
    table.Best(StageLambdas(world, s.lambda), &out.chosen, &out.without_reuse,
               RequestRange{begin, end});
    out.lambda.push_back(s.lambda);
    begin = end;
  }
  return out;
}

StaticChoice BestStatic(const World& world, const OptionTable& table,
                        const std::vector<double>& budget) {
  StaticChoice best;
  double best_value = -std::numeric_limits<double>::infinity();
  double least_over = std::numeric_limits<double>::infinity();
  size_t best_combo = 0;
  bool any_fits = false;
  const auto& fixed = table.fixed_totals();
  for (size_t combo = 0; combo < fixed.size(); ++combo) {
    const std::vector<double> cost = ModuleCosts(world, fixed[combo].cost);
    double over = 0.0;
    for (size_t m = 0; m < cost.size() && m < budget.size(); ++m) {
      if (budget[m] > 0) over = std::max(over, cost[m] / budget[m] - 1.0);
    }
    const bool fits = over <= 0.0;
    if (fits && (!any_fits || fixed[combo].value > best_value)) {
      any_fits = true;
      best_value = fixed[combo].value;
      best_combo = combo;
    } else if (!any_fits && over < least_over) {
      least_over = over;
      best_combo = combo;
    }
  }
  const DecodedOption d = table.DecodeCombo(best_combo);
  best.joint = d.joint;
  best.totals = fixed.empty() ? OptionTotals() : fixed[best_combo];
  best.fits = any_fits;
  return best;
}

OraclePolicy::OraclePolicy(std::string name, const OptionTable& table, std::vector<uint32_t> chosen,
                           std::vector<uint32_t> without_reuse,
                           std::vector<std::vector<double>> lambda, std::vector<uint32_t> window)
    : name_(std::move(name)),
      table_(table),
      chosen_(std::move(chosen)),
      without_reuse_(std::move(without_reuse)),
      lambda_(std::move(lambda)),
      window_(std::move(window)) {}

AgentChoice OraclePolicy::Decide(const AgentView& view) {
  const size_t i = static_cast<size_t>(view.request->index);
  const DecodedOption d = table_.Decode(chosen_[i]);
  const DecodedOption plain = table_.Decode(without_reuse_[i]);
  AgentChoice c;
  const int stage = static_cast<int>(view.position);
  // A skipped stage's joint is meaningless; report what recomputing would have used.
  c.joint = stage < d.reuse ? plain.joint[stage] : d.joint[stage];
  c.cache_reuse = view.position == 0 ? d.reuse : 0;
  const std::vector<double>& lambda = lambda_[window_.empty() ? 0 : window_[i]];
  c.lambda = view.module < lambda.size() ? lambda[view.module] : 0.0;
  c.predicted_value = table_.value(chosen_[i]);
  return c;
}

std::optional<uint32_t> OraclePolicy::Counterfactual(const AgentView& view) {
  return table_.Decode(without_reuse_[static_cast<size_t>(view.request->index)])
      .joint[view.position];
}

}  // namespace allot::sim
