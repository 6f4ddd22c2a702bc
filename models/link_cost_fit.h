// A link decision's stage cost from TestBench measurements of channel sets (AutoBucket, see
// cost_map.h): cost(S) = fixed + the sum of S's channels' increments, fitted by weighted least
// squares. Channels that may run alone are measured alone; a chain whose link decision needs at
// least two channels is measured at sets around its default set (sim/testbench.cc), and the same
// fit recovers every channel's increment. No LibTorch here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace allot::models {

struct ChannelSetCost {
  uint32_t set = 0;  // bit c: channel c
  double cost = 0.0;
  double weight = 1.0;  // requests measured
};

struct LinkCostFit {
  double fixed = 0.0;
  std::vector<double> increment;  // per channel
  double Cost(uint32_t set) const;
};

// `reference` is the default set's cost measured through the agent's other decisions (R0), when
// there are any: with single-channel sets only, it is what tells the fixed part apart. Where the
// sets cannot tell it (all of one size, or single channels without R0), the fixed part is 0, and
// a channel the sets cannot tell from others gets increment 0. The fixed part and the increments
// are >= 0. Every channel must be in some set (checked by the caller).
LinkCostFit FitLinkCost(size_t channels, std::span<const ChannelSetCost> sets,
                        std::optional<ChannelSetCost> reference);

}  // namespace allot::models
