// Experiment arms in the server: a user stays in one arm, each arm decides with its own bundle
// at its own price, and each arm's controller holds the target over its own share of the load.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "policy/arm_split.h"
#include "policy/clock.h"
#include "tests/integration/test_server.h"

namespace allot::testing {
namespace {

TEST(ArmSplitTest, AUserStaysInOneArmAndArmsGetTheirWeights) {
  const std::vector<double> weights = {0.1, 0.3};
  std::map<size_t, int> count;
  for (int i = 0; i < 20000; ++i) {
    const std::string user = "user-" + std::to_string(i);
    const size_t arm = ArmOf(user, weights);
    EXPECT_EQ(ArmOf(user, weights), arm);
    ++count[arm];
  }
  EXPECT_NEAR(count[1], 2000, 150);
  EXPECT_NEAR(count[2], 6000, 250);
  EXPECT_NEAR(count[0], 12000, 250);
  EXPECT_EQ(ArmOf("", weights), 0u) << "no user_id: the main arm";
  EXPECT_EQ(ArmOf("user-1", {}), 0u);
  // Growing an arm moves only users at its boundary: nobody leaves arm 1 for another arm.
  const std::vector<double> grown = {0.2, 0.3};
  for (int i = 0; i < 20000; ++i) {
    const std::string user = "user-" + std::to_string(i);
    if (ArmOf(user, weights) == 1) {
      EXPECT_EQ(ArmOf(user, grown), 1u);
    }
  }
  // Independent of the shadow sample, which hashes the same ids with another salt.
  EXPECT_NE(StableUnitHash("arm", "user-7"), StableUnitHash("shadow", "user-7"));
}

// A source that returns a fixed load and cluster price.
class FixedSource final : public TelemetrySource {
 public:
  const char* name() const override { return "fixed"; }
  std::optional<LoadSample> Latest(const std::string&, std::string*) override {
    return LoadSample{0.6, 1000, 0, 1};
  }
  std::optional<double> ClusterPrice(const std::string&, std::string*) override { return 2.0; }
};

TEST(ArmSplitTest, AnArmsControllerSeesItsShareOfTheLoadAsIfItServedAllTraffic) {
  auto share = std::make_shared<ArmLoadShare>(2, 1);
  ArmShareSource main(std::make_unique<FixedSource>(), share, 0, 0.8, {"rank"});
  ArmShareSource arm(std::make_unique<FixedSource>(), share, 1, 0.2, {"rank"});
  // The arm's 20% of users cost half of the module's predicted compute: it reads 0.6 x 0.5 / 0.2.
  share->Add(0, 0, 100.0);
  share->Add(1, 0, 100.0);
  EXPECT_NEAR(arm.Latest("rank", nullptr)->cpu_utilization, 1.5, 1e-12);
  EXPECT_NEAR(main.Latest("rank", nullptr)->cpu_utilization, 0.6 * 0.5 / 0.8, 1e-12);
  // Shares are of what happened since the last read.
  share->Add(0, 0, 300.0);
  share->Add(1, 0, 100.0);
  EXPECT_NEAR(arm.Latest("rank", nullptr)->cpu_utilization, 0.6 * 0.25 / 0.2, 1e-12);
  EXPECT_NEAR(arm.last_share(0), 0.25, 1e-12);
  // Nothing decided since: the last share holds (an idle period is not a zero share).
  EXPECT_NEAR(arm.Latest("rank", nullptr)->cpu_utilization, 0.6 * 0.25 / 0.2, 1e-12);
  // Modules the arm does not know pass through.
  EXPECT_NEAR(arm.Latest("recall", nullptr)->cpu_utilization, 0.6, 1e-12);
  // The cluster price is the main loops': an experiment arm neither joins nor is pulled to it.
  EXPECT_EQ(main.ClusterPrice("rank", nullptr), 2.0);
  EXPECT_FALSE(arm.ClusterPrice("rank", nullptr));
}

std::string WithArms(const std::string& arms) {
  std::string yaml = DefaultConfigWith("  arms: []", "  arms: " + arms);
  const std::string period = "period_s: 1.0";
  yaml.replace(yaml.find(period), period.size(), "period_s: 600");  // steps only when told
  return yaml;
}

v1::AllocateResponse AllocateAs(v1::Allocator::Stub& stub, const std::string& user) {
  v1::AllocateRequest request = MakeRequest("rank", 8, 0.5f);
  request.set_user_id(user);
  grpc::ClientContext context;
  v1::AllocateResponse response;
  EXPECT_TRUE(stub.Allocate(&context, request, &response).ok());
  return response;
}

TEST(ArmsInServerTest, UsersAreSplitStablyAndEveryAnswerNamesItsArm) {
  TestServer server(WithArms("[{name: candidate, bundle: analytic, weight: 0.3}]"));
  auto stub = server.stub();
  std::map<std::string, int> count;
  for (int i = 0; i < 400; ++i) {
    const std::string user = "u" + std::to_string(i);
    const std::string arm = AllocateAs(*stub, user).arm();
    EXPECT_EQ(AllocateAs(*stub, user).arm(), arm) << user;
    EXPECT_EQ(arm, ArmOf(user, std::vector<double>{0.3}) == 1 ? "candidate" : "main");
    ++count[arm];
  }
  EXPECT_NEAR(count["candidate"], 120, 40);
  EXPECT_EQ(count["candidate"] + count["main"], 400);
  EXPECT_EQ(AllocateAs(*stub, "").arm(), "main");
  const v1::ControlState state = GetState(*stub);
  ASSERT_EQ(state.arms_size(), 2);
  EXPECT_EQ(state.arms(0).name(), "main");
  EXPECT_NEAR(state.arms(0).weight(), 0.7, 1e-12);
  EXPECT_EQ(state.arms(1).name(), "candidate");
  EXPECT_EQ(state.arms(1).bundle_version(), "analytic");
  ASSERT_EQ(state.arms(1).modules_size(), 3);
  const std::string metrics = server.ScrapeMetrics();
  EXPECT_NE(metrics.find(R"(allot_arm_decisions_total{agent="rank",arm="candidate"})"),
            std::string::npos);
  EXPECT_NE(metrics.find(R"(allot_arm_lambda{arm="candidate",module="rank"})"), std::string::npos);
  EXPECT_NE(metrics.find(R"(allot_arm_fallbacks_total{agent="rank",arm="main"} 0)"),
            std::string::npos);
  // Without arms, answers name none.
  TestServer plain;
  auto plain_stub = plain.stub();
  EXPECT_EQ(AllocateAs(*plain_stub, "u1").arm(), "");
  EXPECT_EQ(GetState(*plain_stub).arms_size(), 0);
}

// Only the main arm gets traffic (no user ids) while rank reports overload: the main arm's
// controller raises its price, the idle arm's controller sees none of the load and does not.
TEST(ArmsInServerTest, EachArmHasItsOwnControllerOverItsOwnShare) {
  TestServer server(WithArms("[{name: candidate, bundle: analytic, weight: 0.5}]"));
  auto stub = server.stub();
  ASSERT_EQ(AllocateMany(*stub, "rank", 200), 200);
  const double initial = GetState(*stub).arms(1).modules(2).compute_price();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(ReportLoad(*stub, "rank", 0.9, i));
    server.server().StepControlOnce();
  }
  const v1::ControlState state = GetState(*stub);
  const v1::ArmModule& main_rank = state.arms(0).modules(2);
  const v1::ArmModule& arm_rank = state.arms(1).modules(2);
  EXPECT_GT(main_rank.compute_price(), initial);
  EXPECT_LE(arm_rank.compute_price(), initial);
  EXPECT_DOUBLE_EQ(main_rank.load_share(), 1.0);
  EXPECT_DOUBLE_EQ(arm_rank.load_share(), 0.0);
  // The main arm's price is the service's; a candidate user is decided at the arm's own price.
  EXPECT_DOUBLE_EQ(state.modules(2).compute_price(), main_rank.compute_price());
  std::string candidate_user;
  for (int i = 0; candidate_user.empty(); ++i) {
    const std::string user = "u" + std::to_string(i);
    if (ArmOf(user, std::vector<double>{0.5}) == 1) candidate_user = user;
  }
  EXPECT_DOUBLE_EQ(AllocateAs(*stub, candidate_user).compute_price(), arm_rank.compute_price());
}

TEST(ArmsInServerTest, ReloadsAddReweightAndRemoveArmsAndABadArmIsRefused) {
  TestServer server(WithArms("[{name: candidate, bundle: analytic, weight: 0.2}]"));
  auto stub = server.stub();
  server.WriteConfig(
      WithArms("[{name: candidate, bundle: analytic, weight: 0.4}, {name: b, bundle: analytic, "
               "weight: 0.1}]"));
  ASSERT_TRUE(server.server().Reload());
  v1::ControlState state = GetState(*stub);
  ASSERT_EQ(state.arms_size(), 3);
  EXPECT_NEAR(state.arms(0).weight(), 0.5, 1e-12);
  EXPECT_EQ(state.arms(2).name(), "b");
  // An arm that moves in the list keeps its controller, which reads its own share by name.
  server.WriteConfig(WithArms("[{name: b, bundle: analytic, weight: 0.1}]"));
  ASSERT_TRUE(server.server().Reload());
  server.server().StepControlOnce();
  state = GetState(*stub);
  ASSERT_EQ(state.arms_size(), 2);
  EXPECT_EQ(state.arms(1).name(), "b");
  EXPECT_NEAR(state.arms(0).weight(), 0.9, 1e-12);
  std::string metrics = server.ScrapeMetrics();
  EXPECT_EQ(metrics.find(R"(arm="candidate")"), std::string::npos) << "a removed arm's series";
  EXPECT_NE(metrics.find(R"(allot_arm_lambda{arm="b",module="rank"})"), std::string::npos);
  // A reload whose arm cannot load changes nothing: b keeps serving and its loop keeps running.
  const std::string version = server.server().config()->version;
  server.WriteConfig(WithArms(
      "[{name: b, bundle: analytic, weight: 0.1}, {name: c, bundle: /nowhere, weight: 0.1}]"));
  EXPECT_FALSE(server.server().Reload());
  EXPECT_EQ(server.server().config()->version, version);
  server.server().StepControlOnce();
  EXPECT_EQ(GetState(*stub).arms_size(), 2);
  server.WriteConfig(WithArms("[]"));
  ASSERT_TRUE(server.server().Reload());
  EXPECT_EQ(GetState(*stub).arms_size(), 0);
  EXPECT_EQ(AllocateAs(*stub, "u1").arm(), "");
  metrics = server.ScrapeMetrics();
  EXPECT_EQ(metrics.find("allot_arm_lambda{"), std::string::npos);
  EXPECT_EQ(metrics.find("allot_arm_decisions_total{"), std::string::npos);
}

}  // namespace
}  // namespace allot::testing
