// Ring-buffer reservoir; see score_reservoir.h for the sampling and locking rules.
#include "policy/score_reservoir.h"

#include <algorithm>

namespace allot {

ScoreReservoir::ScoreReservoir(size_t capacity, uint32_t sample_every)
    : sample_every_(std::max<uint32_t>(1, sample_every)), slots_(std::max<size_t>(1, capacity)) {}

size_t ScoreReservoir::ThreadStripe() {
  static std::atomic<size_t> next{0};
  thread_local const size_t stripe = next.fetch_add(1, std::memory_order_relaxed) % kStripes;
  return stripe;
}

void ScoreReservoir::MaybeRecord(size_t agent, const AgentScores& scores) {
  std::atomic<uint64_t>& seen = seen_[ThreadStripe()].seen;
  if (seen.fetch_add(1, std::memory_order_relaxed) % sample_every_ != 0) return;
  std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  ScoredSample& slot = slots_[next_];
  slot.agent = agent;
  slot.user_value = scores.user_value;
  slot.value.assign(scores.value.begin(), scores.value.end());
  slot.cost.assign(scores.cost.begin(), scores.cost.end());
  slot.cross_module.assign(scores.cross_module.begin(), scores.cross_module.end());
  slot.cross_cost.assign(scores.cross_cost.begin(), scores.cross_cost.end());
  slot.excluded.assign(scores.excluded.begin(), scores.excluded.end());
  next_ = (next_ + 1) % slots_.size();
  filled_ = std::min(filled_ + 1, slots_.size());
  recorded_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<ScoredSample> ScoreReservoir::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ScoredSample> out;
  out.reserve(filled_);
  // Oldest first: when the ring is full the oldest sample sits at next_.
  const size_t start = filled_ == slots_.size() ? next_ : 0;
  for (size_t i = 0; i < filled_; ++i) out.push_back(slots_[(start + i) % slots_.size()]);
  return out;
}

}  // namespace allot
