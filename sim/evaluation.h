// Offline evaluation: replays a held-out period through the policies and scores each against the
// hindsight optimum at equal compute. Rows are pluggable (RowFactory) so learned bundles with
// their lambda controllers can be added next to the built-in ones.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "policy/lambda_controller.h"
#include "sim/option_table.h"
#include "sim/run_result.h"
#include "sim/runner.h"
#include "sim/sim_policy.h"
#include "sim/world.h"

namespace allot::sim {

// One policy to score. Offline rows keep their lambdas; online rows run through the load dynamics
// (lagged noisy CPU, degradation, timeouts) and, with a controller, update lambda every period.
struct EvalRow {
  std::string name;
  bool online = false;
  std::unique_ptr<SimPolicy> policy;
  std::unique_ptr<LambdaController> controller;  // online only; nullptr = fixed lambdas
  std::vector<double> lambdas;                   // initial, per config module
  bool hindsight = false;                        // its lambdas were chosen knowing the day
};

// What a row factory may use to build its rows.
struct EvalContext {
  const World& world;
  std::shared_ptr<const AllotConfig> config;
  const std::vector<Request>& requests;
  std::vector<double> budget;        // per module, core-ms of simulated requests
  std::vector<double> dcaf_lambdas;  // the analytic model's budget-meeting lambdas
  std::vector<double> oracle_lambdas;
  double period_s = 1.0;
  double scale = 1.0;
  uint64_t seed = 1;
  double duration_s = 0.0;  // simulated seconds the requests cover
  double window_s = 0.0;    // oracle-windowed's window
};
using RowFactory = std::function<std::vector<EvalRow>(const EvalContext&)>;

struct EvalOptions {
  uint64_t seed = 1;
  size_t requests = 0;              // 0 = world evaluate.requests
  std::string stream = "evaluate";  // seed stream; never the one `generate` uses
  std::vector<RowFactory> extra_rows;
  bool log_progress = false;  // timings to stderr
  // Window of the oracle that holds every module at its CPU target window by window
  // (oracle-windowed); 0 = ten control periods.
  double oracle_window_s = 0.0;
  // Evaluate adds oracle-noise-free (see NoiseFreeOracleRun).
  bool noise_free_oracle = true;
  // > 0: Evaluate adds oracle-features and oracle-all-features, daily and windowed, over this
  // many posterior draws per user (see FeaturesOracleRuns). Off by default: it builds the hindsight
  // tables once per draw.
  uint32_t features_oracle_samples = 0;
  // > 0: a hindsight table projected to need more memory than this is refused before it is built
  // (OptionTableTooLarge, with the numbers); allot-sim sets it to the memory available.
  size_t max_table_bytes = 0;
};

struct Evaluation {
  std::vector<RunResult> runs;               // table order; the oracle last
  std::vector<double> oracle_equal_revenue;  // per run: the optimum at that run's compute
  std::vector<double> budget;                // per module
  std::vector<double> dcaf_lambdas;          // the analytic model's budget-meeting lambdas
  double duration_s = 0.0;                   // simulated seconds covered
  size_t num_options = 0;                    // hindsight options kept after pruning
};

// The held-out stream an evaluation replays (seed stream "evaluate" unless named otherwise).
struct HeldOutStream {
  std::vector<Request> requests;
  double duration_s = 0.0;  // simulated seconds covered
  double scale = 1.0;       // real requests per simulated request
};
HeldOutStream MakeHeldOutStream(const World& world, uint64_t seed, size_t requests,
                                const std::string& stream = "evaluate");

// One replay of `requests` through `policy`, as every evaluation row runs.
RunResult RunRequests(const World& world, const std::vector<Request>& requests, SimPolicy& policy,
                      RunOptions options, const std::string& name);
// One evaluation row: its policy, initial lambdas and (online) controller over `base`.
RunResult RunRow(const World& world, const std::vector<Request>& requests, EvalRow& row,
                 RunOptions base);
// The run options every row starts from: the controller's period, the stream's scale and the
// CPU-noise seed shared by all rows (common random numbers).
RunOptions EvaluationRunOptions(const World& world, double scale, uint64_t seed);

// Generates the held-out stream and scores static, dcaf, analytic+fixed, the extra rows, the
// windowed oracle and the oracle.
Evaluation Evaluate(const World& world, const EvalOptions& options);

// The same on given requests, with runs produced elsewhere (e.g. by a live server in `drive`)
// placed before the built-in rows, and hindsight runs made elsewhere placed before the oracles.
// `duration_s` and `scale` define the budget.
Evaluation EvaluateRequests(const World& world, const std::vector<Request>& requests,
                            double duration_s, double scale, const EvalOptions& options,
                            std::vector<RunResult> external_runs = {},
                            std::vector<RunResult> hindsight_runs = {});

// The world's config with every per-request noise that no feature shows (value, channel coverage
// and yield, cost) shrunk to a negligible but positive sigma: the same stream seed then draws the
// same random numbers, so its requests are the truth's with those noises at their means.
WorldConfig WithoutRequestNoise(WorldConfig world);

// oracle-noise-free: the hindsight optimum decided on the noise-free twin of each request (the
// user's latent value, the hour, the page and the cache known; per-request noise not), at the
// twin's budget-meeting lambdas, then scored on the truth. Against the oracle at equal compute it
// shows what per-request noise alone puts out of any policy's reach: a looser ceiling than the
// best features-only policy, which knows the user's value only through noisy features. `held`
// must be MakeHeldOutStream(world, seed, requests, stream) of the same arguments.
RunResult NoiseFreeOracleRun(const World& world, const HeldOutStream& held, uint64_t seed,
                             size_t requests, const std::string& stream,
                             size_t max_table_bytes = 0);

// oracle-features: as oracle-noise-free, but the user's latent value is known only through the
// user features (history, activity, click rate, new-user flag): each option is scored by its mean
// over `samples` draws of the value from its exact posterior (sim/user_posterior.h), so the
// optimum is decided on the expectation a policy seeing only those features could at best
// compute: the recall agent's view. oracle-all-features also weighs the draws by the request's
// upstream top scores (what recall's and pre-rank's best scores show of the request's value,
// their stages' mass taken as known): every later agent's view, given to every agent, so an
// upper estimate for a features-only chain. Each has a -windowed row held to the CPU target
// window by window (`window_s`), as oracle-windowed holds the oracle: the same for online rows.
std::vector<RunResult> FeaturesOracleRuns(const World& world, const HeldOutStream& held,
                                          uint64_t seed, size_t requests, const std::string& stream,
                                          uint32_t samples, double window_s,
                                          size_t max_table_bytes = 0);

// The window of oracle-windowed (and oracle-features-windowed).
double OracleWindow(const World& world, const EvalOptions& options);

// Lambdas that make the decision rule around `scorer` (the analytic model when null) meet the
// budget on these requests (offline replay, measured compute): the DCAF baseline, and with a
// bundle's scorer its `<algorithm>+dcaf` row, which measures the model apart from control.
std::vector<double> TuneDcafLambdas(const World& world, const std::vector<Request>& requests,
                                    const std::vector<double>& budget, double period_s,
                                    double scale,
                                    std::shared_ptr<const ActionScorer> scorer = nullptr);
// Per window of `window_s` (the last one ends with the stream, as oracle-windowed's), the lambdas
// at which `scorer` spends that window's share of the budget: a bundle under a controller that
// holds every module at its target window by window and knows the day in advance.
std::vector<std::vector<double>> TuneWindowedLambdas(const World& world,
                                                     const std::vector<Request>& requests,
                                                     double duration_s, double window_s,
                                                     double period_s, double scale,
                                                     std::shared_ptr<const ActionScorer> scorer);

}  // namespace allot::sim
