// Streams a day at a time through an online run and writes one Transition per request; a pilot
// sample from its own seed stream sets the starting lambdas.
#include "sim/generate.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "policy/analytic_scorer.h"
#include "policy/pid_controller.h"
#include "sim/evaluation.h"
#include "sim/policies.h"
#include "sim/request_stream.h"
#include "sim/runner.h"
#include "sim/seeds.h"
#include "sim/transition_io.h"

namespace allot::sim {
namespace {

// Logged timestamps are uncompressed world time from 2024-01-01T00:00:00Z.
constexpr int64_t kLogEpochMs = 1'704'067'200'000;

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string JsonNumber(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6f", v);
  return buf;
}

}  // namespace

void ToTransition(const World& world, const RequestRecord& rec, uint64_t seed, int64_t index,
                  v1::Transition* t) {
  const Request& r = *rec.request;
  t->Clear();
  t->set_request_id("gen-" + std::to_string(seed) + "-" + std::to_string(index));
  t->set_user_id("u" + Hex(r.user));
  t->set_timestamp_ms(kLogEpochMs + static_cast<int64_t>(std::llround(r.real_s * 1000.0)));
  const AllotConfig& config = world.config();
  for (const StepRecord& s : rec.steps) {
    // An agent skipped before deciding saw nothing; one that chose to reuse its own stage's cached
    // output is logged for the reuse decision, marked, with what it chose and no cost.
    if (!s.decided && !s.executed) continue;
    v1::AgentStep* step = t->add_steps();
    step->set_agent(config.agents[s.agent].name);
    for (float f : s.features) step->add_features(f);
    step->set_joint_action(s.executed ? s.applied : s.chosen);
    step->set_cost(s.executed ? s.cost : 0.0);
    step->set_served_from_cache(!s.executed);
    step->set_compute_price(s.lambda);
    step->set_explored(s.explored);
    step->set_propensity(s.propensity);
  }
  t->set_revenue(rec.revenue);
  t->set_user_value(r.value);
  for (const CachedStage& c : rec.caches) {
    v1::StageCache* cache = t->add_cache();
    cache->set_stage(static_cast<v1::Stage>(c.stage));
    cache->set_present(c.present);
    cache->set_age_seconds(c.age_s);
    cache->set_size(c.size);
  }
  t->set_cache_reuse(static_cast<v1::CacheReuse>(rec.cache_reuse));
  t->set_cache_reuse_propensity(rec.cache_propensity);
  t->set_cache_saved_cost(rec.saved_cost);
  t->set_time_slot(static_cast<uint32_t>(std::floor(r.hour * 4.0)) % 96);
  t->set_degradation_level(static_cast<uint32_t>(rec.degradation));
}

GenerateSummary Generate(const World& world, const GenerateOptions& options) {
  const AllotConfig& config = world.config();
  auto shared_config = std::make_shared<const AllotConfig>(config);
  StreamOptions stream_options;
  stream_options.seed = options.seed;
  stream_options.name = "generate";
  const RequestStream stream(world, stream_options);

  // Starting lambdas: the analytic rule's budget-meeting lambdas on a pilot sample (a stream of
  // its own, so the logs do not contain the requests they were tuned on).
  StreamOptions pilot_options = stream_options;
  pilot_options.name = "generate-pilot";
  const RequestStream pilot_stream(world, pilot_options);
  const std::vector<Request> pilot =
      pilot_stream.Take(static_cast<size_t>(std::min<int64_t>(options.requests, 5000)));
  const double pilot_s = pilot.empty() ? 0.0 : pilot.back().sim_s;
  const std::vector<double> budget = world.Budgets(pilot_s, pilot_stream.scale());
  const std::vector<double> lambdas = TuneDcafLambdas(
      world, pilot, budget, config.controller.period_s, pilot_stream.scale(), options.scorer);

  std::shared_ptr<const ActionScorer> scorer =
      options.scorer ? options.scorer : std::make_shared<AnalyticScorer>(config);
  EpsilonGreedyPolicy policy(
      world, std::make_unique<ScorerPolicy>(scorer->version(), shared_config, scorer),
      options.epsilon, StreamSeed(options.seed, "explore"));
  PidController controller(config);  // keeps the exploration policy near the CPU target
  ShardedTransitionWriter writer(options.out_dir, options.shards);
  GenerateSummary summary;
  summary.agent_cost.assign(config.agents.size(), 0.0);
  v1::Transition transition;

  RunOptions run;
  run.online = true;
  run.period_s = config.controller.period_s;
  run.scale = stream.scale();
  run.lambdas = lambdas;
  run.controller = &controller;
  run.curve_samples = 256;  // the PID needs the curve only for the guard's cost cap
  run.noise_seed = StreamSeed(options.seed, "generate/cpu-noise");
  run.record_features = true;
  run.on_request = [&](const RequestRecord& rec) {
    ToTransition(world, rec, options.seed, summary.requests, &transition);
    writer.Write(transition);
    ++summary.requests;
    summary.revenue += transition.revenue();
    summary.expected_revenue += rec.expected_revenue;
    summary.cache_reuses += rec.cache_reuse != 0;
    for (const v1::AgentStep& step : transition.steps()) {
      ++summary.steps;
      summary.explored_steps += step.explored();
    }
    for (const StepRecord& s : rec.steps) summary.agent_cost[s.agent] += s.executed ? s.cost : 0.0;
  };
  Runner runner(world, policy, run, "generate");
  for (int day = 0; summary.requests < options.requests; ++day) {
    const std::vector<Request> requests = stream.Day(day);
    for (const Request& r : requests) {
      if (summary.requests >= options.requests) break;
      runner.Process(r);
    }
    if (day > 100000) break;  // a world with no traffic
  }
  runner.Finish();
  writer.Close();
  summary.shard_counts = writer.counts();
  summary.files = writer.paths();

  summary.manifest = options.out_dir + "/manifest.json";
  std::ofstream manifest(summary.manifest);
  manifest << "{\n  \"format\": \"length-delimited allot.v1.Transition\",\n"
           << "  \"requests\": " << summary.requests << ",\n  \"seed\": " << options.seed
           << ",\n  \"epsilon\": " << JsonNumber(options.epsilon) << ",\n  \"policy\": \""
           << scorer->version() << "\",\n  \"config_version\": \"" << config.version
           << "\",\n  \"world_version\": \"" << world.world().version << "\",\n  \"files\": [";
  for (size_t i = 0; i < summary.files.size(); ++i) {
    const std::string name = summary.files[i].substr(summary.files[i].find_last_of('/') + 1);
    manifest << (i ? ", " : "") << "{\"path\": \"" << name
             << "\", \"transitions\": " << summary.shard_counts[i] << "}";
  }
  manifest << "],\n  \"steps\": " << summary.steps
           << ",\n  \"explored_steps\": " << summary.explored_steps
           << ",\n  \"cache_reuses\": " << summary.cache_reuses
           << ",\n  \"revenue\": " << JsonNumber(summary.revenue) << ",\n  \"cost_core_ms\": {";
  for (size_t a = 0; a < config.agents.size(); ++a) {
    manifest << (a ? ", " : "") << "\"" << config.agents[a].name
             << "\": " << JsonNumber(summary.agent_cost[a]);
  }
  manifest << "},\n  \"timestamp_ms\": \"uncompressed world time since 2024-01-01T00:00:00Z\",\n"
           << "  \"time_slot\": \"15-minute slot of the day, 0-95\",\n"
           << "  \"user_value\": \"latent value potential of the request (simulation only)\"\n}\n";
  if (!manifest) throw std::runtime_error("cannot write '" + summary.manifest + "'");
  return summary;
}

}  // namespace allot::sim
