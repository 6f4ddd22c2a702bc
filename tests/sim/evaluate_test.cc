// Evaluation is deterministic by seed, scores every row against the oracle at equal compute, and
// the online hook drives lambda from the simulated CPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "policy/analytic_scorer.h"
#include "policy/pid_controller.h"
#include "sim/cli.h"
#include "sim/control_comparison.h"
#include "sim/controller_rows.h"
#include "sim/evaluation.h"
#include "sim/model_quality.h"
#include "sim/offpolicy_check.h"
#include "sim/report.h"
#include "tests/sim/sim_test_util.h"

namespace allot::sim {
namespace {

// A short day so that a full daily cycle fits in a quick test.
std::unique_ptr<World> SmallWorld() {
  return testing::MakeWorld([](WorldConfig& w) {
    w.time.day_length_s = 120;
    w.traffic.mean_qps = 20;
  });
}

std::string CsvOf(const World& world, uint64_t seed, size_t requests = 1500) {
  EvalOptions options;
  options.seed = seed;
  options.requests = requests;
  return FormatCsv(BuildTable(world, Evaluate(world, options)));
}

// Serves the analytic model's scores after `edit`: a model wrong in a known way.
class EditedScorer final : public ActionScorer {
 public:
  EditedScorer(const AllotConfig& config, std::function<void(AgentScores*)> edit)
      : inner_(config), edit_(std::move(edit)) {}
  const std::string& version() const override { return inner_.version(); }
  const char* inference() const override { return inner_.inference(); }
  bool Score(size_t agent, std::span<const float> features, AgentScores* out) const override {
    if (!inner_.Score(agent, features, out)) return false;
    edit_(out);
    return true;
  }

 private:
  AnalyticScorer inner_;
  std::function<void(AgentScores*)> edit_;
};

// The values in reverse order of the options: a model that ranks every request's options
// exactly wrong.
EditedScorer ReversedScorer(const AllotConfig& config) {
  return EditedScorer(config, [](AgentScores* s) {
    for (double& v : s->value) v = 1.0 / (1e-9 + v);
  });
}

// The values' and costs' differences from the request's mean doubled: the same order, twice the
// differences, the same mean.
EditedScorer DoubledScorer(const AllotConfig& config) {
  return EditedScorer(config, [](AgentScores* s) {
    for (std::vector<double>* scores : {&s->value, &s->cost}) {
      double mean = 0;
      for (const double x : *scores) mean += x / static_cast<double>(scores->size());
      for (double& x : *scores) x = mean + 2 * (x - mean);
    }
  });
}

// r_s compares a scorer's values with the chain's true expected revenue of each option.
TEST(ModelQualityTest, RankCorrelationOfOptionsAgainstTheTruth) {
  const auto world = SmallWorld();
  const HeldOutStream held = MakeHeldOutStream(*world, 4, 400, "quality-test");
  const AnalyticScorer analytic(world->config());
  const auto right = MeasureModelQuality(*world, held.requests, analytic, 300);
  ASSERT_EQ(right.size(), 3u);
  EXPECT_EQ(right[1].agent, "prerank");
  EXPECT_EQ(right[1].requests, 300u);
  // The analytic model orders pre-rank queue lengths as the world does for almost every request.
  EXPECT_GT(right[1].r_s_within, 0.9);
  for (const AgentQuality& q : right) EXPECT_GT(q.r_s, 0.5) << q.agent;
  const auto wrong =
      MeasureModelQuality(*world, held.requests, ReversedScorer(world->config()), 300);
  EXPECT_LT(wrong[1].r_s_within, -0.9);
  EXPECT_LT(wrong[1].r_s, 0.0);
}

// The scale of the differences between a request's options, which r_s cannot see: the analytic
// model's own-module costs are written for this world (slopes 0.97-1.19 on the full default
// world), and doubling a model's uplifts over its request's mean (values and costs) halves both
// slopes and leaves r_s alone.
TEST(ModelQualityTest, DifferenceSlopesMeasureTheScaleOfOptionDifferences) {
  const auto world = SmallWorld();
  const HeldOutStream held = MakeHeldOutStream(*world, 4, 400, "quality-test");
  const auto right =
      MeasureModelQuality(*world, held.requests, AnalyticScorer(world->config()), 300);
  const auto doubled =
      MeasureModelQuality(*world, held.requests, DoubledScorer(world->config()), 300);
  ASSERT_EQ(right.size(), doubled.size());
  for (size_t i = 0; i < right.size(); ++i) {
    EXPECT_GT(right[i].cost_slope, 0.8) << right[i].agent;
    EXPECT_LT(right[i].cost_slope, 1.3) << right[i].agent;
    EXPECT_GT(right[i].value_slope, 0.0) << right[i].agent;
    EXPECT_NEAR(doubled[i].value_slope, right[i].value_slope / 2, 1e-9) << right[i].agent;
    EXPECT_NEAR(doubled[i].cost_slope, right[i].cost_slope / 2, 1e-9) << right[i].agent;
    EXPECT_NEAR(doubled[i].r_s_within, right[i].r_s_within, 1e-4) << right[i].agent;  // ties round
  }
  std::ostringstream out;
  PrintModelQuality("analytic", right, out);
  EXPECT_NE(out.str().find("model scale analytic"), std::string::npos) << out.str();
}

// The estimates from an epsilon-greedy log against each candidate's own replay: the logging
// policy's base rule is estimated tightly and truthfully, and a model that ranks every option
// backwards is estimated to earn less, as it does.
TEST(OffPolicyCheckTest, EstimatesStandBesideTheSimulatedTruth) {
  const auto world = SmallWorld();
  const HeldOutStream held = MakeHeldOutStream(*world, 6, 4000, "offpolicy-test");
  const std::vector<double> lambdas =
      TuneDcafLambdas(*world, held.requests, world->Budgets(held.duration_s, held.scale),
                      world->config().controller.period_s, held.scale);
  OffPolicyCheckOptions options;
  options.seed = 6;
  const std::vector<Candidate> candidates = {
      {"analytic", std::make_shared<AnalyticScorer>(world->config())},
      {"reversed", std::make_shared<EditedScorer>(ReversedScorer(world->config()))}};
  const OffPolicyCheck check =
      CheckOffPolicy(*world, held.requests, held.scale, lambdas, candidates, options);
  ASSERT_EQ(check.rows.size(), 2u);
  EXPECT_EQ(check.requests, 4000);
  const OffPolicyCheckRow& analytic = check.rows[0];
  const OffPolicyCheckRow& reversed = check.rows[1];
  ASSERT_TRUE(analytic.estimate.unusable.empty()) << analytic.estimate.unusable;
  // Without its exploration the logging policy is the analytic rule: most requests match.
  EXPECT_GT(analytic.estimate.matched, 2500);
  for (const models::Interval* i : {&analytic.estimate.revenue.snips, &analytic.estimate.revenue.dr,
                                    &analytic.estimate.cost.dr}) {
    EXPECT_LT(i->upper - i->lower, 0.2 * std::abs(i->estimate));
  }
  EXPECT_NEAR(analytic.estimate.revenue.dr.estimate, analytic.truth.revenue,
              0.05 * analytic.truth.revenue);
  EXPECT_NEAR(analytic.estimate.cost.dr.estimate, analytic.truth.cost, 0.05 * analytic.truth.cost);
  EXPECT_LT(reversed.truth.net, analytic.truth.net);
  EXPECT_LT(reversed.estimate.net.dr.estimate, analytic.estimate.net.dr.estimate);
  const std::string text = FormatOffPolicyCheck(check);
  EXPECT_NE(text.find("reversed (matched"), std::string::npos) << text;
}

TEST(EvaluateTest, SameSeedSameTableOtherSeedOtherTable) {
  const auto world = SmallWorld();
  const std::string a = CsvOf(*world, 5);
  EXPECT_EQ(a, CsvOf(*world, 5));
  EXPECT_NE(a, CsvOf(*world, 6));
}

TEST(EvaluateTest, RowsAreScoredAgainstTheOracleAtEqualCompute) {
  const auto world = SmallWorld();
  EvalOptions options;
  options.seed = 3;
  options.requests = 2000;
  options.extra_rows.push_back([](const EvalContext& context) {
    std::vector<EvalRow> rows;
    rows.push_back(ControlledRow(context, "analytic+pid",
                                 std::make_shared<AnalyticScorer>(*context.config),
                                 std::make_unique<PidController>(*context.config)));
    return rows;
  });
  const Evaluation ev = Evaluate(*world, options);
  const Table table = BuildTable(*world, ev);
  std::vector<std::string> names;
  for (const TableRow& row : table.rows) names.push_back(row.policy);
  EXPECT_EQ(names, (std::vector<std::string>{"static", "dcaf", "analytic+fixed", "analytic+pid",
                                             "oracle-noise-free", "oracle-windowed", "oracle"}));
  for (const TableRow& row : table.rows) {
    EXPECT_EQ(row.requests, 2000) << row.policy;
    EXPECT_GT(row.revenue, 0) << row.policy;
    // Nothing beats the hindsight optimum at the same compute.
    EXPECT_LE(row.pct_of_oracle, 100.0 + 0.05) << row.policy;
    EXPECT_GT(row.pct_of_oracle, 30.0) << row.policy;
  }
  const TableRow& oracle = table.rows.back();
  EXPECT_NEAR(oracle.pct_of_oracle, 100.0, 1e-9);
  for (const ModuleColumns& m : oracle.modules) EXPECT_LE(m.used_pct, 100.0 + 0.01);
  // The offline baselines that tune to the budget meet it.
  for (const ModuleColumns& m : table.rows[1].modules) EXPECT_LE(m.used_pct, 100.0 + 0.01);
  // The controller moved lambda during the run.
  const RunResult& pid = ev.runs[3];
  double lo = 1e9, hi = 0;
  for (const PeriodRecord& p : pid.periods) {
    lo = std::min(lo, p.lambda[0]);
    hi = std::max(hi, p.lambda[0]);
  }
  EXPECT_GT(hi, lo);
}

// The noise-free twin is the truth with its per-request noise at the mean: the same users at the
// same times, values and costs without the noise, and an oracle deciding on it loses to the
// oracle that sees the noise, but not by much.
TEST(EvaluateTest, TheNoiseFreeOracleDecidesOnTheTruthsTwinAndTrailsTheOracle) {
  const auto world = SmallWorld();
  const HeldOutStream held = MakeHeldOutStream(*world, 3, 2000, "noise-test");
  const World twin(world->config(), WithoutRequestNoise(world->world()));
  const HeldOutStream twins = MakeHeldOutStream(twin, 3, 2000, "noise-test");
  ASSERT_EQ(twins.requests.size(), held.requests.size());
  int value_differs = 0;
  for (size_t i = 0; i < held.requests.size(); ++i) {
    const Request& a = held.requests[i];
    const Request& b = twins.requests[i];
    ASSERT_EQ(a.user, b.user);
    ASSERT_EQ(a.real_s, b.real_s);
    EXPECT_EQ(a.user_value, b.user_value);
    for (int s = 0; s < kNumStages; ++s) EXPECT_NEAR(b.cost_noise[s], 1.0f, 1e-6f);
    value_differs += a.value != b.value;
  }
  EXPECT_GT(value_differs, 1900);  // the truth's values carry their per-request noise

  EvalOptions options;
  options.seed = 3;
  options.requests = 2000;
  const Table table = BuildTable(*world, Evaluate(*world, options));
  const TableRow* noise_free = nullptr;
  for (const TableRow& row : table.rows) {
    if (row.policy == "oracle-noise-free") noise_free = &row;
  }
  ASSERT_NE(noise_free, nullptr);
  EXPECT_EQ(noise_free->mode, "hindsight");
  EXPECT_LT(noise_free->pct_of_oracle, 99.9);
  EXPECT_GT(noise_free->pct_of_oracle, 90.0);
  EXPECT_GT(noise_free->pct_of_oracle, table.rows[1].pct_of_oracle);  // beats dcaf
  options.noise_free_oracle = false;
  for (const TableRow& row : BuildTable(*world, Evaluate(*world, options)).rows)
    EXPECT_NE(row.policy, "oracle-noise-free");
}

// Cache reuse is broken down by the stage whose output was reused. The stages add up to the
// row's totals; a policy that estimates its reuses (dcaf: the analytic model's half-life rule)
// has its prediction beside what happened, the oracle none; the printed lines name the stages.
TEST(EvaluateTest, CacheReuseIsBrokenDownByTheReusedStage) {
  const auto world = SmallWorld();
  EvalOptions options;
  options.seed = 3;
  options.requests = 2000;
  options.noise_free_oracle = false;
  const Evaluation ev = Evaluate(*world, options);
  const std::string printed = FormatReuseBreakdown(*world, ev);
  for (const RunResult& run : ev.runs) {
    int64_t reuses = 0;
    double saved = 0, lost = 0;
    int stages_used = 0;
    for (const ReuseTally& t : run.reuse_by_stage) {
      reuses += t.reuses;
      saved += t.saved_cost;
      lost += t.revenue_cost;
      stages_used += t.reuses > 0;
      // The half-life rule (every scoring row here is the analytic model) keeps at most all of it.
      EXPECT_LE(t.predicted_kept, t.predicted_fresh + 1e-9) << run.name;
      if (run.name == "dcaf" && t.reuses > 0) {
        EXPECT_EQ(t.estimated, t.reuses);
        EXPECT_GT(t.predicted_kept, 0.0);
      }
      if (run.name == "oracle") {
        EXPECT_EQ(t.estimated, 0);
      }
    }
    EXPECT_EQ(reuses, run.reuses) << run.name;
    EXPECT_NEAR(saved, run.cache_saved_cost, 1e-9 * (1 + std::abs(saved))) << run.name;
    EXPECT_NEAR(lost, run.cache_revenue_cost, 1e-9 * (1 + std::abs(lost))) << run.name;
    if (run.name == "static") {
      EXPECT_EQ(reuses, 0);
    }
    if (run.name == "dcaf" || run.name == "oracle") {
      EXPECT_GE(stages_used, 2) << run.name;
    }
  }
  EXPECT_EQ(printed.find("  static "), std::string::npos) << printed;  // it never reuses
  const size_t dcaf = printed.find("  dcaf ");
  const size_t oracle = printed.find("  oracle ");
  ASSERT_NE(dcaf, std::string::npos) << printed;
  ASSERT_NE(oracle, std::string::npos) << printed;
  const std::string dcaf_line = printed.substr(dcaf, printed.find('\n', dcaf) - dcaf);
  const std::string oracle_line = printed.substr(oracle, printed.find('\n', oracle) - oracle);
  EXPECT_NE(dcaf_line.find(" | recall "), std::string::npos) << dcaf_line;
  EXPECT_NE(dcaf_line.find('('), std::string::npos) << dcaf_line;      // predicted
  EXPECT_EQ(oracle_line.find('('), std::string::npos) << oracle_line;  // knows the truth
}

// The features oracle knows the user's value only through the user features: it trails the
// noise-free oracle (which knows the value) and still beats the analytic model at dcaf; the
// upstream scores add to it; held to the target window by window it loses more. All are off
// unless asked for.
TEST(EvaluateTest, TheFeaturesOracleTrailsTheNoiseFreeOracleAndBeatsDcaf) {
  const auto world = SmallWorld();
  EvalOptions options;
  options.seed = 3;
  options.requests = 2000;
  options.features_oracle_samples = 8;
  const Table table = BuildTable(*world, Evaluate(*world, options));
  const TableRow* noise_free = nullptr;
  const TableRow* features = nullptr;
  const TableRow* features_windowed = nullptr;
  const TableRow* all_features = nullptr;
  for (const TableRow& row : table.rows) {
    if (row.policy == "oracle-noise-free") noise_free = &row;
    if (row.policy == "oracle-features") features = &row;
    if (row.policy == "oracle-features-windowed") features_windowed = &row;
    if (row.policy == "oracle-all-features") all_features = &row;
  }
  ASSERT_NE(noise_free, nullptr);
  ASSERT_NE(features, nullptr);
  ASSERT_NE(features_windowed, nullptr);
  ASSERT_NE(all_features, nullptr);
  // The upstream scores tell the later agents more about the request's value.
  EXPECT_GT(all_features->pct_of_oracle, features->pct_of_oracle);
  EXPECT_EQ(features->mode, "hindsight");
  EXPECT_LT(features->pct_of_oracle, noise_free->pct_of_oracle);
  EXPECT_GT(features->pct_of_oracle, table.rows[1].pct_of_oracle);  // beats dcaf
  // Held to the target window by window it loses what oracle-windowed loses to the oracle.
  EXPECT_LT(features_windowed->pct_of_oracle, features->pct_of_oracle);
  for (const ModuleColumns& m : features_windowed->modules) EXPECT_LT(m.used_pct, 100.0);
  options.features_oracle_samples = 0;
  for (const TableRow& row : BuildTable(*world, Evaluate(*world, options)).rows)
    EXPECT_EQ(row.policy.find("features"), std::string::npos) << row.policy;
}

// The windowed row holds each window to its share of the budget; with one window covering the
// whole stream it is the dcaf row.
TEST(EvaluateTest, AWindowedRowMeetsEachWindowsBudgetAndWithOneWindowIsDcaf) {
  const auto world = SmallWorld();
  auto windowed = [&](double window_s) {
    EvalOptions options;
    options.seed = 3;
    options.requests = 2000;
    options.oracle_window_s = window_s;
    options.extra_rows.push_back([](const EvalContext& context) {
      std::vector<EvalRow> rows;
      rows.push_back(WindowedRow(context, "analytic+windowed",
                                 std::make_shared<AnalyticScorer>(*context.config)));
      return rows;
    });
    return Evaluate(*world, options);
  };
  const Evaluation whole = windowed(1e6);
  const Table whole_table = BuildTable(*world, whole);
  ASSERT_EQ(whole_table.rows[3].policy, "analytic+windowed");
  EXPECT_EQ(whole_table.rows[3].mode, "hindsight");
  EXPECT_DOUBLE_EQ(whole.runs[3].revenue, whole.runs[1].revenue);  // dcaf

  const Evaluation ev = windowed(4.0);
  const RunResult& run = ev.runs[3];
  double lo = 1e9, hi = 0;
  for (const PeriodRecord& p : run.periods) {
    lo = std::min(lo, p.lambda[0]);
    hi = std::max(hi, p.lambda[0]);
  }
  EXPECT_GT(hi, lo);  // the price follows the traffic
  // Each window meets its share, so the whole stream meets the whole budget.
  for (size_t m = 0; m < ev.budget.size(); ++m) EXPECT_LE(run.cost[m], ev.budget[m] * 1.01) << m;
  EXPECT_LE(BuildTable(*world, ev).rows[3].pct_of_oracle, 100.0 + 0.05);
}

// `allot-sim control` runs the same PID and MPC rows as `evaluate` and splits their periods
// into those inside a promotion and the rest.
TEST(ControlComparisonTest, MatchesTheEvaluationRowsAndSplitsPromotions) {
  const auto world = SmallWorld();
  ControlOptions control;
  control.seed = 4;
  control.requests = 3000;
  const ControlComparison c = CompareControllers(*world, control);
  EvalOptions options;
  options.seed = 4;
  options.requests = 3000;
  options.extra_rows.push_back(AnalyticControllerRows());
  const Table table = BuildTable(*world, Evaluate(*world, options));
  ASSERT_EQ(c.rows.size(), 2u);
  for (const ControlRow& row : c.rows) {
    const std::string name = "analytic+" + row.controller;
    const auto it = std::find_if(table.rows.begin(), table.rows.end(),
                                 [&](const TableRow& r) { return r.policy == name; });
    ASSERT_NE(it, table.rows.end()) << name;
    for (size_t m = 0; m < c.modules.size(); ++m) {
      EXPECT_DOUBLE_EQ(row.all[m].mu, it->modules[m].mu) << name << " " << m;
      EXPECT_DOUBLE_EQ(row.all[m].nu, it->modules[m].nu) << name << " " << m;
      EXPECT_EQ(row.spikes[m].periods + row.rest[m].periods, row.all[m].periods);
    }
  }
  EXPECT_GT(c.spike_periods, 0);  // the stream covers the noon promotion of a 120 s day
  // 12:00-12:30 real time is simulated seconds 60-62.5 of a 120 s day starting at midnight.
  EXPECT_TRUE(InPromotion(*world, 60.5));
  EXPECT_FALSE(InPromotion(*world, 63.0));
  EXPECT_FALSE(InPromotion(*world, 59.5));
  EXPECT_NE(FormatControlComparison(c).find("promotions"), std::string::npos);
  EXPECT_EQ(FormatControlComparisonCsv(c).find("controller,module,periods,mu,nu"), 0u);
}

TEST(CliTest, BadFlagsFailWithAMessage) {
  std::ostringstream out, err;
  const char* unknown[] = {"allot-sim", "evaluate", "--requets", "5"};
  EXPECT_EQ(RunCli(4, unknown, out, err), 2);
  EXPECT_NE(err.str().find("unknown flag --requets"), std::string::npos) << err.str();
  err.str("");
  const char* bad_number[] = {"allot-sim", "generate", "--out", "/tmp/x", "--requests", "ten"};
  EXPECT_EQ(RunCli(6, bad_number, out, err), 2);
  EXPECT_NE(err.str().find("--requests"), std::string::npos) << err.str();
  err.str("");
  const char* missing[] = {"allot-sim", "evaluate", "--world", "/nonexistent/world.yaml"};
  EXPECT_EQ(RunCli(4, missing, out, err), 1);
  EXPECT_NE(err.str().find("/nonexistent/world.yaml"), std::string::npos) << err.str();
  err.str("");
  const char* no_bundle[] = {"allot-sim", "generate", "--out",
                             "/tmp/x",    "--bundle", "/nonexistent/bundle"};
  EXPECT_EQ(RunCli(6, no_bundle, out, err), 2);
  EXPECT_NE(err.str().find("/nonexistent/bundle"), std::string::npos) << err.str();
  err.str("");
  const char* no_density[] = {"allot-sim", "evaluate", "--density", "0"};
  EXPECT_EQ(RunCli(4, no_density, out, err), 2);
  EXPECT_NE(err.str().find("--density must be a number in [0.01, 1000]"), std::string::npos)
      << err.str();
  err.str("");
  const char* control_flag[] = {"allot-sim", "control", "--bundles", "x"};
  EXPECT_EQ(RunCli(4, control_flag, out, err), 2);
  EXPECT_NE(err.str().find("unknown flag --bundles for control"), std::string::npos) << err.str();
  err.str("");
  const char* remote[] = {"allot-sim", "drive", "--target", "10.1.2.3:50051"};
  EXPECT_EQ(RunCli(4, remote, out, err), 2);
  EXPECT_NE(err.str().find("loopback"), std::string::npos) << err.str();
  err.str("");
  // Hindsight tables past the memory limit: refused before they are built, with the numbers.
  const char* small_memory[] = {"allot-sim",      "evaluate", "--requests",           "2000",
                                "--max-table-mb", "1",        "--offpolicy-requests", "0"};
  EXPECT_EQ(RunCli(8, small_memory, out, err), 1);
  EXPECT_NE(err.str().find("hindsight tables:"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("over the limit of 1 MB"), std::string::npos) << err.str();
}

}  // namespace
}  // namespace allot::sim
