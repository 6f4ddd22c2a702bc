// Feature values: user features are noisy views of latent traits; stage scores mix the value
// captured upstream with the request's value, so later agents see more than the user features.
#include "sim/features.h"

#include <cmath>
#include <numbers>

#include "policy/config.h"

namespace allot::sim {
namespace {

struct FeatureInfo {
  const char* name;
  Feature feature;
  int first_stage;  // earliest stage whose agent can observe it
};

constexpr FeatureInfo kFeatures[] = {
    {"user_hist_value_log", Feature::kUserHistValueLog, kRecall},
    {"user_activity", Feature::kUserActivity, kRecall},
    {"ctr_7d", Feature::kCtr7d, kRecall},
    {"is_new_user", Feature::kIsNewUser, kRecall},
    {"hour_sin", Feature::kHourSin, kRecall},
    {"hour_cos", Feature::kHourCos, kRecall},
    {"page_index", Feature::kPageIndex, kRecall},
    {"query_len", Feature::kQueryLen, kRecall},
    {"recall_candidates_log", Feature::kRecallCandidatesLog, kPrerank},
    {"recall_top_score", Feature::kRecallTopScore, kPrerank},
    {"prerank_top_score", Feature::kPrerankTopScore, kRank},
    {"prerank_candidates_log", Feature::kPrerankCandidatesLog, kRank},
};

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace

const std::vector<std::string>& KnownFeatureNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const FeatureInfo& f : kFeatures) out.emplace_back(f.name);
    return out;
  }();
  return names;
}

Feature ParseFeature(const std::string& name, int stage, const std::string& path) {
  for (const FeatureInfo& f : kFeatures) {
    if (name != f.name) continue;
    if (stage < f.first_stage) {
      throw ConfigError(path + ": feature '" + name + "' is not observable at stage " +
                        StageName(stage) + " (it needs the output of stage " +
                        StageName(f.first_stage - 1) + ")");
    }
    return f.feature;
  }
  std::string known;
  for (const FeatureInfo& f : kFeatures) known += (known.empty() ? "" : ", ") + std::string(f.name);
  throw ConfigError(path + ": unknown feature '" + name + "' (the simulator knows: " + known + ")");
}

void ComputeFeatures(std::span<const Feature> features, const Request& r, const Upstream& up,
                     std::span<float> out) {
  const double angle = 2.0 * std::numbers::pi * r.hour / 24.0;
  const double log_value = std::log(std::max(r.value, 1e-6));
  for (size_t i = 0; i < features.size(); ++i) {
    double x = 0.0;
    switch (features[i]) {
      case Feature::kUserHistValueLog:
        x = r.hist_value_log;
        break;
      case Feature::kUserActivity:
        x = r.activity;
        break;
      case Feature::kCtr7d:
        x = r.ctr_7d;
        break;
      case Feature::kIsNewUser:
        x = r.is_new ? 1.0 : 0.0;
        break;
      case Feature::kHourSin:
        x = std::sin(angle);
        break;
      case Feature::kHourCos:
        x = std::cos(angle);
        break;
      case Feature::kPageIndex:
        x = r.page_index;
        break;
      case Feature::kQueryLen:
        x = r.query_len;
        break;
      case Feature::kRecallCandidatesLog:
        x = std::log1p(up.recall.count);
        break;
      case Feature::kRecallTopScore:
        // The best recall match reflects both how much of the user's interest recall found and
        // how responsive the user is today.
        x = Sigmoid(2.0 * (up.recall.mass - 0.5) + kRecallTopScoreValueWeight * log_value +
                    r.score_noise[kRecall]);
        break;
      case Feature::kPrerankTopScore:
        x = Sigmoid(2.0 * (up.prerank.mass - 0.4) + kPrerankTopScoreValueWeight * log_value +
                    r.score_noise[kPrerank]);
        break;
      case Feature::kPrerankCandidatesLog:
        x = std::log1p(up.prerank.count);
        break;
    }
    out[i] = static_cast<float>(x);
  }
}

}  // namespace allot::sim
