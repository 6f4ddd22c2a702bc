#include "policy/arm_split.h"

#include <algorithm>
#include <cstdint>

namespace allot {

double StableUnitHash(std::string_view salt, std::string_view key) {
  uint64_t h = 1469598103934665603ull;
  for (const std::string_view part : {salt, std::string_view("\x1f", 1), key}) {
    for (const char c : part) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
  }
  // FNV's high bits barely depend on the last characters ("user-1", "user-2"): mix them in.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

size_t ArmOf(std::string_view user_id, std::span<const double> arm_weights) {
  if (user_id.empty() || arm_weights.empty()) return 0;
  const double u = StableUnitHash("arm", user_id);
  double start = 0.0;
  for (size_t i = 0; i < arm_weights.size(); ++i) {
    start += arm_weights[i];
    if (u < start) return i + 1;
  }
  return 0;
}

ArmLoadShare::ArmLoadShare(size_t arms, size_t modules)
    : arms_(arms), modules_(modules), totals_(new std::atomic<double>[arms * modules]) {
  for (size_t i = 0; i < arms * modules; ++i) totals_[i].store(0.0);
}

ArmShareSource::ArmShareSource(std::unique_ptr<TelemetrySource> inner,
                               std::shared_ptr<const ArmLoadShare> share, size_t arm, double weight,
                               std::vector<std::string> modules)
    : inner_(std::move(inner)),
      share_(std::move(share)),
      arm_(arm),
      weight_(weight),
      modules_(std::move(modules)),
      seen_arm_(modules_.size(), 0.0),
      seen_all_(modules_.size(), 0.0),
      last_share_(modules_.size(), weight) {}

std::optional<LoadSample> ArmShareSource::Latest(const std::string& module, std::string* error) {
  std::optional<LoadSample> sample = inner_->Latest(module, error);
  const auto it = std::find(modules_.begin(), modules_.end(), module);
  if (!sample || it == modules_.end()) return sample;
  const size_t m = static_cast<size_t>(it - modules_.begin());
  const double all = share_->ModuleTotal(m);
  const double mine = share_->Total(arm_, m);
  const double d_all = all - seen_all_[m], d_mine = mine - seen_arm_[m];
  seen_all_[m] = all;
  seen_arm_[m] = mine;
  // No decision since the last read: keep the last share (the module may simply be idle).
  if (d_all > 0.0) last_share_[m] = std::clamp(d_mine / d_all, 0.0, 1.0);
  // Bounded: an arm far costlier than its traffic share still reads a finite, usable load.
  sample->cpu_utilization = std::min(4.0, sample->cpu_utilization * last_share_[m] / weight_);
  return sample;
}

}  // namespace allot
