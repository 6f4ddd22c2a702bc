// The AutoBucket bench measures cost per request that grows with queue length and matches the
// world's own per-request cost.
#include "sim/testbench.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>

#include "models/cost_map.h"
#include "policy/action_space.h"
#include "sim/world_config.h"
#include "tests/sim/sim_test_util.h"

namespace allot::sim {
namespace {

TEST(TestbenchTest, CostPerRequestIsMonotoneInQueueLength) {
  const auto world = testing::MakeWorld([](WorldConfig& w) {
    w.testbench.requests_per_bucket = 300;
    w.testbench.seconds = 25;
    w.testbench.warmup_s = 15;
    w.testbench.qps = 2000;
  });
  const std::vector<TestbenchRow> rows = RunTestbench(*world, 4);
  ASSERT_FALSE(rows.empty());
  std::map<std::tuple<std::string, std::string, int>, std::map<int, double>> queues;
  for (const TestbenchRow& r : rows) {
    EXPECT_GT(r.cost_ms, 0) << r.agent << " " << r.option;
    // CPU% * n * N / QPS recovers the per-request cost (lag settled, noise averages out).
    EXPECT_NEAR(r.cost_ms, r.true_cost_ms, 0.1 * r.true_cost_ms + 0.02)
        << r.agent << " " << r.option;
    if (r.kind == "queue")
      queues[{r.agent, r.decision, r.value_bucket}][r.queue_length] = r.cost_ms;
  }
  ASSERT_FALSE(queues.empty());
  for (const auto& [key, by_length] : queues) {
    double previous = 0;
    for (const auto& [length, cost] : by_length) {
      EXPECT_GE(cost, previous) << std::get<0>(key) << " bucket " << std::get<2>(key) << " length "
                                << length;
      previous = cost;
    }
  }
  const std::string csv = TestbenchCsv(rows);
  EXPECT_EQ(csv.rfind("agent,module,decision,kind,option,queue_length,value_bucket,", 0), 0u);
}

}  // namespace
}  // namespace allot::sim

namespace allot::sim {
namespace {

// Found on the second chain: its link decision needs at least two channels, so no channel could
// be measured alone, the bench measured nothing for it and no agent's cost map could be fitted.
// Now the bench measures channel sets around the default set, and the fitted map gives every
// measured set's cost back.
TEST(TestbenchTest, ALinkDecisionThatNeedsTwoChannelsIsMeasuredAndItsCostMapFits) {
  const std::string dir = ALLOT_SOURCE_DIR;
  WorldConfig b = LoadWorldConfigFromFile(dir + "/config/sim/world-b.yaml");
  b.testbench.requests_per_bucket = 300;
  const World world(LoadConfigFromFile(dir + "/config/allot-b.yaml"), b);
  const AgentConfig& first = world.config().agents[0];
  ASSERT_EQ(first.decisions[0].kind, DecisionKind::kLink);
  ASSERT_GE(first.decisions[0].min_selected, 2);
  const std::vector<TestbenchRow> rows = RunTestbench(world, 2);
  std::set<std::string> channels_seen;
  for (const TestbenchRow& r : rows) {
    if (r.agent != first.name) continue;
    EXPECT_NE(r.option.find('+'), std::string::npos) << r.option;  // never a channel alone
    std::stringstream in(r.option);
    for (std::string c; std::getline(in, c, '+');) channels_seen.insert(c);
  }
  EXPECT_EQ(channels_seen.size(), first.decisions[0].options.size());

  const models::CostMap map = models::FitCostMap(TestbenchCsv(rows), "bench.csv", world.config());
  const ActionSpace space(first);
  auto joint_of = [&](const std::string& option) {
    std::vector<uint32_t> choices(space.Choices(space.safe_default()).begin(),
                                  space.Choices(space.safe_default()).end());
    uint32_t set = 0;
    std::stringstream in(option);
    for (std::string c; std::getline(in, c, '+');) {
      for (size_t o = 0; o < first.decisions[0].options.size(); ++o)
        if (first.decisions[0].options[o].label == c) set |= 1u << o;
    }
    choices[0] = set;
    return space.IndexOf(choices);
  };
  int checked = 0;
  for (const TestbenchRow& r : rows) {
    if (r.agent != first.name || r.decision != first.decisions[0].name) continue;
    const size_t joint = joint_of(r.option);
    ASSERT_LT(joint, space.size()) << r.option;
    // The chain's cost is close to additive in the channels; the fit is least squares over them.
    EXPECT_NEAR(map.At(0, r.value_bucket, joint), r.cost_ms, 0.05 * r.cost_ms)
        << r.option << " bucket " << r.value_bucket;
    ++checked;
  }
  EXPECT_GT(checked, 20);
}

}  // namespace
}  // namespace allot::sim
