// Truth from the chain model without noise or load effects: the same world the oracle solves.
#include "sim/model_quality.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "models/rank_correlation.h"
#include "sim/features.h"

namespace allot::sim {

void DifferenceSlope::Add(std::span<const double> predicted, std::span<const double> truth) {
  if (predicted.empty()) return;
  const double n = static_cast<double>(predicted.size());
  const double mean_p = std::accumulate(predicted.begin(), predicted.end(), 0.0) / n;
  const double mean_t = std::accumulate(truth.begin(), truth.end(), 0.0) / n;
  if (!(mean_p > 0 && mean_t > 0)) return;
  for (size_t j = 0; j < predicted.size(); ++j) {
    const double dp = predicted[j] / mean_p - 1, dt = truth[j] / mean_t - 1;
    cross_ += dp * dt;
    predicted_sq_ += dp * dp;
  }
}

std::vector<AgentQuality> MeasureModelQuality(const World& world, std::span<const Request> requests,
                                              const ActionScorer& scorer, size_t max_requests) {
  const ChainLayout& layout = world.layout();
  const ChainModel& model = world.model();
  const size_t n = std::min(max_requests, requests.size());
  std::vector<AgentQuality> out;
  for (int stage = 0; stage < kNumStages; ++stage) {
    const AgentLayout& agent = layout.at_stage(stage);
    AgentQuality q;
    q.agent = world.config().agents[agent.agent].name;
    std::vector<double> predicted, truth;
    DifferenceSlope value_slope, cost_slope;
    double within = 0;
    size_t within_count = 0;
    AgentScores scores;
    std::vector<float> features(agent.features.size());
    for (size_t i = 0; i < n; ++i) {
      const Request& r = requests[i];
      Upstream up;
      StageOutput current;
      for (int s = 0; s < stage; ++s) {
        current = model.Run(s, r, current, layout.reference()[s]).out;
        if (s == kRecall) up.recall = current;
        if (s == kPrerank) up.prerank = current;
      }
      ComputeFeatures(agent.features, r, up, features);
      if (!scorer.Score(agent.agent, features, &scores)) continue;
      std::vector<double> p, t, cost_p, cost_t;
      for (size_t j = 0; j < agent.space.size(); ++j) {
        const StageResult own = model.Run(stage, r, current, agent.settings[j]);
        StageOutput out_j = own.out;
        for (int s = stage + 1; s < kNumStages; ++s)
          out_j = model.Run(s, r, out_j, layout.reference()[s]).out;
        p.push_back(scores.value[j]);
        t.push_back(ChainModel::Revenue(r, out_j));
        cost_p.push_back(scores.cost[j]);
        cost_t.push_back(own.cost / r.cost_noise[stage]);  // the noise multiplies the cost
      }
      value_slope.Add(p, t);
      cost_slope.Add(cost_p, cost_t);
      predicted.insert(predicted.end(), p.begin(), p.end());
      truth.insert(truth.end(), t.begin(), t.end());
      if (p.size() > 1) {
        within += models::SpearmanCorrelation(p, t);
        ++within_count;
      }
      ++q.requests;
    }
    q.r_s = models::SpearmanCorrelation(predicted, truth);
    q.r_s_within = within_count ? within / static_cast<double>(within_count) : 0.0;
    q.value_slope = value_slope.slope();
    q.cost_slope = cost_slope.slope();
    out.push_back(q);
  }
  return out;
}

void PrintModelQuality(const std::string& name, const std::vector<AgentQuality>& quality,
                       std::ostream& out) {
  out << "model quality " << name << " (r_s over all options / within a request):";
  for (const AgentQuality& q : quality) {
    char line[128];
    std::snprintf(line, sizeof(line), " %s %.3f / %.3f", q.agent.c_str(), q.r_s, q.r_s_within);
    out << line;
  }
  out << "\nmodel scale " << name
      << " (true on predicted relative differences between a request's options, value / own "
         "cost; 1 is right):";
  for (const AgentQuality& q : quality) {
    char line[128];
    std::snprintf(line, sizeof(line), " %s %.3f / %.3f", q.agent.c_str(), q.value_slope,
                  q.cost_slope);
    out << line;
  }
  out << "\n";
}

}  // namespace allot::sim
