// Overload on the real gRPC server: calls beyond server.max_in_flight are shed (answered at once,
// without scoring), every call gives its slot back however it ends, and the per-connection stream
// limit is what the server advertises to an independent HTTP/2 client.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/test_server.h"

namespace allot::testing {
namespace {

bool HasMetric(const std::string& metrics, const std::string& line) {
  return metrics.find(line + "\n") != std::string::npos;
}

// Polls /metrics until `line` shows (calls end asynchronously), for at most 5 s.
bool MetricShows(const TestServer& server, const std::string& line) {
  for (int i = 0; i < 250; ++i) {
    if (HasMetric(server.ScrapeMetrics(), line)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// A call's slot is given back when gRPC reports it done, which can come just after its caller
// has the answer: waits (at most 5 s) until the server holds no call.
bool NoCallHeld(AllotServer& server) {
  for (int i = 0; i < 500 && server.allocate_in_flight().count() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return server.allocate_in_flight().count() == 0;
}

// Holds slots of the server's in-flight count, as calls whose answers are still being written do.
class HeldCalls {
 public:
  HeldCalls(AllotServer& server, int n) : calls_(server.allocate_in_flight()), n_(n) {
    for (int i = 0; i < n_; ++i) calls_.Enter();
  }
  ~HeldCalls() {
    for (int i = 0; i < n_; ++i) calls_.Leave();
  }
  HeldCalls(const HeldCalls&) = delete;
  HeldCalls& operator=(const HeldCalls&) = delete;

 private:
  InFlightCalls& calls_;
  int n_;
};

TEST(OverloadTest, CallsBeyondMaxInFlightGetTheSafeDefaultWithoutScoring) {
  TestServer server;
  auto stub = server.stub();
  v1::AllocateResponse response;
  ASSERT_TRUE(NoCallHeld(server.server()));
  {
    // Under the default limit, two held calls change nothing.
    const HeldCalls held(server.server(), 2);
    ASSERT_TRUE(Call(*stub, MakeRequest("recall", 8, 2.0f), &response).ok());
    EXPECT_FALSE(response.fallback());
  }
  // The limit is reloadable.
  server.WriteConfig(DefaultConfigWith("max_in_flight: 256", "max_in_flight: 2"));
  ASSERT_TRUE(server.server().Reload());
  ASSERT_TRUE(NoCallHeld(server.server()));
  {
    const HeldCalls held(server.server(), 2);
    ASSERT_TRUE(Call(*stub, MakeRequest("recall", 8, 2.0f), &response).ok());
    ExpectRecallSafeDefault(response, "overload");
    // Shedding does not skip validation: a bad request is still refused, naming its field.
    grpc::ClientContext context;
    v1::AllocateRequest bad = MakeRequest("recall", 8);
    bad.set_agent("no-such-agent");
    const grpc::Status status = stub->Allocate(&context, bad, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(status.error_message().find("agent"), std::string::npos) << status.error_message();
  }
  ASSERT_TRUE(NoCallHeld(server.server())) << "a call kept its slot";
  ASSERT_TRUE(Call(*stub, MakeRequest("recall", 8, 2.0f), &response).ok());
  EXPECT_FALSE(response.fallback()) << "a slot given back makes room again";
  const std::string metrics = server.ScrapeMetrics();
  EXPECT_TRUE(HasMetric(metrics, R"(allot_shed_calls_total{method="Allocate"} 2)")) << metrics;
  EXPECT_TRUE(HasMetric(metrics, R"(allot_fallbacks_total{agent="recall",reason="overload"} 1)"));
}

TEST(OverloadTest, ResourceExhaustedAnswerNamesTheLimit) {
  std::string yaml = DefaultConfigWith("max_in_flight: 256", "max_in_flight: 1");
  ReplaceOnce(yaml, "overload_answer: safe_default", "overload_answer: resource_exhausted");
  TestServer server(yaml);
  auto stub = server.stub();
  v1::AllocateResponse response;
  ASSERT_TRUE(NoCallHeld(server.server()));
  {
    const HeldCalls held(server.server(), 1);
    const grpc::Status status = Call(*stub, MakeRequest("rank", 8), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_NE(status.error_message().find("server.max_in_flight (1)"), std::string::npos)
        << status.error_message();
  }
  ASSERT_TRUE(NoCallHeld(server.server()));
  EXPECT_TRUE(Call(*stub, MakeRequest("rank", 8), &response).ok());
}

// A slot that leaked would shed calls forever: every way a call can end gives its slot back.
TEST(OverloadTest, EveryCallGivesItsSlotBack) {
  TestServer server;
  std::vector<std::thread> callers;
  std::atomic<int> answered{0};
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&] {
      auto stub = server.stub();
      for (int i = 0; i < 50; ++i) {
        v1::AllocateResponse response;
        if (Call(*stub, MakeRequest("recall", 8, 0.1f * i), &response).ok()) ++answered;
      }
    });
  }
  // Calls cancelled before their message, and calls whose deadline passes at once.
  grpc::GenericStub generic(server.channel());
  grpc::CompletionQueue cq;
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext context;
    const auto call = generic.PrepareCall(&context, "/allot.v1.Allocator/Allocate", &cq);
    call->StartCall(reinterpret_cast<void*>(1));
    void* tag = nullptr;
    bool ok = false;
    ASSERT_TRUE(cq.Next(&tag, &ok));
    context.TryCancel();
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(2));
    ASSERT_TRUE(cq.Next(&tag, &ok));
  }
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  auto stub = server.stub();
  for (int i = 0; i < 20; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::microseconds(50));
    v1::AllocateResponse response;
    stub->Allocate(&context, MakeRequest("prerank", 8), &response);
  }
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(answered.load(), 400);
  EXPECT_TRUE(MetricShows(server, R"(allot_calls_in_flight{method="Allocate"} 0)"))
      << server.ScrapeMetrics();
}

// What the server advertises in its HTTP/2 SETTINGS, read by nghttp (nghttp2-client).
std::string AdvertisedSettings(const std::string& target) {
  const std::string command =
      "nghttp -nv -t 5 http://" + target + "/grpc.health.v1.Health/Check 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return "";
  std::string out;
  char buffer[4096];
  while (const size_t n = fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, n);
  pclose(pipe);
  return out;
}

TEST(OverloadTest, TheServerAdvertisesItsStreamLimitPerConnection) {
  {
    TestServer server;
    const std::string settings = AdvertisedSettings(server.target());
    ASSERT_NE(settings.find("recv SETTINGS frame"), std::string::npos)
        << "nghttp (nghttp2-client) could not read the server's settings:\n"
        << settings;
    EXPECT_NE(settings.find("[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):32]"), std::string::npos)
        << settings;
  }
  TestServer server(DefaultConfigWith("max_concurrent_streams: 32", "max_concurrent_streams: 7"));
  EXPECT_NE(AdvertisedSettings(server.target()).find("[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):7]"),
            std::string::npos);
}

}  // namespace
}  // namespace allot::testing
