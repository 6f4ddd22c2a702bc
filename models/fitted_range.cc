// Fitted feature ranges; see fitted_range.h.
#include "models/fitted_range.h"

#include <algorithm>
#include <stdexcept>

namespace allot::models {
namespace {

class ClippingScorer final : public ActionScorer {
 public:
  ClippingScorer(std::shared_ptr<const ActionScorer> inner,
                 std::vector<std::vector<FeatureGuard>> guards)
      : inner_(std::move(inner)), guards_(std::move(guards)) {}

  const std::string& version() const override { return inner_->version(); }
  const char* inference() const override { return inner_->inference(); }

  bool Score(size_t agent, std::span<const float> features, AgentScores* out) const override {
    thread_local std::vector<float> buffer;
    return inner_->Score(agent, Clip(agent, features, buffer), out);
  }

  bool ScoreReuse(size_t agent, std::span<const float> features, const AgentScores& scores,
                  std::span<const CachedStage> caches, std::span<double> retained) const override {
    thread_local std::vector<float> buffer;
    return inner_->ScoreReuse(agent, Clip(agent, features, buffer), scores, caches, retained);
  }

  bool Propose(size_t agent, std::span<const float> features, const AgentScores& scores,
               std::span<const double> module_lambda, size_t* joint) const override {
    thread_local std::vector<float> buffer;
    return inner_->Propose(agent, Clip(agent, features, buffer), scores, module_lambda, joint);
  }

 private:
  std::span<const float> Clip(size_t agent, std::span<const float> features,
                              std::vector<float>& buffer) const {
    return agent < guards_.size() ? ClipFeatures(guards_[agent], features, buffer) : features;
  }

  std::shared_ptr<const ActionScorer> inner_;
  std::vector<std::vector<FeatureGuard>> guards_;
};

}  // namespace

FittedRanges MeasureFittedRanges(const TrainingLog& log) {
  FittedRanges ranges(log.agents.size());
  ExtendFittedRanges(ranges, log);
  return ranges;
}

void ExtendFittedRanges(FittedRanges& ranges, const TrainingLog& log) {
  for (size_t i = 0; i < log.agents.size(); ++i) {
    const AgentColumns& c = log.agents[i];
    for (size_t row = 0; row < log.rows; ++row) {
      if (!c.decided[row]) continue;
      const float* x = &c.features[row * c.width];
      if (ranges[i].empty()) {
        for (size_t f = 0; f < c.width; ++f) ranges[i].push_back({x[f], x[f]});
        continue;
      }
      for (size_t f = 0; f < c.width; ++f) {
        ranges[i][f].min = std::min(ranges[i][f].min, x[f]);
        ranges[i][f].max = std::max(ranges[i][f].max, x[f]);
      }
    }
  }
}

void WriteFittedRanges(YAML::Emitter& out, const FittedRanges& ranges, const AllotConfig& config) {
  out << YAML::Key << "fitted_range" << YAML::Value << YAML::BeginMap;
  for (size_t i = 0; i < ranges.size() && i < config.agents.size(); ++i) {
    out << YAML::Key << config.agents[i].name << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const FeatureRange& r : ranges[i]) out << YAML::BeginSeq << r.min << r.max << YAML::EndSeq;
    out << YAML::EndSeq;
  }
  out << YAML::EndMap;
}

FittedRanges ReadFittedRanges(const YAML::Node& node, const AllotConfig& config) {
  if (!node) return {};
  FittedRanges ranges(config.agents.size());
  for (size_t i = 0; i < config.agents.size(); ++i) {
    const AgentConfig& agent = config.agents[i];
    const YAML::Node list = node[agent.name];
    if (!list || list.size() == 0) continue;
    if (!list.IsSequence() || list.size() != agent.features.size())
      throw std::runtime_error("fitted_range." + agent.name +
                               ": one [min, max] per feature expected");
    for (const YAML::Node& pair : list) {
      const FeatureRange r{pair[0].as<float>(), pair[1].as<float>()};
      if (!(r.min <= r.max))
        throw std::runtime_error("fitted_range." + agent.name + ": min above max");
      ranges[i].push_back(r);
    }
  }
  return ranges;
}

std::shared_ptr<const ActionScorer> ClipToFittedRanges(std::shared_ptr<const ActionScorer> inner,
                                                       const FittedRanges& ranges) {
  std::vector<std::vector<FeatureGuard>> guards(ranges.size());
  bool any = false;
  for (size_t i = 0; i < ranges.size(); ++i) {
    for (size_t f = 0; f < ranges[i].size(); ++f) {
      const FeatureRange& r = ranges[i][f];
      const float span = std::max(r.max - r.min, 1.0f);
      guards[i].push_back({f, r.min - span, r.max + span, false});
      any = true;
    }
  }
  if (!any) return inner;
  return std::make_shared<ClippingScorer>(std::move(inner), std::move(guards));
}

}  // namespace allot::models
