// Builds the hindsight tables once, solves the oracle, tunes the baselines, runs every row, then
// re-solves the oracle at each row's own compute so "% of oracle" compares equal compute.
#include "sim/evaluation.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "policy/analytic_scorer.h"
#include "sim/features.h"
#include "sim/oracle.h"
#include "sim/policies.h"
#include "sim/request_stream.h"
#include "sim/runner.h"
#include "sim/seeds.h"
#include "sim/user_posterior.h"

namespace allot::sim {
namespace {

class Stopwatch {
 public:
  double Lap() {
    const auto now = std::chrono::steady_clock::now();
    const double s = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    return s;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

std::shared_ptr<const ActionScorer> Analytic(const World& world) {
  return std::make_shared<AnalyticScorer>(world.config());
}

// The oracles' bisection, bounded by the config's largest lambda.
BisectionOptions OracleBisection(const World& world) {
  BisectionOptions bisection;
  bisection.lambda_max = world.config().lambda.max;
  return bisection;
}

}  // namespace

RunResult RunRequests(const World& world, const std::vector<Request>& requests, SimPolicy& policy,
                      RunOptions options, const std::string& name) {
  Runner runner(world, policy, std::move(options), name);
  for (const Request& r : requests) runner.Process(r);
  return runner.Finish();
}

RunOptions EvaluationRunOptions(const World& world, double scale, uint64_t seed) {
  RunOptions o;
  o.period_s = world.config().controller.period_s;
  o.scale = scale;
  o.noise_seed = StreamSeed(seed, "cpu-noise");
  return o;
}

RunResult RunRow(const World& world, const std::vector<Request>& requests, EvalRow& row,
                 RunOptions base) {
  base.online = row.online;
  base.lambdas = row.lambdas;
  base.controller = row.online ? row.controller.get() : nullptr;
  return RunRequests(world, requests, *row.policy, std::move(base), row.name);
}

HeldOutStream MakeHeldOutStream(const World& world, uint64_t seed, size_t requests,
                                const std::string& stream) {
  const size_t n = requests > 0 ? requests : static_cast<size_t>(world.world().evaluate.requests);
  StreamOptions options;
  options.seed = seed;
  options.name = stream;
  const RequestStream source(world, options);
  HeldOutStream out;
  out.requests = source.Take(n);
  out.duration_s = out.requests.empty() ? 0.0 : out.requests.back().sim_s;
  out.scale = source.scale();
  return out;
}

std::vector<double> TuneDcafLambdas(const World& world, const std::vector<Request>& requests,
                                    const std::vector<double>& budget, double period_s,
                                    double scale, std::shared_ptr<const ActionScorer> scorer) {
  auto config = std::make_shared<const AllotConfig>(world.config());
  ScorerPolicy policy("dcaf", config, scorer ? std::move(scorer) : Analytic(world));
  RunOptions options = EvaluationRunOptions(world, scale, 0);
  options.period_s = period_s;
  const CostFunction cost = [&](const std::vector<double>& lambda) {
    RunOptions o = options;
    o.lambdas = lambda;
    return RunRequests(world, requests, policy, o, "dcaf").cost;
  };
  std::vector<double> start;
  for (const ModuleConfig& m : world.config().modules) start.push_back(m.initial_lambda);
  BisectionOptions bisection = OracleBisection(world);
  bisection.tolerance = 2e-3;
  return CoordinateBisection(cost, budget, start, bisection);
}

std::vector<std::vector<double>> TuneWindowedLambdas(const World& world,
                                                     const std::vector<Request>& requests,
                                                     double duration_s, double window_s,
                                                     double period_s, double scale,
                                                     std::shared_ptr<const ActionScorer> scorer) {
  std::vector<std::vector<double>> out;
  const size_t windows = WindowCount(duration_s, window_s);
  auto begin = requests.begin();
  for (size_t k = 0; k < windows; ++k) {
    const double start = window_s * static_cast<double>(k);
    const bool last = k + 1 == windows;
    auto end = last ? requests.end() : std::find_if(begin, requests.end(), [&](const Request& r) {
      return r.sim_s >= start + window_s;
    });
    const std::vector<Request> window(begin, end);
    const double span = last ? duration_s - start : window_s;
    out.push_back(
        TuneDcafLambdas(world, window, world.Budgets(span, scale), period_s, scale, scorer));
    begin = end;
  }
  return out;
}

Evaluation EvaluateRequests(const World& world, const std::vector<Request>& requests,
                            double duration_s, double scale, const EvalOptions& options,
                            std::vector<RunResult> external_runs,
                            std::vector<RunResult> hindsight_runs) {
  Stopwatch watch;
  auto log = [&](const std::string& what) {
    if (options.log_progress) spdlog::info("evaluate: {} ({:.1f} s)", what, watch.Lap());
  };
  Evaluation ev;
  ev.duration_s = duration_s;
  ev.budget = world.Budgets(duration_s, scale);
  const OptionTable table(world, requests, options.max_table_bytes);
  ev.num_options = table.num_options();
  log("hindsight tables: " + std::to_string(requests.size()) + " requests, " +
      std::to_string(table.num_options()) + " options kept");

  const BisectionOptions bisection = OracleBisection(world);
  const OracleSolution oracle = SolveOracle(world, table, ev.budget, {}, bisection);
  log("oracle lambdas");

  const RunOptions base = EvaluationRunOptions(world, scale, options.seed);
  std::vector<RunResult> runs = std::move(external_runs);

  const StaticChoice fixed = BestStatic(world, table, ev.budget);
  if (!fixed.fits)
    spdlog::warn("evaluate: no static allocation fits the budget; using the least overshooting");
  {
    const auto& chain = world.layout().chain();
    std::vector<uint32_t> joints;
    for (size_t p = 0; p < chain.size(); ++p) joints.push_back(fixed.joint[chain[p].stage]);
    FixedPolicy policy("static", joints);
    runs.push_back(RunRequests(world, requests, policy, base, "static"));
  }
  log("static");

  const std::vector<double> dcaf_lambdas =
      TuneDcafLambdas(world, requests, ev.budget, base.period_s, scale);
  ev.dcaf_lambdas = dcaf_lambdas;
  auto config = std::make_shared<const AllotConfig>(world.config());
  {
    ScorerPolicy policy("dcaf", config, Analytic(world));
    RunOptions o = base;
    o.lambdas = dcaf_lambdas;
    runs.push_back(RunRequests(world, requests, policy, o, "dcaf"));
  }
  log("dcaf lambdas");

  std::vector<EvalRow> rows;
  {
    EvalRow row;
    row.name = "analytic+fixed";
    row.online = true;
    row.policy = std::make_unique<ScorerPolicy>("analytic+fixed", config, Analytic(world));
    row.lambdas = dcaf_lambdas;
    rows.push_back(std::move(row));
  }
  const double window_s = OracleWindow(world, options);
  const EvalContext context{world,        config,        requests,      ev.budget,
                            dcaf_lambdas, oracle.lambda, base.period_s, scale,
                            options.seed, duration_s,    window_s};
  for (const RowFactory& factory : options.extra_rows) {
    for (EvalRow& row : factory(context)) rows.push_back(std::move(row));
  }
  for (EvalRow& row : rows) {
    runs.push_back(RunRow(world, requests, row, base));
    runs.back().hindsight = row.hindsight;
    log(row.name);
  }

  for (RunResult& run : hindsight_runs) runs.push_back(std::move(run));
  {
    WindowedOracle w = SolveWindowedOracle(world, table, requests, window_s, duration_s, scale,
                                           oracle.lambda, bisection);
    OraclePolicy policy("oracle-windowed", table, std::move(w.chosen), std::move(w.without_reuse),
                        w.lambda, std::move(w.window));
    RunOptions o = base;
    o.lambdas = w.lambda.empty() ? oracle.lambda : w.lambda.front();
    runs.push_back(RunRequests(world, requests, policy, o, "oracle-windowed"));
    runs.back().hindsight = true;
  }
  log("windowed oracle");
  {
    std::vector<uint32_t> chosen, plain;
    table.Best(StageLambdas(world, oracle.lambda), &chosen, &plain);
    OraclePolicy policy("oracle", table, std::move(chosen), std::move(plain), {oracle.lambda});
    RunOptions o = base;
    o.lambdas = oracle.lambda;
    runs.push_back(RunRequests(world, requests, policy, o, "oracle"));
    runs.back().hindsight = true;
  }
  log("oracle replay");

  for (const RunResult& run : runs) {
    if (run.name == "oracle") {
      ev.oracle_equal_revenue.push_back(run.revenue);
      continue;
    }
    const OracleSolution equal = SolveOracle(world, table, run.cost, oracle.lambda, bisection);
    ev.oracle_equal_revenue.push_back(equal.totals.value);
  }
  log("oracle at equal compute");
  ev.runs = std::move(runs);
  return ev;
}

WorldConfig WithoutRequestNoise(WorldConfig world) {
  // Not zero: a zero sigma skips its random draw and would shift every later one.
  constexpr double kNegligible = 1e-12;
  for (double* sigma : {&world.users.request_noise_sigma, &world.recall.coverage_noise_sigma,
                        &world.recall.yield_noise_sigma, &world.revenue.cost_noise_sigma}) {
    *sigma = std::min(*sigma, kNegligible);
  }
  return world;
}

namespace {

// The held-out stream drawn again in `twin` (a world differing only in noise sigmas), as
// MakeHeldOutStream draws it; throws when it is not the same users at the same times.
std::vector<Request> TwinRequests(const World& twin, const HeldOutStream& held,
                                  StreamOptions options, size_t requests, const char* row) {
  const size_t n = requests > 0 ? requests : static_cast<size_t>(twin.world().evaluate.requests);
  std::vector<Request> twins = RequestStream(twin, options).Take(n);
  const bool aligned =
      twins.size() == held.requests.size() &&
      std::equal(twins.begin(), twins.end(), held.requests.begin(),
                 [](const Request& a, const Request& b) {
                   return a.user == b.user && a.real_s == b.real_s && a.page_index == b.page_index;
                 });
  if (!aligned) throw std::logic_error(std::string(row) + ": the twin stream diverged");
  return twins;
}

// The optimum on `table` (built on `twin`'s requests) at its budget-meeting lambdas, scored on
// the truth.
RunResult HindsightOnTwin(const World& world, const World& twin, const OptionTable& table,
                          const HeldOutStream& held, uint64_t seed, const std::string& row) {
  const BisectionOptions bisection = OracleBisection(world);
  const OracleSolution solution =
      SolveOracle(twin, table, twin.Budgets(held.duration_s, held.scale), {}, bisection);
  std::vector<uint32_t> chosen, plain;
  table.Best(StageLambdas(twin, solution.lambda), &chosen, &plain);
  OraclePolicy policy(row, table, std::move(chosen), std::move(plain), {solution.lambda});
  RunOptions options = EvaluationRunOptions(world, held.scale, seed);
  options.lambdas = solution.lambda;
  RunResult run = RunRequests(world, held.requests, policy, options, row);
  run.hindsight = true;
  return run;
}

// `row` and `row`-windowed: the optimum on `table` (built on `twin`'s requests), daily and held
// to the target window by window, scored on the truth.
void AppendTwinOptima(const World& world, const World& twin, const OptionTable& table,
                      const HeldOutStream& held, uint64_t seed, double window_s,
                      const std::string& row, std::vector<RunResult>& runs) {
  runs.push_back(HindsightOnTwin(world, twin, table, held, seed, row));
  const BisectionOptions bisection = OracleBisection(world);
  WindowedOracle w = SolveWindowedOracle(twin, table, held.requests, window_s, held.duration_s,
                                         held.scale, {}, bisection);
  const std::string name = row + "-windowed";
  OraclePolicy policy(name, table, std::move(w.chosen), std::move(w.without_reuse), w.lambda,
                      std::move(w.window));
  RunOptions options = EvaluationRunOptions(world, held.scale, seed);
  if (!w.lambda.empty()) options.lambdas = w.lambda.front();
  runs.push_back(RunRequests(world, held.requests, policy, options, name));
  runs.back().hindsight = true;
}

// Conditions every draw of `drawn` (drawn[k][i]: request i in draw k, with the value noise at
// its mean) on what the truth's upstream top scores show of request i's value: each draw's
// value takes the expected value noise given the scores, and the draws are weighted by how
// likely they make the scores (returned as weights[k][i]).
std::vector<std::vector<double>> ConditionOnScores(const World& world,
                                                   const std::vector<Request>& truth,
                                                   std::vector<std::vector<Request>>& drawn) {
  const WorldConfig& w = world.world();
  const std::array<double, 2> score_sd = {
      w.recall.score_noise_sigma / kRecallTopScoreValueWeight,
      w.prerank.score_noise_sigma / kPrerankTopScoreValueWeight};
  std::vector<std::vector<double>> weights(drawn.size(), std::vector<double>(truth.size()));
  for (size_t i = 0; i < truth.size(); ++i) {
    const Request& t = truth[i];
    const double log_value = std::log(std::max(t.value, 1e-300));
    const std::array<double, 2> shown = {
        log_value + t.score_noise[kRecall] / kRecallTopScoreValueWeight,
        log_value + t.score_noise[kPrerank] / kPrerankTopScoreValueWeight};
    double best = -std::numeric_limits<double>::infinity();
    for (size_t k = 0; k < drawn.size(); ++k) {
      Request& q = drawn[k][i];
      const double implied = std::log(std::max(q.value, 1e-300));
      const ScoreEvidence evidence = UpdateOnScores(
          w.users.request_noise_sigma, {shown[0] - implied, shown[1] - implied}, score_sd);
      q.value *= evidence.value_factor;
      weights[k][i] = evidence.log_likelihood;
      best = std::max(best, evidence.log_likelihood);
    }
    for (auto& sample : weights) sample[i] = std::exp(sample[i] - best);
  }
  return weights;
}

}  // namespace

RunResult NoiseFreeOracleRun(const World& world, const HeldOutStream& held, uint64_t seed,
                             size_t requests, const std::string& stream, size_t max_table_bytes) {
  const World twin(world.config(), WithoutRequestNoise(world.world()));
  const std::vector<Request> twins =
      TwinRequests(twin, held, {.seed = seed, .name = stream}, requests, "oracle-noise-free");
  const OptionTable table(twin, twins, max_table_bytes);
  return HindsightOnTwin(world, twin, table, held, seed, "oracle-noise-free");
}

double OracleWindow(const World& world, const EvalOptions& options) {
  return options.oracle_window_s > 0 ? options.oracle_window_s
                                     : 10.0 * world.config().controller.period_s;
}

std::vector<RunResult> FeaturesOracleRuns(const World& world, const HeldOutStream& held,
                                          uint64_t seed, size_t requests, const std::string& stream,
                                          uint32_t samples, double window_s,
                                          size_t max_table_bytes) {
  if (samples == 0) throw std::invalid_argument("oracle-features: needs at least one sample");
  const World twin(world.config(), WithoutRequestNoise(world.world()));
  std::vector<std::vector<Request>> drawn;
  drawn.reserve(samples);
  for (uint32_t k = 1; k <= samples; ++k) {
    drawn.push_back(TwinRequests(twin, held, {.seed = seed, .name = stream, .posterior_sample = k},
                                 requests, "oracle-features"));
  }
  std::vector<RunResult> runs;
  {
    const OptionTable table(twin, std::span<const std::vector<Request>>(drawn), {},
                            max_table_bytes);
    AppendTwinOptima(world, twin, table, held, seed, window_s, "oracle-features", runs);
  }
  const std::vector<std::vector<double>> weights = ConditionOnScores(world, held.requests, drawn);
  const OptionTable table(twin, std::span<const std::vector<Request>>(drawn), weights,
                          max_table_bytes);
  drawn.clear();
  AppendTwinOptima(world, twin, table, held, seed, window_s, "oracle-all-features", runs);
  return runs;
}

Evaluation Evaluate(const World& world, const EvalOptions& options) {
  const HeldOutStream held =
      MakeHeldOutStream(world, options.seed, options.requests, options.stream);
  std::vector<RunResult> hindsight;
  // Before the truth's tables are built: the twin's are as large, and are freed by then.
  if (options.noise_free_oracle) {
    Stopwatch watch;
    hindsight.push_back(NoiseFreeOracleRun(world, held, options.seed, options.requests,
                                           options.stream, options.max_table_bytes));
    if (options.log_progress) spdlog::info("evaluate: noise-free oracle ({:.1f} s)", watch.Lap());
  }
  if (options.features_oracle_samples > 0) {
    Stopwatch watch;
    for (RunResult& run : FeaturesOracleRuns(world, held, options.seed, options.requests,
                                             options.stream, options.features_oracle_samples,
                                             OracleWindow(world, options), options.max_table_bytes))
      hindsight.push_back(std::move(run));
    if (options.log_progress) spdlog::info("evaluate: features oracle ({:.1f} s)", watch.Lap());
  }
  return EvaluateRequests(world, held.requests, held.duration_s, held.scale, options, {},
                          std::move(hindsight));
}

}  // namespace allot::sim
