#include "models/unlogged_actions.h"

#include <utility>

namespace allot::models {
namespace {

class ExcludingScorer final : public ActionScorer {
 public:
  ExcludingScorer(std::shared_ptr<const ActionScorer> inner,
                  std::vector<std::vector<uint8_t>> excluded)
      : inner_(std::move(inner)), excluded_(std::move(excluded)) {}

  const std::string& version() const override { return inner_->version(); }
  const char* inference() const override { return inner_->inference(); }

  bool Score(size_t agent, std::span<const float> features, AgentScores* out) const override {
    if (!inner_->Score(agent, features, out)) return false;
    // Copied into the caller's (reused) buffer: scores may outlive this bundle in a reservoir.
    if (agent < excluded_.size() && excluded_[agent].size() == out->value.size()) {
      out->excluded.assign(excluded_[agent].begin(), excluded_[agent].end());
    } else {
      out->excluded.clear();
    }
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
  std::vector<std::vector<uint8_t>> excluded_;  // per agent, per joint action; empty: none
};

}  // namespace

std::shared_ptr<const ActionScorer> ExcludeUnloggedActions(
    std::shared_ptr<const ActionScorer> inner, const std::vector<std::vector<uint32_t>>& unlogged,
    const std::vector<size_t>& space_sizes) {
  std::vector<std::vector<uint8_t>> excluded(unlogged.size());
  bool any = false;
  for (size_t a = 0; a < unlogged.size() && a < space_sizes.size(); ++a) {
    if (unlogged[a].empty()) continue;
    excluded[a].assign(space_sizes[a], 0);
    for (const uint32_t j : unlogged[a])
      if (j < space_sizes[a]) excluded[a][j] = 1;
    any = true;
  }
  if (!any) return inner;
  return std::make_shared<ExcludingScorer>(std::move(inner), std::move(excluded));
}

}  // namespace allot::models
