// One simulated request with all of its randomness drawn up front (common random numbers), so
// every policy, the oracle and a counterfactual see exactly the same world.
#pragma once

#include <array>
#include <cstdint>

namespace allot::sim {

constexpr int kMaxChannels = 12;
constexpr int kNumStages = 3;
enum Stage : int { kRecall = 0, kPrerank = 1, kRank = 2 };
inline const char* StageName(int stage) {
  constexpr const char* kNames[kNumStages] = {"recall", "prerank", "rank"};
  return stage >= 0 && stage < kNumStages ? kNames[stage] : "unknown";
}

// What a stage hands on: the share of the request's value potential its candidates hold, and
// how many candidates there are.
struct StageOutput {
  double mass = 0.0;
  double count = 0.0;
};

// Stage outputs the user's previous request left in the cache (policy-independent: the serving
// system caches what the reference chain computed), before decay.
struct CacheContext {
  bool present = false;
  double age_s = 0.0;  // real seconds since the outputs were computed
  int exposed = 0;     // items the previous request exposed (they are no longer reusable)
  std::array<StageOutput, kNumStages> stored;
};

struct Request {
  uint64_t index = 0;  // position in its stream
  uint64_t user = 0;
  int day = 0;
  double real_s = 0.0;  // real (uncompressed) seconds since the stream's day 0 midnight
  double sim_s = 0.0;   // simulated seconds since the stream start
  double hour = 0.0;    // hour of day, [0, 24)

  bool repeat = false;  // repeats a same-day request of the same user
  double gap_s = 0.0;   // real seconds since that user's previous request
  double drift = 0.0;   // interest drift since the previous request, [0, 1)
  int page_index = 0;
  int query_len = 0;

  // User traits and the observable features derived from them.
  double user_value = 0.0;  // latent U
  bool is_new = false;
  float activity = 0.0f;
  float ctr_7d = 0.0f;
  float hist_value_log = 0.0f;

  double value = 0.0;  // latent value potential of this request (revenue at a perfect chain)

  // Per-channel coverage and yield with the user's modifiers and noise applied.
  std::array<float, kMaxChannels> coverage{};
  std::array<float, kMaxChannels> yield{};
  std::array<float, kMaxChannels> yield_ratio{};  // yield / configured yield (drives cost)
  std::array<float, kNumStages> cost_noise{};     // multiplicative, mean 1
  std::array<float, kNumStages> score_noise{};    // top-score feature noise (recall, prerank)
  std::array<float, kNumStages> depth{};          // value depth factor per stage (activity)
  float revenue_noise = 1.0f;                     // realised / expected revenue
  float timeout_u = 1.0f;                         // uniform draw deciding timeouts

  CacheContext cache;
};

}  // namespace allot::sim
