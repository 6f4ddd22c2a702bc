// The estimators are textbook (Horvitz-Thompson IPS, self-normalised IPS with its delta-method
// variance, step-wise doubly robust); the replay is the server's own decision path.
#include "models/offpolicy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <limits>
#include <sstream>
#include <utility>

#include "policy/allocation_engine.h"

namespace allot::models {
namespace {

constexpr double kZ95 = 1.959963984540054;

Interval MeanInterval(std::span<const double> terms) {
  const double n = static_cast<double>(terms.size());
  double sum = 0.0;
  for (double x : terms) sum += x;
  const double mean = sum / n;
  double squares = 0.0;
  for (double x : terms) squares += (x - mean) * (x - mean);
  const double half = terms.size() > 1 ? kZ95 * std::sqrt(squares / (n - 1) / n) : 0.0;
  return {mean, mean - half, mean + half};
}

Interval SelfNormalised(std::span<const double> weight, std::span<const double> outcome) {
  double weights = 0.0, weighted = 0.0;
  for (size_t i = 0; i < weight.size(); ++i) {
    weights += weight[i];
    weighted += weight[i] * outcome[i];
  }
  if (weights <= 0.0) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    return {nan, nan, nan};
  }
  const double estimate = weighted / weights;
  double variance = 0.0;  // delta method: sum w_i^2 (y_i - estimate)^2 / (sum w)^2
  for (size_t i = 0; i < weight.size(); ++i) {
    const double d = weight[i] * (outcome[i] - estimate);
    variance += d * d;
  }
  const double half = kZ95 * std::sqrt(variance) / weights;
  return {estimate, estimate - half, estimate + half};
}

// One outcome's per-request quantities, filled request by request.
struct OutcomeColumns {
  std::vector<double> outcome, dr;
};

// The candidate's predictions for one step: qhat for the logged action, vhat for its own.
struct StepPredictions {
  double revenue_logged = 0.0, revenue_chosen = 0.0;
  double cost_logged = 0.0, cost_chosen = 0.0;      // core-ms from this step to the chain's end
  double priced_logged = 0.0, priced_chosen = 0.0;  // the same priced at the logged lambdas
};

// One decided step of a logged request as the replay saw it.
struct ReplayedStep {
  double rho = 0.0;  // 1[candidate == logged] / propensity
  double cost = 0.0;
  double priced_cost = 0.0;
  StepPredictions predicted;
};

// Step-wise doubly robust value of one request: V_t = vhat_t + rho_t (r_t + V_{t+1} - qhat_t).
// `reward_at` gives step t's reward; `logged_q` and `chosen_v` the predictions.
template <typename Reward, typename LoggedQ, typename ChosenV>
double DoublyRobust(const std::vector<ReplayedStep>& steps, Reward reward_at, LoggedQ logged_q,
                    ChosenV chosen_v) {
  double next = 0.0;
  for (size_t k = steps.size(); k-- > 0;) {
    const ReplayedStep& s = steps[k];
    next = chosen_v(s) + s.rho * (reward_at(k) + next - logged_q(s));
  }
  return next;
}

std::vector<CachedStage> LoggedCaches(const TrainingLog& log, size_t row) {
  std::vector<CachedStage> caches;
  for (int stage = 0; stage < kCacheStages; ++stage) {
    const size_t at = row * kCacheStages + static_cast<size_t>(stage);
    if (log.cache_age[at] < 0) continue;
    caches.push_back({stage + 1, true, log.cache_age[at],
                      static_cast<uint32_t>(std::lround(log.cache_size[at]))});
  }
  return caches;
}

// The prices of every module over the log's time, from the lambda each decided step logged. A
// request's earlier agents priced the later modules too (cross-module costs, cache reuse), but a
// step logs only its own module's price, and a reuse skips later agents altogether: their prices
// are taken from the nearest logged request in time.
class ModulePriceHistory {
 public:
  ModulePriceHistory(const TrainingLog& log, const AllotConfig& config) {
    by_module_.resize(config.modules.size());
    for (size_t a = 0; a < config.agents.size(); ++a) {
      const int module = config.ModuleIndex(config.agents[a].module);
      if (module < 0) continue;
      auto& series = by_module_[static_cast<size_t>(module)];
      for (size_t row = 0; row < log.rows; ++row) {
        if (log.agents[a].decided[row])
          series.emplace_back(log.timestamp_ms[row], log.agents[a].lambda[row]);
      }
    }
    for (auto& series : by_module_) std::sort(series.begin(), series.end());
  }

  // The price of `module` closest in time to `timestamp_ms`; `fallback` when none was logged.
  double At(size_t module, int64_t timestamp_ms, double fallback) const {
    const auto& series = by_module_[module];
    if (series.empty()) return fallback;
    auto after = std::lower_bound(series.begin(), series.end(),
                                  std::pair<int64_t, double>(timestamp_ms, -1.0));
    if (after == series.end()) return series.back().second;
    if (after == series.begin()) return after->second;
    const auto before = std::prev(after);
    return timestamp_ms - before->first <= after->first - timestamp_ms ? before->second
                                                                       : after->second;
  }

 private:
  std::vector<std::vector<std::pair<int64_t, double>>> by_module_;
};

// The lambda table a logged request was decided under: each module at the price its agent's step
// logged, the others from the price history.
std::shared_ptr<const LambdaTable> LoggedPrices(const TrainingLog& log, size_t row,
                                                const AllotConfig& config,
                                                const ModulePriceHistory& history,
                                                std::vector<double>* by_module) {
  by_module->clear();
  for (size_t m = 0; m < config.modules.size(); ++m)
    by_module->push_back(history.At(m, log.timestamp_ms[row], config.modules[m].initial_lambda));
  for (size_t a = 0; a < config.agents.size(); ++a) {
    if (!log.agents[a].decided[row]) continue;
    const int module = config.ModuleIndex(config.agents[a].module);
    if (module >= 0) (*by_module)[static_cast<size_t>(module)] = log.agents[a].lambda[row];
  }
  auto table = std::make_shared<LambdaTable>();
  table->layout = ModuleLayout(config);
  for (size_t m = 0; m < config.modules.size(); ++m)
    table->modules.push_back({config.modules[m].name, (*by_module)[m], 0.0});
  return table;
}

StepPredictions Predict(const AgentScores& scores, size_t logged, size_t chosen, double own_lambda,
                        const std::vector<double>& lambda_by_module) {
  const size_t n = scores.value.size();
  const auto at = [&](const std::vector<double>& v, size_t j) { return j < v.size() ? v[j] : 0.0; };
  const auto total_cost = [&](size_t j, bool priced) {
    double c = at(scores.cost, j) * (priced ? own_lambda : 1.0);
    for (size_t k = 0; k < scores.cross_module.size(); ++k) {
      const size_t module = scores.cross_module[k];
      const double price = module < lambda_by_module.size() ? lambda_by_module[module] : 0.0;
      c += at(scores.cross_cost, k * n + j) * (priced ? price : 1.0);
    }
    return c;
  };
  StepPredictions p;
  p.revenue_logged = at(scores.value, logged);
  p.revenue_chosen = at(scores.value, chosen);
  p.cost_logged = total_cost(logged, false);
  p.cost_chosen = total_cost(chosen, false);
  p.priced_logged = total_cost(logged, true);
  p.priced_chosen = total_cost(chosen, true);
  return p;
}

}  // namespace

OutcomeEstimates EstimateOutcome(std::span<const double> weight, std::span<const double> outcome,
                                 std::span<const double> dr) {
  OutcomeEstimates e;
  std::vector<double> weighted(weight.size());
  double logged = 0.0;
  for (size_t i = 0; i < weight.size(); ++i) {
    weighted[i] = weight[i] * outcome[i];
    logged += outcome[i];
  }
  e.logged = logged / static_cast<double>(outcome.size());
  e.ips = MeanInterval(weighted);
  e.snips = SelfNormalised(weight, outcome);
  e.dr = MeanInterval(dr);
  return e;
}

double EffectiveSampleSize(std::span<const double> weight) {
  double sum = 0.0, squares = 0.0;
  for (double w : weight) {
    sum += w;
    squares += w * w;
  }
  return squares > 0.0 ? sum * sum / squares : 0.0;
}

OffPolicyReport EvaluateOffPolicy(const TrainingLog& log, std::span<const int64_t> rows,
                                  const AllotConfig& config,
                                  std::shared_ptr<const ActionScorer> scorer) {
  OffPolicyReport report;
  if (rows.empty()) {
    report.unusable = "no logged requests to evaluate on";
    return report;
  }
  auto shared_config = std::make_shared<const AllotConfig>(config);
  const auto snapshot = MakePolicySnapshot(shared_config, scorer);
  // The replay never builds cost curves: a one-sample reservoir that samples nothing useful.
  AllocationEngine engine(snapshot, 1, std::numeric_limits<uint32_t>::max());
  const size_t n_agents = config.agents.size();
  const ModulePriceHistory history(log, config);

  std::vector<double> weight;
  OutcomeColumns revenue, cost, priced;
  std::vector<double> lambda_by_module;
  std::vector<ReplayedStep> steps;
  AgentScores scores;
  for (const int64_t r : rows) {
    const auto row = static_cast<size_t>(r);
    engine.SetLambdas(LoggedPrices(log, row, config, history, &lambda_by_module));
    const std::vector<CachedStage> caches = LoggedCaches(log, row);
    steps.clear();
    double w = 1.0, spent = 0.0, spent_priced = 0.0;
    for (size_t a = 0; a < n_agents; ++a) {
      const AgentColumns& c = log.agents[a];
      if (!c.decided[row]) continue;
      const std::span<const float> features(&c.features[row * c.width], c.width);
      const Allocation chosen = engine.Decide(
          snapshot, a, features,
          a == 0 ? std::span<const CachedStage>(caches) : std::span<const CachedStage>());
      const bool ran = c.present[row] != 0;
      bool same = true;
      double propensity = 1.0;
      if (a == 0 && !caches.empty()) {  // the agent that saw a cache also chose the reuse
        same = chosen.cache.reuse == log.cache_reuse[row];
        propensity *= log.cache_propensity[row];
      }
      if (ran) {  // a stage served from the cache ran no action: its joint did not matter
        same = same && static_cast<int64_t>(chosen.joint) == c.joint[row];
        propensity *= c.propensity[row];
      }
      if (!(propensity > 0.0)) {
        report.unusable = "agents[" + config.agents[a].name +
                          "]: the log has no propensities (AgentStep.propensity, "
                          "Transition.cache_reuse_propensity); off-policy estimates need them";
        return report;
      }
      ReplayedStep step;
      step.rho = same ? 1.0 / propensity : 0.0;
      step.cost = ran ? c.cost[row] : 0.0;
      step.priced_cost = step.cost * c.lambda[row];
      scores.cross_module.clear();
      scores.cross_cost.clear();
      if (!scorer->Score(a, features, &scores)) scores.value.clear();
      const size_t logged = ran ? static_cast<size_t>(c.joint[row]) : chosen.joint;
      step.predicted = Predict(scores, logged, chosen.joint, c.lambda[row], lambda_by_module);
      steps.push_back(step);
      w *= step.rho;
      spent += step.cost;
      spent_priced += step.priced_cost;
    }
    const double earned = log.revenue[row];
    const size_t last = steps.size() - 1;
    weight.push_back(w);
    revenue.outcome.push_back(earned);
    revenue.dr.push_back(DoublyRobust(
        steps, [&](size_t k) { return k == last ? earned : 0.0; },
        [](const ReplayedStep& s) { return s.predicted.revenue_logged; },
        [](const ReplayedStep& s) { return s.predicted.revenue_chosen; }));
    cost.outcome.push_back(spent);
    cost.dr.push_back(DoublyRobust(
        steps, [&](size_t k) { return steps[k].cost; },
        [](const ReplayedStep& s) { return s.predicted.cost_logged; },
        [](const ReplayedStep& s) { return s.predicted.cost_chosen; }));
    priced.outcome.push_back(spent_priced);
    priced.dr.push_back(DoublyRobust(
        steps, [&](size_t k) { return steps[k].priced_cost; },
        [](const ReplayedStep& s) { return s.predicted.priced_logged; },
        [](const ReplayedStep& s) { return s.predicted.priced_chosen; }));
  }

  // Net return is linear in revenue and priced cost, request by request.
  OutcomeColumns net;
  for (size_t i = 0; i < weight.size(); ++i) {
    net.outcome.push_back(revenue.outcome[i] - priced.outcome[i]);
    net.dr.push_back(revenue.dr[i] - priced.dr[i]);
  }
  report.requests = static_cast<int64_t>(weight.size());
  for (double w : weight) report.matched += w > 0.0;
  report.effective_sample_size = EffectiveSampleSize(weight);
  report.revenue = EstimateOutcome(weight, revenue.outcome, revenue.dr);
  report.cost = EstimateOutcome(weight, cost.outcome, cost.dr);
  report.net = EstimateOutcome(weight, net.outcome, net.dr);
  return report;
}

std::string FormatOffPolicyReport(const OffPolicyReport& report) {
  if (!report.unusable.empty()) return "off-policy: no estimate: " + report.unusable + "\n";
  std::ostringstream out;
  char line[320];
  std::snprintf(line, sizeof(line),
                "off-policy estimates on %lld logged requests (%lld where the candidate chose "
                "what was logged; effective sample size %.1f), per request, 95%% intervals:\n",
                static_cast<long long>(report.requests), static_cast<long long>(report.matched),
                report.effective_sample_size);
  out << line;
  const auto row = [&](const char* name, const OutcomeEstimates& e) {
    const auto interval = [](const Interval& i) {
      char buf[96];
      std::snprintf(buf, sizeof(buf), "%.4g [%.4g, %.4g]", i.estimate, i.lower, i.upper);
      return std::string(buf);
    };
    std::snprintf(line, sizeof(line), "  %-8s logged %.4g  ips %s  snips %s  dr %s\n", name,
                  e.logged, interval(e.ips).c_str(), interval(e.snips).c_str(),
                  interval(e.dr).c_str());
    out << line;
  };
  row("revenue", report.revenue);
  row("core-ms", report.cost);
  row("net", report.net);
  return out.str();
}

}  // namespace allot::models
