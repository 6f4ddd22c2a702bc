// Hindsight tables: for every request the true value and per-stage cost of every joint option of
// all agents together (plus cache reuse), in floats, pruned of options no lambda >= 0 would pick.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

#include "sim/request.h"
#include "sim/world.h"

namespace allot::sim {

using StageVector = std::array<double, kNumStages>;

struct OptionTotals {
  double value = 0.0;
  StageVector cost{};  // core-ms per stage
};

// Requests [begin, end) of a table (end is clamped to the table's size).
struct RequestRange {
  size_t begin = 0;
  size_t end = SIZE_MAX;
};

// An option: cache reuse r (0 none, else the reused stage number) and one joint per agent.
struct DecodedOption {
  int reuse = 0;
  std::array<uint32_t, kNumStages> joint{};  // by stage; meaningless for stages the reuse skips
};

// Thrown before a table outgrows its memory limit: a fine action grid (a continuous queue with a
// small granularity) multiplies the options every request keeps.
class OptionTableTooLarge : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class OptionTable {
 public:
  // requests[i].index must be i. Offline world: no degradation, no timeouts. max_bytes > 0: the
  // table's size is projected from its first requests, and OptionTableTooLarge is thrown when
  // its peak while growing would pass max_bytes.
  OptionTable(const World& world, std::span<const Request> requests, size_t max_bytes = 0);
  // The same table over the mean, per option, of the values and costs of several versions of the
  // same requests (samples[k][i] is request i as drawn in sample k): decisions on the expectation
  // over whatever the samples vary. weights[k][i] weighs sample k of request i (normalised per
  // request; none: equal weights).
  OptionTable(const World& world, std::span<const std::vector<Request>> samples,
              std::span<const std::vector<double>> weights = {}, size_t max_bytes = 0);

  size_t num_requests() const { return offset_.size() - 1; }
  size_t num_options() const { return value_.size(); }
  size_t num_combos() const { return combos_; }  // joint combinations without reuse

  // Best option of every request in `range` at per-stage lambdas (ties go to the lower option).
  // Optionally the chosen option per request and the best option that recomputes everything
  // (both indexed by request; sized to the whole table, entries outside the range untouched).
  OptionTotals Best(const StageVector& lambda, std::vector<uint32_t>* chosen = nullptr,
                    std::vector<uint32_t>* chosen_without_reuse = nullptr,
                    RequestRange range = {}) const;
  // Totals over every stride-th request of `range` only (a cheap estimate for warm starts).
  OptionTotals BestSampled(const StageVector& lambda, size_t stride, RequestRange range = {}) const;

  DecodedOption Decode(uint32_t option) const;
  float value(uint32_t option) const { return value_[option]; }
  float cost(uint32_t option, int stage) const { return cost_[stage][option]; }
  bool reuses(uint32_t option) const { return id_[option] >= combos_; }

  // Totals over all requests of each fixed joint combination (what a static allocation gets).
  const std::vector<OptionTotals>& fixed_totals() const { return fixed_; }
  DecodedOption DecodeCombo(size_t combo) const;

 private:
  void Build(const World& world, std::span<const std::span<const Request>> samples,
             std::span<const std::vector<double>> weights, size_t max_bytes);
  // Throws OptionTableTooLarge when `built` of `total` requests project past max_bytes.
  void CheckProjectedSize(size_t built, size_t total, size_t max_bytes) const;
  void Add(float value, const StageVector& cost, uint32_t id);
  void PruneGroup(size_t begin);
  void PruneToHull(size_t begin);
  void Keep(const std::vector<size_t>& keep, size_t begin);  // sorted indices >= begin

  std::array<size_t, kNumStages> sizes_{};
  size_t combos_ = 0;
  std::vector<uint32_t> offset_;  // per request, into the option arrays
  std::vector<float> value_;
  std::array<std::vector<float>, kNumStages> cost_;
  std::vector<uint32_t> id_;
  std::vector<OptionTotals> fixed_;
};

}  // namespace allot::sim
