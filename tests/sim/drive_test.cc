// drive against a real in-process server on 127.0.0.1: it finishes, every call succeeds, and its
// counters agree with the server's /metrics.
#include "sim/drive.h"

#include <gtest/gtest.h>

#include <sstream>

#include "sim/report.h"
#include "tests/integration/test_server.h"
#include "tests/sim/sim_test_util.h"

namespace allot::sim {
namespace {

// Sum of the samples of `metric` whose labels include every one of `labels`.
double MetricSum(const std::string& text, const std::string& metric,
                 const std::vector<std::string>& labels) {
  std::istringstream in(text);
  double sum = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(metric + "{", 0) != 0) continue;
    bool all = true;
    for (const std::string& l : labels) all = all && line.find(l) != std::string::npos;
    if (all) sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

TEST(DriveTest, ClosedLoopAgainstALiveServerHasConsistentTotals) {
  allot::testing::TestServer server;
  const auto world = testing::MakeWorld();
  DriveOptions options;
  options.target = server.target();
  options.qps = 150;
  options.duration_s = 3;
  options.seed = 2;
  options.allocate_timeout = std::chrono::milliseconds(2000);  // sanitizer builds are slow
  const DriveSummary summary = Drive(*world, options);

  ASSERT_GT(summary.requests, 200);
  EXPECT_EQ(summary.allocate_ok, summary.allocate_calls);
  EXPECT_EQ(summary.unmappable, 0);
  EXPECT_EQ(summary.report_ok, summary.report_calls);
  // One call per stage that decided: at least the first agent of every request, at most three.
  EXPECT_GE(summary.allocate_calls, summary.requests);
  EXPECT_LE(summary.allocate_calls, 3 * summary.requests);
  // ReportLoad once per simulated second per module (three modules; the last second is partial).
  EXPECT_GE(summary.report_calls, 3 * 3);
  EXPECT_LE(summary.report_calls, 3 * 4);

  const std::string metrics = server.ScrapeMetrics();
  EXPECT_EQ(MetricSum(metrics, "allot_rpc_duration_seconds_count",
                      {"method=\"Allocate\"", "code=\"OK\""}),
            static_cast<double>(summary.allocate_ok));
  EXPECT_EQ(MetricSum(metrics, "allot_rpc_duration_seconds_count",
                      {"method=\"ReportLoad\"", "code=\"OK\""}),
            static_cast<double>(summary.report_ok));

  // The same table as evaluate: the live run first, the oracle last.
  const Table table = BuildTable(*world, summary.evaluation);
  ASSERT_GE(table.rows.size(), 4u);
  EXPECT_EQ(table.rows.front().policy, "server");
  EXPECT_EQ(table.rows.front().requests, summary.requests);
  EXPECT_EQ(table.rows.back().policy, "oracle");
  EXPECT_GT(table.rows.front().pct_of_oracle, 0);
  EXPECT_LE(table.rows.front().pct_of_oracle, 100.0 + 0.05);
}

// Replicas behind client-side load balancing: Allocate calls are spread over them round-robin,
// and every replica hears every load report.
TEST(DriveTest, ReplicasShareTheCallsAndEachHearsTheLoad) {
  allot::testing::TestServer a, b;
  const auto world = testing::MakeWorld();
  DriveOptions options;
  options.target = a.target() + "," + b.target();
  options.qps = 150;
  options.duration_s = 2;
  options.seed = 3;
  options.allocate_timeout = std::chrono::milliseconds(2000);
  options.evaluate = false;
  const DriveSummary summary = Drive(*world, options);
  ASSERT_GT(summary.allocate_calls, 100);
  EXPECT_EQ(summary.allocate_ok, summary.allocate_calls);
  EXPECT_EQ(summary.report_ok, summary.report_calls);
  double allocates = 0;
  for (const auto* server : {&a, &b}) {
    const std::string metrics = server->ScrapeMetrics();
    const double served = MetricSum(metrics, "allot_rpc_duration_seconds_count",
                                    {"method=\"Allocate\"", "code=\"OK\""});
    // round_robin: each replica gets about half (a third would already show the spreading).
    EXPECT_GT(served, summary.allocate_calls / 3.0);
    allocates += served;
    EXPECT_EQ(MetricSum(metrics, "allot_rpc_duration_seconds_count",
                        {"method=\"ReportLoad\"", "code=\"OK\""}),
              summary.report_ok / 2.0);
  }
  EXPECT_EQ(allocates, static_cast<double>(summary.allocate_ok));
}

TEST(DriveTest, OnlyLoopbackTargets) {
  EXPECT_TRUE(IsLoopbackTarget("127.0.0.1:50051"));
  EXPECT_TRUE(IsLoopbackTarget("localhost:1"));
  EXPECT_TRUE(IsLoopbackTarget("[::1]:50051"));
  EXPECT_FALSE(IsLoopbackTarget("10.0.0.1:50051"));
  EXPECT_FALSE(IsLoopbackTarget("allot.example.com:443"));
  EXPECT_FALSE(IsLoopbackTarget("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackTarget("127.0.0.1:1,127.0.0.2:2"));
  EXPECT_FALSE(IsLoopbackTarget("127.0.0.1:1,localhost:2")) << "ipv4: lists are numeric";
  EXPECT_FALSE(IsLoopbackTarget("127.0.0.1:1,10.0.0.1:2"));
  const auto world = testing::MakeWorld();
  DriveOptions options;
  options.target = "192.168.1.1:50051";
  EXPECT_THROW(Drive(*world, options), std::invalid_argument);
  // The load exporter listens on loopback only too, and says which flag is wrong.
  options.target = "127.0.0.1:1";
  options.export_load = "0.0.0.0:9100";
  try {
    Drive(*world, options);
    ADD_FAILURE() << "a non-loopback --export-load was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--export-load"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace allot::sim
