// Continuous queues (QueueRangeConfig in config.h): reading a `range` section and expanding it
// into the grid of QUEUE options every scorer and algorithm works with.
#pragma once

#include <string>
#include <vector>

#include "policy/config.h"
#include "policy/yaml_map.h"

namespace allot {

// Most lengths one range may expand to: each is an option of the agent's joint action space.
inline constexpr int kMaxQueueRangeLengths = 1024;

// Reads the keys of a `range` section (each against its own bounds).
void ReadQueueRange(YamlMap& r, QueueRangeConfig& range);
// Checks how the keys of a range read at `path` fit together (errors name "<path>.<key>"). The
// gains' per-bucket length is checked later, once the value model is known.
void CheckQueueRange(const QueueRangeConfig& range, const std::string& path);

// One QUEUE option per grid length, in increasing length: label and queue_length the length,
// cost_ms fixed + per item x length, module_cost_ms per item x length, gain interpolated on the
// gain curve. The range must have passed CheckQueueRange.
std::vector<OptionConfig> ExpandQueueRange(const QueueRangeConfig& range);

// Every gain curve point has one gain per value bucket.
void ValidateQueueRangeGains(const QueueRangeConfig& range, const std::string& path, int buckets);

}  // namespace allot
