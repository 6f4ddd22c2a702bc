// Every configuration of a bucket replays the same requests with the same measurement noise
// (common random numbers), so cost differences come from the configuration alone.
#include "sim/testbench.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>

#include "policy/analytic_scorer.h"
#include "sim/features.h"
#include "sim/request_stream.h"
#include "sim/seeds.h"

namespace allot::sim {
namespace {

// Per-request cost of the stage whose agent owns `decision` when its option is forced.
double StageCost(const World& world, const Request& r, const ChainSettings& settings, int stage) {
  const ChainModel& model = world.model();
  const StageResult recall = model.Recall(r, settings[kRecall]);
  if (stage == kRecall) return recall.cost;
  const StageResult prerank = model.Prerank(r, recall.out, settings[kPrerank]);
  if (stage == kPrerank) return prerank.cost;
  return model.Rank(r, prerank.out, settings[kRank]).cost;
}

// Runs the bucket for tb.seconds at tb.qps: per second the load of the next qps requests
// (cycling), a first-order lag and noise, and reads the mean utilisation after warm-up.
double MeasureCpu(const WorldConfig& w, const std::vector<double>& costs, uint64_t noise_seed) {
  const TestbenchConfig& tb = w.testbench;
  const double capacity_ms = 1000.0 * tb.machines * tb.cores;
  const double alpha = -std::expm1(-1.0 / w.load.lag_s);
  std::mt19937_64 rng(noise_seed);
  std::normal_distribution<double> noise(0.0, w.load.noise_sigma);
  const auto per_second = static_cast<int64_t>(std::llround(tb.qps));
  size_t next = 0;
  double lagged = 0.0;
  double sum = 0.0;
  int samples = 0;
  const int seconds = static_cast<int>(std::ceil(tb.seconds));
  for (int t = 0; t < seconds; ++t) {
    double load = 0.0;
    for (int64_t i = 0; i < per_second; ++i) {
      load += costs[next];
      next = (next + 1) % costs.size();
    }
    lagged += alpha * (load / capacity_ms - lagged);
    const double measured = std::max(0.0, lagged + (w.load.noise_sigma > 0 ? noise(rng) : 0.0));
    if (t >= tb.warmup_s) {
      sum += measured;
      ++samples;
    }
  }
  return samples ? sum / samples : 0.0;
}

// The channel sets a link decision is measured at (bit c: channel c). Each channel alone where
// channels may run alone. Otherwise, with A the first min_selected - 1 channels of the default
// set and x, y the first two channels outside A: A + {c} for every c outside A, A - {a} + {x, y}
// for every a in A, and A + {x, y}, one channel more, which tells the stage's fixed part from the
// channels' increments. Every set has a size within the decision's bounds, and the fit
// (models/cost_map.h) recovers every channel's increment from them.
std::vector<uint32_t> LinkSetsToMeasure(const DecisionConfig& decision, uint32_t default_set) {
  const auto n = static_cast<int>(decision.options.size());
  const int min = std::max(decision.min_selected, 1);
  const int max = decision.max_selected > 0 ? decision.max_selected : n;
  std::vector<uint32_t> sets;
  if (min == 1) {
    for (int c = 0; c < n; ++c) sets.push_back(1u << c);
    return sets;
  }
  uint32_t anchor = 0;  // A
  for (int c = 0; c < n && std::popcount(anchor) < min - 1; ++c) {
    if (default_set & (1u << c)) anchor |= 1u << c;
  }
  for (int c = 0; c < n && std::popcount(anchor) < min - 1; ++c) anchor |= 1u << c;
  std::vector<int> outside;
  for (int c = 0; c < n; ++c) {
    if (!(anchor & (1u << c))) {
      outside.push_back(c);
      sets.push_back(anchor | (1u << c));
    }
  }
  if (outside.size() >= 2) {
    const uint32_t pair = (1u << outside[0]) | (1u << outside[1]);
    for (int a = 0; a < n; ++a) {
      if (anchor & (1u << a)) sets.push_back((anchor & ~(1u << a)) | pair);
    }
    if (min + 1 <= max) sets.push_back(anchor | pair);
  }
  return sets;
}

// "hot" for one channel, "i2i+hot" for a set (option order), as the testbench CSV names them.
std::string LinkSetLabel(const DecisionConfig& decision, uint32_t set) {
  std::string label;
  for (size_t c = 0; c < decision.options.size(); ++c) {
    if (!(set & (1u << c))) continue;
    if (!label.empty()) label += '+';
    label += decision.options[c].label;
  }
  return label;
}

}  // namespace

std::vector<TestbenchRow> RunTestbench(const World& world, uint64_t seed) {
  const AllotConfig& config = world.config();
  const WorldConfig& w = world.world();
  const TestbenchConfig& tb = w.testbench;
  const AnalyticScorer scorer(config);
  const int buckets = config.value_model.num_buckets();
  const size_t per_bucket = static_cast<size_t>(tb.requests_per_bucket);

  // Replayed traffic, bucketed by the value the analytic model predicts from the recall features.
  StreamOptions stream_options;
  stream_options.seed = seed;
  stream_options.name = "testbench";
  const RequestStream stream(world, stream_options);
  std::vector<std::vector<Request>> bucketed(static_cast<size_t>(buckets));
  const AgentLayout& first = world.layout().at_stage(kRecall);
  std::vector<float> features(first.features.size());
  AgentScores scores;
  auto full = [&] {
    for (const auto& b : bucketed) {
      if (b.size() < per_bucket) return false;
    }
    return true;
  };
  for (int day = 0; day < 30 && !full(); ++day) {
    for (const Request& r : stream.Day(day)) {
      ComputeFeatures(first.features, r, Upstream(), features);
      if (!scorer.Score(first.agent, features, &scores)) continue;
      auto& b = bucketed[static_cast<size_t>(scores.value_bucket)];
      if (b.size() < per_bucket) b.push_back(r);
    }
  }

  std::vector<TestbenchRow> rows;
  const uint64_t noise_seed = StreamSeed(seed, "testbench/cpu-noise");
  for (const AgentLayout& agent : world.layout().chain()) {
    const AgentConfig& ac = config.agents[agent.agent];
    const auto defaults = agent.space.Choices(agent.space.safe_default());
    for (size_t d = 0; d < ac.decisions.size(); ++d) {
      const DecisionConfig& decision = ac.decisions[d];
      // What this decision is measured at: each option, or for a link decision channel sets.
      std::vector<uint32_t> measured;
      std::vector<std::string> labels;
      if (decision.kind == DecisionKind::kLink) {
        measured = LinkSetsToMeasure(decision, defaults[d]);
        for (uint32_t set : measured) labels.push_back(LinkSetLabel(decision, set));
      } else {
        for (size_t o = 0; o < decision.options.size(); ++o) {
          measured.push_back(WithOption(decision.kind, 0, static_cast<uint32_t>(o)));
          labels.push_back(decision.options[o].label);
        }
      }
      for (size_t o = 0; o < measured.size(); ++o) {
        // Safe defaults everywhere except this decision.
        std::vector<uint32_t> choices(defaults.begin(), defaults.end());
        choices[d] = measured[o];
        const size_t joint = agent.space.IndexOf(choices);
        if (joint >= agent.space.size()) continue;  // a combination the config forbids
        ChainSettings settings = world.layout().reference();
        settings[agent.stage] = agent.settings[joint];
        for (int b = 0; b < buckets; ++b) {
          const auto& requests = bucketed[static_cast<size_t>(b)];
          if (requests.empty()) continue;
          std::vector<double> costs;
          double true_sum = 0.0;
          for (const Request& r : requests) {
            costs.push_back(StageCost(world, r, settings, agent.stage));
            true_sum += costs.back();
          }
          TestbenchRow row;
          row.agent = ac.name;
          row.module = ac.module;
          row.decision = decision.name;
          row.kind = DecisionKindName(decision.kind);
          row.option = labels[o];
          row.queue_length =
              decision.kind == DecisionKind::kLink ? 0 : decision.options[o].queue_length;
          row.value_bucket = b;
          row.qps = tb.qps;
          row.machines = tb.machines;
          row.cores = tb.cores;
          const double p = MeasureCpu(w, costs, noise_seed);
          row.cpu_pct = 100.0 * p;
          row.cost_ms = p * tb.machines * tb.cores / tb.qps * 1000.0;
          row.true_cost_ms = true_sum / static_cast<double>(costs.size());
          row.requests = static_cast<int64_t>(requests.size());
          rows.push_back(row);
        }
      }
    }
  }
  return rows;
}

std::string TestbenchCsv(const std::vector<TestbenchRow>& rows) {
  std::ostringstream out;
  out << "agent,module,decision,kind,option,queue_length,value_bucket,qps,machines,cores,cpu_pct,"
         "cost_ms_per_request,"
         "true_cost_ms,requests\n";
  char buf[256];
  for (const TestbenchRow& r : rows) {
    std::snprintf(buf, sizeof(buf), "%d,%d,%.3f,%d,%d,%.6f,%.6f,%.6f,%lld", r.queue_length,
                  r.value_bucket, r.qps, r.machines, r.cores, r.cpu_pct, r.cost_ms, r.true_cost_ms,
                  static_cast<long long>(r.requests));
    out << r.agent << "," << r.module << "," << r.decision << "," << r.kind << "," << r.option
        << "," << buf << "\n";
  }
  return out.str();
}

}  // namespace allot::sim
