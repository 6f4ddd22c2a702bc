// Allocate with explain: every option scored, costed per module and priced as the decision rule
// saw it, the chosen one marked; limited per caller by a token bucket on the injected clock.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "policy/clock.h"
#include "server/caller_rate_limiter.h"
#include "tests/integration/test_server.h"

namespace allot::testing {
namespace {

TEST(CallerRateLimiterTest, RefillsAtTheConfiguredRatePerCaller) {
  ManualClock clock;
  CallerRateLimiter limiter(clock);
  // Burst of one second's worth, then nothing until time passes.
  EXPECT_TRUE(limiter.Allow("a", 2.0));
  EXPECT_TRUE(limiter.Allow("a", 2.0));
  EXPECT_FALSE(limiter.Allow("a", 2.0));
  // Another caller has its own bucket.
  EXPECT_TRUE(limiter.Allow("b", 2.0));
  clock.AdvanceMs(499);
  EXPECT_FALSE(limiter.Allow("a", 2.0));
  clock.AdvanceMs(1);
  EXPECT_TRUE(limiter.Allow("a", 2.0));
  EXPECT_FALSE(limiter.Allow("a", 2.0));
  // Below one per second a caller still gets one call, then waits 1 / rate.
  EXPECT_TRUE(limiter.Allow("slow", 0.5));
  EXPECT_FALSE(limiter.Allow("slow", 0.5));
  clock.AdvanceMs(1999);
  EXPECT_FALSE(limiter.Allow("slow", 0.5));
  clock.AdvanceMs(1);
  EXPECT_TRUE(limiter.Allow("slow", 0.5));
  // Zero, negative or NaN rates refuse.
  EXPECT_FALSE(limiter.Allow("c", 0.0));
  EXPECT_FALSE(limiter.Allow("c", -1.0));
  EXPECT_FALSE(limiter.Allow("c", std::nan("")));
}

TEST(CallerRateLimiterTest, DistinctCallersCannotGrowItWithoutBound) {
  ManualClock clock;
  CallerRateLimiter limiter(clock, 3);
  EXPECT_TRUE(limiter.Allow("a", 1.0));
  EXPECT_TRUE(limiter.Allow("b", 1.0));
  EXPECT_TRUE(limiter.Allow("c", 1.0));
  // Every bucket is in use: a fourth caller waits, and nothing is forgotten.
  EXPECT_FALSE(limiter.Allow("d", 1.0));
  EXPECT_EQ(limiter.callers(), 3u);
  EXPECT_FALSE(limiter.Allow("a", 1.0));
  // Once the others have refilled they are forgotten, and a new caller fits.
  clock.AdvanceMs(1000);
  EXPECT_TRUE(limiter.Allow("d", 1.0));
  EXPECT_EQ(limiter.callers(), 1u);
}

TEST(CallerRateLimiterTest, CallerIsThePeerAddressWithoutItsPort) {
  EXPECT_EQ(CallerOfPeer("ipv4:10.0.0.7:51234"), "ipv4:10.0.0.7");
  EXPECT_EQ(CallerOfPeer("ipv6:[::1]:5000"), "ipv6:[::1]");
  EXPECT_EQ(CallerOfPeer("unix:/tmp/allot.sock"), "unix:/tmp/allot.sock");
  EXPECT_EQ(CallerOfPeer("ipv4"), "ipv4");
  EXPECT_EQ(CallerOfPeer(""), "");
}

grpc::Status Explain(v1::Allocator::Stub& stub, v1::AllocateRequest request,
                     v1::AllocateResponse* response) {
  request.set_explain(true);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return stub.Allocate(&context, request, response);
}

TEST(ExplainTest, EveryOptionIsPricedAndTheChosenOneIsTheBestWithinTheCap) {
  ManualClock clock;
  TestServer server(EmbeddedDefaultConfigYaml(), &clock);
  auto stub = server.stub();
  const v1::ControlState schema = GetState(*stub);
  for (const v1::AgentSchema& agent : schema.agents()) {
    for (const float level : {-1.0f, 0.3f, 2.5f}) {
      clock.AdvanceMs(1000);  // a fresh token for every call
      v1::AllocateResponse response;
      ASSERT_TRUE(
          Explain(*stub, MakeRequest(agent.name(), agent.features_size(), level), &response).ok());
      ASSERT_FALSE(response.fallback());
      const v1::Explanation& e = response.explanation();
      ASSERT_EQ(e.options_size(), agent.joint_actions()) << agent.name();
      EXPECT_EQ(e.inference(), "analytic");
      EXPECT_EQ(e.chosen_by(), "rule");
      EXPECT_DOUBLE_EQ(e.user_value(), response.user_value());
      EXPECT_EQ(e.value_bucket(), response.value_bucket());
      int chosen = 0;
      double best_within_cap = -INFINITY;
      for (int i = 0; i < e.options_size(); ++i) {
        const v1::OptionScore& o = e.options(i);
        if (i > 0) {
          EXPECT_GE(e.options(i - 1).priced_score(), o.priced_score()) << "sorted";
        }
        EXPECT_FALSE(o.label().empty());
        ASSERT_GE(o.costs_size(), 1);
        EXPECT_EQ(o.costs(0).module(), agent.module()) << "own module first";
        double priced = o.value();
        for (const v1::ModuleCost& c : o.costs()) priced -= c.compute_price() * c.cost_ms();
        EXPECT_NEAR(o.priced_score(), priced, 1e-9 * (1 + std::abs(priced)));
        EXPECT_EQ(o.over_cap(), e.max_cost_ms() > 0 && o.costs(0).cost_ms() > e.max_cost_ms());
        if (!o.over_cap()) best_within_cap = std::max(best_within_cap, o.priced_score());
        if (o.chosen()) {
          ++chosen;
          EXPECT_DOUBLE_EQ(o.value(), response.predicted_value());
          EXPECT_DOUBLE_EQ(o.costs(0).cost_ms(), response.predicted_cost());
          EXPECT_DOUBLE_EQ(o.costs(0).compute_price(), response.compute_price());
          EXPECT_DOUBLE_EQ(o.priced_score(), best_within_cap) << agent.name() << " " << level;
        }
      }
      EXPECT_EQ(chosen, 1);
    }
  }
}

TEST(ExplainTest, ANormalCallCarriesNoExplanation) {
  TestServer server;
  auto stub = server.stub();
  grpc::ClientContext context;
  v1::AllocateResponse response;
  ASSERT_TRUE(stub->Allocate(&context, MakeRequest("prerank", 8), &response).ok());
  EXPECT_FALSE(response.has_explanation());
}

TEST(ExplainTest, ACallerOverItsRateGetsResourceExhaustedAndOthersAreServed) {
  ManualClock clock;
  TestServer server(
      DefaultConfigWith("explain_per_caller_per_s: 2.0", "explain_per_caller_per_s: 1.0"), &clock);
  auto stub = server.stub();
  const v1::AllocateRequest request = MakeRequest("prerank", 8);
  v1::AllocateResponse response;
  ASSERT_TRUE(Explain(*stub, request, &response).ok());
  const grpc::Status over = Explain(*stub, request, &response);
  EXPECT_EQ(over.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(over.error_message().find("explain"), std::string::npos) << over.error_message();
  EXPECT_NE(over.error_message().find("server.explain_per_caller_per_s"), std::string::npos);
  // The caller's plain decisions are not limited.
  grpc::ClientContext context;
  EXPECT_TRUE(stub->Allocate(&context, request, &response).ok());
  clock.AdvanceMs(1000);
  EXPECT_TRUE(Explain(*stub, request, &response).ok());
}

TEST(ExplainTest, ZeroRateRefusesExplainOnly) {
  TestServer server(
      DefaultConfigWith("explain_per_caller_per_s: 2.0", "explain_per_caller_per_s: 0"));
  auto stub = server.stub();
  v1::AllocateResponse response;
  EXPECT_EQ(Explain(*stub, MakeRequest("rank", 8), &response).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  grpc::ClientContext context;
  EXPECT_TRUE(stub->Allocate(&context, MakeRequest("rank", 8), &response).ok());
}

}  // namespace
}  // namespace allot::testing
