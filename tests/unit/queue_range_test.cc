// Continuous queues: a `range` expands into its grid of lengths, with a cost that never falls
// with length and gains interpolated on the curve; bad ranges are refused naming the key.
#include "policy/queue_range.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "policy/action_space.h"
#include "policy/config.h"

namespace allot {
namespace {

const std::string kQueue = R"(
      - name: queue_length
        kind: queue
        safe_default: "100"
        options:
          - {length: 50,  gain: [0.60, 0.55, 0.50, 0.45], cost_ms: 1.5}
          - {length: 100, gain: [0.66, 0.66, 0.66, 0.64], cost_ms: 2.8}
          - {length: 200, gain: [0.68, 0.72, 0.76, 0.80], cost_ms: 5.5}
          - {length: 400, gain: [0.69, 0.74, 0.80, 0.88], cost_ms: 10.8})";

// The embedded default with the rank agent's queue replaced by `decision` (YAML at its indent).
AllotConfig WithRankQueue(const std::string& decision) {
  std::string yaml = EmbeddedDefaultConfigYaml();
  const size_t at = yaml.find(kQueue);
  EXPECT_NE(at, std::string::npos) << "the default config's rank queue moved";
  yaml.replace(at, kQueue.size(), decision);
  return LoadConfigFromString(yaml, "test");
}

std::string RangeQueue(const std::string& range, const std::string& safe_default = "100") {
  return "\n      - name: queue_length\n        kind: queue\n        safe_default: \"" +
         safe_default + "\"\n        range: " + range;
}

const std::string kGood =
    "{min: 50, max: 400, granularity: 25, fixed_cost_ms: 0.2, cost_per_item_ms: 0.0265, "
    "module_cost_per_item_ms: {prerank: 0.001}, gain_curve: [{length: 50, gain: [0.6, 0.55, "
    "0.5, 0.45]}, {length: 100, gain: [0.66, 0.66, 0.66, 0.64]}, {length: 400, gain: [0.69, "
    "0.74, 0.8, 0.88]}]}";

std::string ErrorFor(const std::string& decision) {
  try {
    WithRankQueue(decision);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(QueueRangeTest, ExpandsIntoEveryLengthOfTheGrid) {
  const AllotConfig config = WithRankQueue(RangeQueue(kGood));
  const DecisionConfig& d = config.FindAgent("rank")->decisions[0];
  ASSERT_TRUE(d.range.has_value());
  ASSERT_EQ(d.options.size(), 15u);  // 50, 75, ..., 400
  for (size_t i = 0; i < d.options.size(); ++i) {
    const OptionConfig& o = d.options[i];
    const int length = 50 + 25 * static_cast<int>(i);
    EXPECT_EQ(o.queue_length, length);
    EXPECT_EQ(o.label, std::to_string(length));
    EXPECT_DOUBLE_EQ(o.cost_ms, 0.2 + 0.0265 * length);
    EXPECT_DOUBLE_EQ(o.module_cost_ms.at("prerank"), 0.001 * length);
    if (i > 0) {
      EXPECT_GT(o.cost_ms, d.options[i - 1].cost_ms) << "cost must rise with length";
    }
  }
  // 75 lies halfway between the anchors at 50 and 100; 250 halfway between 100 and 400.
  EXPECT_NEAR(d.options[1].gain[0], 0.63, 1e-12);
  EXPECT_NEAR(d.options[1].gain[3], 0.545, 1e-12);
  EXPECT_NEAR(d.options[8].gain[3], 0.76, 1e-12);
  EXPECT_EQ(d.options[2].gain, (std::vector<double>{0.66, 0.66, 0.66, 0.64}));
  // The joint action space grows with the grid: 15 lengths x heavy model off/on.
  EXPECT_EQ(ActionSpace(*config.FindAgent("rank")).size(), 30u);
}

TEST(QueueRangeTest, NearestIndexSnapsAndClamps) {
  const AllotConfig config = WithRankQueue(RangeQueue(kGood));
  const QueueRangeConfig& r = *config.FindAgent("rank")->decisions[0].range;
  EXPECT_EQ(r.NearestIndex(50), 0);
  EXPECT_EQ(r.NearestIndex(62.4), 0);
  EXPECT_EQ(r.NearestIndex(62.5), 1);  // halves round up
  EXPECT_EQ(r.NearestIndex(399), 14);
  EXPECT_EQ(r.NearestIndex(-1e9), 0);
  EXPECT_EQ(r.NearestIndex(1e9), 14);
  EXPECT_EQ(r.NearestIndex(std::numeric_limits<double>::quiet_NaN()), 0);
  EXPECT_EQ(r.NearestIndex(std::numeric_limits<double>::infinity()), 14);
  EXPECT_EQ(r.Length(r.NearestIndex(180)), 175);
}

TEST(QueueRangeTest, BadRangesNameTheirKey) {
  const std::string p = "agents[2].decisions[0].range";
  auto with = [](std::string text, const std::string& from, const std::string& to) {
    text.replace(text.find(from), from.size(), to);
    return text;
  };
  EXPECT_EQ(ErrorFor(RangeQueue(with(kGood, "max: 400", "max: 50"))), p + ".max: must be > min");
  EXPECT_EQ(ErrorFor(RangeQueue(with(kGood, "granularity: 25", "granularity: 30"))),
            p + ".granularity: must divide max - min");
  EXPECT_EQ(ErrorFor(RangeQueue(with(kGood, "granularity: 25", "granularity: 0"))),
            p + ".granularity: must be >= 1");
  EXPECT_EQ(ErrorFor(RangeQueue(
                with(with(kGood, "max: 400", "max: 100050"), "length: 400", "length: 100050"))),
            p + ".granularity: gives 4001 lengths (at most 1024)");
  EXPECT_EQ(ErrorFor(RangeQueue(with(kGood, "cost_per_item_ms: 0.0265", "cost_per_item_ms: -1"))),
            p + ".cost_per_item_ms: must be >= 0");
  EXPECT_EQ(ErrorFor(RangeQueue(with(kGood, "{prerank: 0.001}", "{prerank: -0.001}"))),
            p + ".module_cost_per_item_ms.prerank: must be >= 0");
  EXPECT_EQ(ErrorFor(RangeQueue(with(kGood, "{prerank: 0.001}", "{ranking: 0.001}"))),
            p + ".module_cost_per_item_ms.ranking: names unknown module 'ranking'");
  EXPECT_EQ(ErrorFor(RangeQueue(with(kGood, "{prerank: 0.001}", "{rank: 0.001}"))),
            p + ".module_cost_per_item_ms.rank: is the agent's own module (use cost_per_item_ms)");
  EXPECT_EQ(ErrorFor(RangeQueue(with(kGood, "length: 50,", "length: 60,"))),
            p + ".gain_curve[0].length: must equal min (50)");
  EXPECT_EQ(ErrorFor(RangeQueue(with(kGood, "length: 400,", "length: 375,"))),
            p + ".gain_curve[2].length: must equal max (400)");
  EXPECT_EQ(ErrorFor(RangeQueue(with(kGood, "length: 100,", "length: 50,"))),
            p + ".gain_curve[1].length: must be greater than the previous point's");
  EXPECT_EQ(
      ErrorFor(RangeQueue(with(kGood, "[0.66, 0.66, 0.66, 0.64]", "[0.66, -0.1, 0.66, 0.6]"))),
      p + ".gain_curve[1].gain[1]: must be >= 0");
  EXPECT_EQ(ErrorFor(RangeQueue(with(kGood, "[0.66, 0.66, 0.66, 0.64]", "[0.66]"))),
            p + ".gain_curve[1].gain: must have as many entries as gain_curve[0].gain (4)");
  std::string short_gains = kGood;
  for (const char* gain :
       {"[0.6, 0.55, 0.5, 0.45]", "[0.66, 0.66, 0.66, 0.64]", "[0.69, 0.74, 0.8, 0.88]"})
    short_gains = with(short_gains, gain, "[0.5, 0.6]");
  EXPECT_EQ(ErrorFor(RangeQueue(short_gains)),
            p + ".gain_curve[0].gain: must have one entry per value bucket (4)");
  EXPECT_EQ(ErrorFor(RangeQueue(kGood, "110")),
            "agents[2].decisions[0].safe_default: names unknown option '110'");
}

TEST(QueueRangeTest, OnlyAQueueWithoutOptionsHasARange) {
  EXPECT_EQ(ErrorFor(kQueue + "\n        range: " + kGood),
            "agents[2].decisions[0].options: a queue with a range has no options (they are its "
            "lengths)");
  const std::string as_switch = RangeQueue(kGood);
  std::string text = as_switch;
  text.replace(text.find("kind: queue"), 11, "kind: link");
  EXPECT_EQ(ErrorFor(text), "agents[2].decisions[0].range: only a queue decision has a range");
}

}  // namespace
}  // namespace allot
