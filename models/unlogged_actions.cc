#include "models/unlogged_actions.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace allot::models {
namespace {

// Per agent: the excluded mask and the share of value kept, per joint action (each empty when
// none applies).
struct AgentEvidence {
  std::vector<uint8_t> excluded;
  std::vector<double> share;
};

class EvidenceScorer final : public ActionScorer {
 public:
  EvidenceScorer(std::shared_ptr<const ActionScorer> inner, std::vector<AgentEvidence> agents)
      : inner_(std::move(inner)), agents_(std::move(agents)) {}

  const std::string& version() const override { return inner_->version(); }
  const char* inference() const override { return inner_->inference(); }

  bool Score(size_t agent, std::span<const float> features, AgentScores* out) const override {
    // The inner scorer leaves `excluded` empty (AgentScores): only a mask of ours is set here.
    if (!inner_->Score(agent, features, out)) return false;
    if (agent >= agents_.size()) return true;
    const AgentEvidence& evidence = agents_[agent];
    // Copied into the caller's (reused) buffer: scores may outlive this bundle in a reservoir.
    if (evidence.excluded.size() == out->value.size())
      out->excluded.assign(evidence.excluded.begin(), evidence.excluded.end());
    if (evidence.share.size() == out->value.size())
      for (size_t j = 0; j < out->value.size(); ++j) out->value[j] *= evidence.share[j];
    return true;
  }

  bool ScoreReuse(size_t agent, std::span<const float> features, const AgentScores& scores,
                  std::span<const CachedStage> caches, std::span<double> retained) const override {
    return inner_->ScoreReuse(agent, features, scores, caches, retained);
  }

  bool Propose(size_t agent, std::span<const float> features, const AgentScores& scores,
               std::span<const double> module_lambda, size_t* joint) const override {
    return inner_->Propose(agent, features, scores, module_lambda, joint);
  }

 private:
  std::shared_ptr<const ActionScorer> inner_;
  std::vector<AgentEvidence> agents_;  // per agent
};

}  // namespace

double LoggedEvidenceShare(int64_t logged) {
  return std::exp(-1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(logged, 1))));
}

std::vector<double> LoggedEvidenceShares(const std::vector<int64_t>& logged) {
  std::vector<double> share;
  share.reserve(logged.size());
  for (const int64_t n : logged) share.push_back(LoggedEvidenceShare(n));
  return share;
}

std::shared_ptr<const ActionScorer> ServeWithinLoggedEvidence(
    std::shared_ptr<const ActionScorer> inner, const LoggedEvidence& evidence,
    const std::vector<size_t>& space_sizes) {
  std::vector<AgentEvidence> agents(space_sizes.size());
  bool any = false;
  for (size_t a = 0; a < space_sizes.size(); ++a) {
    if (a < evidence.unlogged.size() && !evidence.unlogged[a].empty()) {
      agents[a].excluded.assign(space_sizes[a], 0);
      for (const uint32_t j : evidence.unlogged[a])
        if (j < space_sizes[a]) agents[a].excluded[j] = 1;
      any = true;
    }
    if (a < evidence.logged_counts.size() && evidence.logged_counts[a].size() == space_sizes[a]) {
      agents[a].share = LoggedEvidenceShares(evidence.logged_counts[a]);
      any = true;
    }
  }
  if (!any) return inner;
  return std::make_shared<EvidenceScorer>(std::move(inner), std::move(agents));
}

}  // namespace allot::models
