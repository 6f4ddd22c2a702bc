// The grid a continuous queue expands to; see queue_range.h.
#include "policy/queue_range.h"

#include <algorithm>
#include <cmath>

namespace allot {
namespace {

std::string Point(const std::string& path, size_t i) {
  return path + ".gain_curve[" + std::to_string(i) + "]";
}

}  // namespace

void CheckQueueRange(const QueueRangeConfig& r, const std::string& path) {
  if (r.max <= r.min) YamlMap::Fail(path + ".max", "must be > min");
  if ((r.max - r.min) % r.granularity != 0)
    YamlMap::Fail(path + ".granularity", "must divide max - min");
  if (r.num_lengths() > kMaxQueueRangeLengths) {
    YamlMap::Fail(path + ".granularity", "gives " + std::to_string(r.num_lengths()) +
                                             " lengths (at most " +
                                             std::to_string(kMaxQueueRangeLengths) + ")");
  }
  for (const auto& [module, cost] : r.module_cost_per_item_ms) {
    if (cost < 0 || !std::isfinite(cost))
      YamlMap::Fail(path + ".module_cost_per_item_ms." + module, "must be >= 0");
  }
  const auto& curve = r.gain_curve;
  if (curve.empty()) YamlMap::Fail(path + ".gain_curve", "must not be empty");
  if (curve.front().length != r.min)
    YamlMap::Fail(Point(path, 0) + ".length", "must equal min (" + std::to_string(r.min) + ")");
  if (curve.back().length != r.max) {
    YamlMap::Fail(Point(path, curve.size() - 1) + ".length",
                  "must equal max (" + std::to_string(r.max) + ")");
  }
  for (size_t i = 0; i < curve.size(); ++i) {
    if (i > 0 && curve[i].length <= curve[i - 1].length)
      YamlMap::Fail(Point(path, i) + ".length", "must be greater than the previous point's");
    // The expansion interpolates between points entry by entry; how many entries there must be
    // (one per value bucket) is checked once the value model is known.
    if (curve[i].gain.size() != curve[0].gain.size()) {
      YamlMap::Fail(Point(path, i) + ".gain", "must have as many entries as gain_curve[0].gain (" +
                                                  std::to_string(curve[0].gain.size()) + ")");
    }
    for (size_t b = 0; b < curve[i].gain.size(); ++b) {
      if (curve[i].gain[b] < 0)
        YamlMap::Fail(Point(path, i) + ".gain[" + std::to_string(b) + "]", "must be >= 0");
    }
  }
}

namespace {

// The gain curve at `length`, linear between the two anchors around it.
std::vector<double> GainAt(const QueueRangeConfig& r, int length) {
  const auto& curve = r.gain_curve;
  size_t hi = 0;
  while (curve[hi].length < length) ++hi;
  if (curve[hi].length == length) return curve[hi].gain;
  const auto& a = curve[hi - 1];
  const auto& b = curve[hi];
  const double t = static_cast<double>(length - a.length) / (b.length - a.length);
  std::vector<double> gain(a.gain.size());
  for (size_t k = 0; k < gain.size(); ++k) gain[k] = (1 - t) * a.gain[k] + t * b.gain[k];
  return gain;
}

}  // namespace

int QueueRangeConfig::NearestIndex(double length) const {
  if (!(length > min)) return 0;  // also NaN: the shortest, the cheapest choice
  if (length >= max) return num_lengths() - 1;
  const int index = static_cast<int>(std::floor((length - min) / granularity + 0.5));
  return std::min(index, num_lengths() - 1);
}

void ReadQueueRange(YamlMap& r, QueueRangeConfig& range) {
  r.Read("min", range.min, AtLeast(1));
  r.Read("max", range.max, AtLeast(1));
  r.Read("granularity", range.granularity, AtLeast(1));
  r.Read("fixed_cost_ms", range.fixed_cost_ms, NonNegative());
  r.Read("cost_per_item_ms", range.cost_per_item_ms, NonNegative());
  r.ReadNumberMap("module_cost_per_item_ms", range.module_cost_per_item_ms);
  r.ReadList("gain_curve", [&](YamlMap& p, size_t) {
    QueueRangeConfig::GainPoint point;
    p.Read("length", point.length, AtLeast(1));
    p.ReadDoubles("gain", point.gain);
    range.gain_curve.push_back(std::move(point));
  });
}

std::vector<OptionConfig> ExpandQueueRange(const QueueRangeConfig& range) {
  std::vector<OptionConfig> options;
  for (int i = 0; i < range.num_lengths(); ++i) {
    OptionConfig o;
    o.queue_length = range.Length(i);
    o.label = std::to_string(o.queue_length);
    o.gain = GainAt(range, o.queue_length);
    o.cost_ms = range.fixed_cost_ms + range.cost_per_item_ms * o.queue_length;
    for (const auto& [module, per_item] : range.module_cost_per_item_ms)
      o.module_cost_ms[module] = per_item * o.queue_length;
    options.push_back(std::move(o));
  }
  return options;
}

void ValidateQueueRangeGains(const QueueRangeConfig& range, const std::string& path, int buckets) {
  for (size_t i = 0; i < range.gain_curve.size(); ++i) {
    if (static_cast<int>(range.gain_curve[i].gain.size()) != buckets) {
      YamlMap::Fail(Point(path, i) + ".gain",
                    "must have one entry per value bucket (" + std::to_string(buckets) + ")");
    }
  }
}

}  // namespace allot
