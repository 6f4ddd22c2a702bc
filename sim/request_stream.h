// Deterministic request streams: session heads follow the daily traffic shape, each head starts a
// chain of same-day repeats with mixture-distributed gaps, and every request carries its own
// pre-drawn randomness (see request.h).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "sim/request.h"
#include "sim/world.h"

namespace allot::sim {

struct StreamOptions {
  uint64_t seed = 1;
  std::string name = "evaluate";  // seed stream: generate, evaluate, drive, testbench, ...
  double mean_qps = 0.0;          // simulated requests per simulated second; 0 = the world's
  double start_hour = -1.0;       // time of day the stream starts; < 0 = the world's
  // > 0: every user's latent value is replaced by draw number `posterior_sample` from its
  // posterior given the user's features (sim/user_posterior.h), from a random stream of its own,
  // so the stream's other draws, and so its users, times and features, are unchanged.
  uint32_t posterior_sample = 0;
};

class RequestStream {
 public:
  RequestStream(const World& world, StreamOptions options);

  // Every request of `day` in time order (requests before the start hour on day 0 excluded).
  // Days are independent of each other and of the order they are asked for.
  std::vector<Request> Day(int day) const;
  // The first n requests of the stream, indices 0..n-1.
  std::vector<Request> Take(size_t n) const;
  // The requests in the first `sim_seconds` simulated seconds of the stream.
  std::vector<Request> TakeSeconds(double sim_seconds) const;

  double compression() const { return compression_; }
  double start_real_s() const { return start_real_s_; }
  // Real requests each simulated request stands for, with the QPS override applied.
  double scale() const { return scale_; }
  double mean_qps() const { return mean_qps_; }

 private:
  void Chain(int day, uint64_t chain, double head_s, std::mt19937_64& rng,
             std::vector<Request>& out) const;
  double SampleGap(std::mt19937_64& rng) const;

  const World& world_;
  StreamOptions options_;
  double compression_ = 1.0;
  double mean_qps_ = 0.0;
  double scale_ = 1.0;
  double start_real_s_ = 0.0;
};

}  // namespace allot::sim
