// The AutoBucket bench measures cost per request that grows with queue length and matches the
// world's own per-request cost.
#include "sim/testbench.h"

#include <gtest/gtest.h>

#include <map>

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
