// Bundle loading: manifest -> architecture -> networks -> weights -> schema check -> scorer.
#include "models/bundle.h"

#include <ATen/Parallel.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <sstream>

#include "models/bundle_models.h"
#include "models/fast_scorer.h"
#include "models/fitted_range.h"
#include "models/maddpg.h"
#include "models/served_scores.h"
#include "models/unlogged_actions.h"
#include "policy/action_space.h"
#include "policy/analytic_scorer.h"
#include "policy/yaml_map.h"

namespace allot::models {
namespace {

class LearnedScorer final : public ActionScorer {
 public:
  LearnedScorer(std::string version, BundleModels models, const AllotConfig& config,
                const std::vector<double>& calib_a, const std::vector<double>& calib_b,
                ServedCostMap costs, bool reuse_model)
      : version_(std::move(version)),
        models_(std::move(models)),
        value_model_(config.value_model),
        costs_(std::move(costs)),
        reuse_model_(reuse_model) {
    models_->eval();
    for (size_t i = 0; i < config.agents.size(); ++i) {
      serving_.emplace_back(config, i, calib_a[i], calib_b[i], costs_);
      digits_.push_back(AllJointDigits(serving_.back().space));
      actions_.push_back(models_->ActionCode(i, digits_.back()));
    }
    actor_prices_ = models_->ActorPrices(config);
  }

  const std::string& version() const override { return version_; }
  const char* inference() const override { return "libtorch"; }

  bool Score(size_t agent, std::span<const float> features, AgentScores* out) const override {
    if (agent >= digits_.size() || static_cast<int64_t>(features.size()) != models_->widths[agent])
      return false;
    c10::InferenceMode guard;
    BundleModelsImpl& models = *models_.ptr();  // forward() is not const; inference mutates nothing
    const torch::Tensor x =
        torch::from_blob(const_cast<float*>(features.data()),
                         {1, static_cast<int64_t>(features.size())}, torch::kFloat);
    const double log_value = models.value[agent]->forward(x).item<float>();
    const int bucket =
        AnalyticScorer::Bucket(value_model_, std::exp(std::clamp(log_value, -30.0, 30.0)));
    const torch::Tensor obs = models.Observation(x, torch::full({1}, bucket, torch::kInt64));
    const int64_t n = digits_[agent].size(0);
    const torch::Tensor obs_all = obs.expand({n, obs.size(1)});
    const torch::Tensor q = models.q[agent]->forward(obs_all, digits_[agent]).mean(1).contiguous();
    const torch::Tensor log_cost =
        models.LogCost(agent, obs_all, actions_[agent]).t().contiguous();  // [outputs, n]
    FinishScores(serving_[agent], value_model_, costs_, log_value, q.data_ptr<float>(),
                 log_cost.data_ptr<float>(), static_cast<size_t>(log_cost.size(0)), out);
    return true;
  }

  bool ScoreReuse(size_t agent, std::span<const float> features, const AgentScores& scores,
                  std::span<const CachedStage> caches, std::span<double> retained) const override {
    if (!reuse_model_ || agent != 0 || static_cast<int64_t>(features.size()) != models_->widths[0])
      return false;
    c10::InferenceMode guard;
    BundleModelsImpl& models = *models_.ptr();
    std::vector<float> row;
    for (size_t c = 0; c < caches.size(); ++c) {
      if (!ReuseInputRow(features, scores.value_bucket, static_cast<size_t>(models.obs_dim(0)),
                         caches[c], &row)) {
        retained[c] = 0.0;
        continue;
      }
      const torch::Tensor x =
          torch::from_blob(row.data(), {1, static_cast<int64_t>(row.size())}, torch::kFloat);
      retained[c] =
          RetainedShare(models.reuse->forward(x).item<double>(), models.arch.reuse_share_capped);
    }
    return true;
  }

  bool Propose(size_t agent, std::span<const float> features, const AgentScores& scores,
               std::span<const double> module_lambda, size_t* joint) const override {
    if (!actor_prices_ || agent >= digits_.size() ||
        static_cast<int64_t>(features.size()) != models_->widths[agent] ||
        scores.value_bucket < 0 || scores.value_bucket >= models_->buckets)
      return false;
    c10::InferenceMode guard;
    BundleModelsImpl& models = *models_.ptr();
    const torch::Tensor x =
        torch::from_blob(const_cast<float*>(features.data()),
                         {1, static_cast<int64_t>(features.size())}, torch::kFloat);
    const torch::Tensor obs =
        models.Observation(x, torch::full({1}, scores.value_bucket, torch::kInt64));
    std::vector<float> prices(actor_prices_->agents());
    actor_prices_->WritePrices(module_lambda, prices.data());
    const torch::Tensor raw =
        ActorRaw(models, agent, obs,
                 torch::from_blob(prices.data(), {1, static_cast<int64_t>(prices.size())},
                                  torch::kFloat))
            .contiguous();
    *joint = ActorJoint(serving_[agent].space, models.continuous[agent], raw.data_ptr<float>());
    return true;
  }

 private:
  std::string version_;
  BundleModels models_;
  ValueModelConfig value_model_;
  ServedCostMap costs_;
  bool reuse_model_ = false;
  std::vector<AgentServing> serving_;
  std::vector<torch::Tensor> digits_;         // per agent: [A, D]
  std::vector<torch::Tensor> actions_;        // per agent: [A, sum of choices] one-hot
  std::optional<ActorServing> actor_prices_;  // set when the bundle's agents have actors
};

// models.min_offpolicy_ratio: a bundle must have been estimated, on its validation logs, to net at
// least that fraction of what the logging policy netted, with 95% confidence: the lower bound of
// the doubly robust interval is compared. The point estimate is not enough: where the candidate
// rarely chose what was logged (a small effective sample size), it can be several times the
// truth with an interval to match.
void CheckOffPolicyFloor(const BundleManifest& manifest, double min_ratio) {
  if (min_ratio <= 0.0) return;
  const std::string floor = "models.min_offpolicy_ratio " + std::to_string(min_ratio);
  if (!manifest.offpolicy)
    throw BundleError("has no off-policy estimate (offpolicy in " + std::string(kManifestFile) +
                      ") and " + floor + " requires one; retrain it with allot-train");
  const OffPolicyReport& r = *manifest.offpolicy;
  if (!r.unusable.empty())
    throw BundleError("has no usable off-policy estimate (" + r.unusable + ") and " + floor +
                      " requires one");
  const double needed = min_ratio * r.net.logged;
  if (!(r.net.dr.lower >= needed)) {
    throw BundleError("off-policy estimate of net return per request " +
                      std::to_string(r.net.dr.estimate) + " (doubly robust, 95% lower bound " +
                      std::to_string(r.net.dr.lower) + ", effective sample size " +
                      std::to_string(r.effective_sample_size) + ") is below " + floor +
                      " x the logging policy's " + std::to_string(r.net.logged));
  }
}

}  // namespace

std::shared_ptr<const ActionScorer> LoadBundle(const std::string& dir, const AllotConfig& config,
                                               Inference inference) {
  const std::string where = "bundle " + dir + ": ";
  try {
    const BundleManifest manifest =
        ReadManifest((std::filesystem::path(dir) / kManifestFile).string(), config);
    CheckOffPolicyFloor(manifest, config.models.min_offpolicy_ratio);
    std::vector<double> calib_a, calib_b;
    for (const AgentCalibration& c : manifest.calibration) {
      calib_a.push_back(c.a);
      calib_b.push_back(c.b);
    }
    ServedCostMap costs;
    if (!manifest.cost_source.empty()) {
      for (const std::string& kind : manifest.cost_source) costs.use.push_back(kind == "map");
      if (std::find(costs.use.begin(), costs.use.end(), true) != costs.use.end()) {
        std::string text;
        try {
          text = ReadConfigFile((std::filesystem::path(dir) / kCostMapFile).string());
        } catch (const ConfigError&) {
          throw BundleError(where + "cannot read " + kCostMapFile);
        }
        costs.map = std::make_shared<const CostMap>(ParseCostMapYaml(text, kCostMapFile, config));
      }
    }
    const bool reuse_model = manifest.reuse_model;
    const Architecture& arch = manifest.architecture;
    at::set_num_threads(1);  // one intra-op thread: requests run in parallel on gRPC's threads
    BundleModels models(config, arch);
    torch::serialize::InputArchive archive;
    archive.load_from((std::filesystem::path(dir) / kWeightsFile).string());
    models->load(archive);
    models->eval();
    const std::string& version = manifest.version;
    const FittedRanges& ranges = manifest.fitted_range;
    std::vector<size_t> space_sizes;
    for (const AgentConfig& agent : config.agents) space_sizes.push_back(ActionSpace(agent).size());
    const auto guarded = [&](std::shared_ptr<const ActionScorer> scorer) {
      return ServeWithinLoggedEvidence(ClipToFittedRanges(std::move(scorer), ranges),
                                       {manifest.unlogged_actions, manifest.logged_counts},
                                       space_sizes);
    };
    if (inference == Inference::kFast) {
      if (auto fast = MakeFastScorer(version, models, config, calib_a, calib_b, costs, reuse_model))
        return guarded(std::move(fast));
    }
    return guarded(std::make_shared<LearnedScorer>(version, std::move(models), config, calib_a,
                                                   calib_b, std::move(costs), reuse_model));
  } catch (const BundleError& e) {
    const std::string what = e.what();
    if (what.rfind(where, 0) == 0) throw;
    throw BundleError(where + what);
  } catch (const YAML::BadFile& e) {
    throw BundleError(where + "cannot read " + kManifestFile + ": " + e.what());
  } catch (const YAML::Exception& e) {
    throw BundleError(where + "malformed " + kManifestFile + ": " + e.what());
  } catch (const c10::Error& e) {
    throw BundleError(where + "cannot load " + kWeightsFile + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw BundleError(where + e.what());
  }
}

}  // namespace allot::models
