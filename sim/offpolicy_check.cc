// The log never leaves memory: ToTransition and TrainingLogBuilder are the generator's and the
// trainer's own code, so the check sees exactly what a user's logs would carry.
#include "sim/offpolicy_check.h"

#include <cmath>
#include <cstdio>
#include <numeric>
#include <stdexcept>

#include "policy/analytic_scorer.h"
#include "sim/evaluation.h"
#include "sim/generate.h"
#include "sim/policies.h"
#include "sim/seeds.h"

namespace allot::sim {
namespace {

// Every k-th request, so that a sample still covers the whole day in time order.
std::vector<Request> Strided(const std::vector<Request>& all, size_t wanted) {
  if (wanted == 0 || wanted >= all.size()) return all;
  const double stride = static_cast<double>(all.size()) / static_cast<double>(wanted);
  std::vector<Request> out;
  out.reserve(wanted);
  for (size_t i = 0; i < wanted; ++i)
    out.push_back(all[static_cast<size_t>(std::floor(static_cast<double>(i) * stride))]);
  return out;
}

OffPolicyTruth TruthOf(const RunResult& run, const std::vector<double>& lambdas) {
  OffPolicyTruth t;
  if (run.requests == 0) return t;
  const double n = static_cast<double>(run.requests);
  double priced = 0.0;
  for (size_t m = 0; m < run.cost.size(); ++m) {
    t.cost += run.cost[m] / n;
    priced += (m < lambdas.size() ? lambdas[m] : 0.0) * run.cost[m] / n;
  }
  t.revenue = run.revenue / n;
  t.net = t.revenue - priced;
  return t;
}

}  // namespace

OffPolicyCheck CheckOffPolicy(const World& world, const std::vector<Request>& held_out,
                              double scale, const std::vector<double>& lambdas,
                              const std::vector<Candidate>& candidates,
                              const OffPolicyCheckOptions& options) {
  const std::vector<Request> requests = Strided(held_out, options.requests);
  const auto config = std::make_shared<const AllotConfig>(world.config());
  RunOptions run = EvaluationRunOptions(world, scale, options.seed);
  run.lambdas = lambdas;

  models::TrainingLogBuilder builder(world.config());
  v1::Transition transition;
  int64_t index = 0;
  std::string problem;
  RunOptions logging_run = run;
  logging_run.record_features = true;
  logging_run.on_request = [&](const RequestRecord& rec) {
    ToTransition(world, rec, options.seed, index++, &transition);
    const std::string p = builder.Add(transition);
    if (!p.empty() && problem.empty()) problem = p;
  };
  EpsilonGreedyPolicy logging(
      world,
      std::make_unique<ScorerPolicy>("analytic", config,
                                     std::make_shared<AnalyticScorer>(world.config())),
      options.epsilon, StreamSeed(options.seed, "offpolicy/explore"));
  OffPolicyCheck check;
  check.logging = TruthOf(RunRequests(world, requests, logging, logging_run, "logging"), lambdas);
  if (!problem.empty())
    throw std::logic_error("off-policy check: the simulator logged an invalid record: " + problem);
  const models::TrainingLog log = builder.Finish();
  std::vector<int64_t> rows(log.rows);
  std::iota(rows.begin(), rows.end(), 0);
  check.requests = static_cast<int64_t>(log.rows);

  for (const auto& [name, scorer] : candidates) {
    ScorerPolicy policy(name, config, scorer);
    OffPolicyCheckRow row;
    row.name = name;
    row.truth = TruthOf(RunRequests(world, requests, policy, run, name), lambdas);
    row.estimate = models::EvaluateOffPolicy(log, rows, world.config(), scorer);
    check.rows.push_back(std::move(row));
  }
  return check;
}

std::string FormatOffPolicyCheck(const OffPolicyCheck& check) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line),
                "off-policy check: %lld requests logged epsilon-greedy around the analytic rule "
                "at fixed lambdas;\n  per request; [95%% interval], * = the interval misses the "
                "simulated truth\n",
                static_cast<long long>(check.requests));
  out += line;
  std::snprintf(line, sizeof(line), "  logging policy: revenue %.4g, core-ms %.4g, net %.4g\n",
                check.logging.revenue, check.logging.cost, check.logging.net);
  out += line;
  const auto cell = [](const models::Interval& i, double truth) {
    char buf[96];
    const bool covers = i.lower <= truth && truth <= i.upper;
    std::snprintf(buf, sizeof(buf), "%.4g [%.4g, %.4g]%s", i.estimate, i.lower, i.upper,
                  covers ? " " : "*");
    return std::string(buf);
  };
  for (const OffPolicyCheckRow& row : check.rows) {
    const models::OffPolicyReport& e = row.estimate;
    if (!e.unusable.empty()) {
      out += "  " + row.name + ": no estimate: " + e.unusable + "\n";
      continue;
    }
    std::snprintf(line, sizeof(line), "  %s (matched %lld, effective sample size %.1f)\n",
                  row.name.c_str(), static_cast<long long>(e.matched), e.effective_sample_size);
    out += line;
    const auto outcome = [&](const char* name, const models::OutcomeEstimates& o, double truth) {
      std::snprintf(line, sizeof(line), "    %-8s truth %-9.4g ips %-30s snips %-30s dr %s\n", name,
                    truth, cell(o.ips, truth).c_str(), cell(o.snips, truth).c_str(),
                    cell(o.dr, truth).c_str());
      out += line;
    };
    outcome("revenue", e.revenue, row.truth.revenue);
    outcome("core-ms", e.cost, row.truth.cost);
    outcome("net", e.net, row.truth.net);
  }
  return out;
}

}  // namespace allot::sim
