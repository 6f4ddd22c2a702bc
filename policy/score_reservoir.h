// A bounded sample of recently scored requests, for the lambda controller to re-decide offline.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "policy/scorer.h"

namespace allot {

struct ScoredSample {
  size_t agent = 0;
  double user_value = 0.0;
  std::vector<double> value;
  std::vector<double> cost;
  std::vector<size_t> cross_module;  // as AgentScores: the later modules the choice loads
  std::vector<double> cross_cost;
  std::vector<uint8_t> excluded;  // as AgentScores: joint actions the decision never takes
};

// Records one request in every `sample_every` into a ring of the `capacity` most recent samples.
// The count is kept per thread (in a few stripes, each on its own cache line): one counter that
// every thread of a server on two cores incremented moved between the cores on every call.
// The request path never waits: if the ring is being read or written, the sample is dropped and
// counted. Slot vectors keep their capacity, so steady-state recording does not allocate.
class ScoreReservoir {
 public:
  ScoreReservoir(size_t capacity, uint32_t sample_every);

  void MaybeRecord(size_t agent, const AgentScores& scores);
  std::vector<ScoredSample> Snapshot() const;

  uint64_t recorded() const { return recorded_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  size_t capacity() const { return slots_.size(); }

 private:
  struct alignas(64) Stripe {
    std::atomic<uint64_t> seen{0};
  };
  static constexpr size_t kStripes = 8;
  static size_t ThreadStripe();

  const uint32_t sample_every_;
  std::array<Stripe, kStripes> seen_{};  // requests offered, by the stripe of the thread
  std::atomic<uint64_t> recorded_{0};
  std::atomic<uint64_t> dropped_{0};
  mutable std::mutex mu_;
  std::vector<ScoredSample> slots_;  // guarded by mu_
  size_t next_ = 0;                  // guarded by mu_
  size_t filled_ = 0;                // guarded by mu_
};

}  // namespace allot
