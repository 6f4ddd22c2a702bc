// The real gRPC server in-process on 127.0.0.1: allocation, validation, health, control state,
// metrics, reload and graceful shutdown.
#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "client/allot_client.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/integration/test_server.h"

namespace allot::testing {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

HealthCheckResponse::ServingStatus HealthOf(const std::shared_ptr<grpc::Channel>& channel,
                                            const std::string& service,
                                            grpc::StatusCode* code = nullptr) {
  auto stub = Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  if (code) *code = status.error_code();
  return status.ok() ? response.status() : HealthCheckResponse::UNKNOWN;
}

TEST(ServerTest, AllocationsStayWithinTheConfiguredActionSpaces) {
  TestServer server;
  auto stub = server.stub();
  const v1::ControlState schema = GetState(*stub);
  ASSERT_EQ(schema.agents_size(), 3);
  std::mt19937 rng(1);
  std::normal_distribution<float> feature(0.0f, 1.5f);
  std::set<std::string> queue_lengths_seen;
  for (const v1::AgentSchema& agent : schema.agents()) {
    for (int trial = 0; trial < 200; ++trial) {
      v1::AllocateRequest request = MakeRequest(agent.name(), agent.features_size());
      for (int i = 0; i < agent.features_size(); ++i) request.set_features(i, feature(rng));
      v1::AllocateResponse response;
      ASSERT_TRUE(Call(*stub, request, &response).ok());
      EXPECT_FALSE(response.fallback());
      EXPECT_EQ(response.agent(), agent.name());
      EXPECT_EQ(response.bundle_version(), "analytic");
      EXPECT_DOUBLE_EQ(response.compute_price(), 0.1);
      EXPECT_GT(response.predicted_cost(), 0.0);
      ASSERT_EQ(response.decisions_size(), agent.decisions_size());
      for (int d = 0; d < agent.decisions_size(); ++d) {
        const v1::DecisionSchema& ds = agent.decisions(d);
        const v1::Decision& got = response.decisions(d);
        EXPECT_EQ(got.name(), ds.name());
        EXPECT_EQ(got.kind(), ds.kind());
        const std::set<std::string> options(ds.options().begin(), ds.options().end());
        for (const std::string& s : got.selected()) EXPECT_TRUE(options.count(s)) << s;
        if (ds.kind() == v1::ACTION_KIND_LINK) {
          EXPECT_GE(static_cast<uint32_t>(got.selected_size()), ds.min_selected());
          EXPECT_LE(static_cast<uint32_t>(got.selected_size()), ds.max_selected());
        } else {
          EXPECT_EQ(got.selected_size(), 1);
        }
        if (ds.kind() == v1::ACTION_KIND_QUEUE) {
          EXPECT_EQ(std::to_string(got.queue_length()), got.selected(0));
          queue_lengths_seen.insert(agent.name() + ":" + got.selected(0));
        }
      }
    }
  }
  // Varying request value moves the decision: more than one queue length per queue agent.
  EXPECT_GE(queue_lengths_seen.size(), 4u);
}

// A continuous queue (a `range` in the config): the schema describes the range, and Allocate
// answers with lengths on its grid.
TEST(ServerTest, AContinuousQueueIsDescribedByItsRangeAndAnsweredWithALength) {
  const std::string yaml = ContinuousConfigYaml();
  ASSERT_FALSE(yaml.empty());
  TestServer server(WithOwnModelDir(yaml, ::testing::TempDir()));
  auto stub = server.stub();
  const v1::ControlState state = GetState(*stub);
  ASSERT_EQ(state.agents_size(), 3);
  EXPECT_FALSE(state.agents(0).decisions(0).has_range());  // recall's channels
  const v1::AgentSchema& rank = state.agents(2);
  ASSERT_EQ(rank.name(), "rank");
  const v1::DecisionSchema& queue = rank.decisions(0);
  ASSERT_TRUE(queue.has_range());
  EXPECT_EQ(queue.range().min(), 50u);
  EXPECT_EQ(queue.range().max(), 400u);
  EXPECT_EQ(queue.range().granularity(), 25u);
  EXPECT_DOUBLE_EQ(queue.range().cost_per_item_ms(), 0.0265);
  EXPECT_EQ(queue.options_size(), 15);
  EXPECT_EQ(rank.joint_actions(), 30u);

  std::set<uint32_t> lengths;
  for (int trial = 0; trial < 40; ++trial) {
    v1::AllocateRequest request = MakeRequest("rank", rank.features_size());
    request.set_features(0, -2.0f + 0.2f * static_cast<float>(trial));  // user_hist_value_log
    v1::AllocateResponse response;
    ASSERT_TRUE(Call(*stub, request, &response).ok());
    const uint32_t length = response.decisions(0).queue_length();
    ExpectOnContinuousRankGrid(length);
    lengths.insert(length);
  }
  EXPECT_GE(lengths.size(), 2u) << "the request's value should move the length";
}

TEST(ServerTest, BadInputIsRejectedWithTheFieldNamed) {
  TestServer server;
  auto stub = server.stub();
  v1::AllocateResponse response;
  v1::AllocateRequest unknown = MakeRequest("ranking", 8);
  grpc::Status s = Call(*stub, unknown, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().rfind("agent: unknown agent 'ranking'", 0), 0u) << s.error_message();

  s = Call(*stub, MakeRequest("rank", 7), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "features: agent 'rank' expects 8 features, got 7");

  v1::AllocateRequest nan = MakeRequest("rank", 8);
  nan.set_features(2, std::nanf(""));
  s = Call(*stub, nan, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "features: features[2] (ctr_7d) is not finite");

  v1::LoadReport report;
  report.set_module("rank");
  report.set_cpu_utilization(2.0);
  grpc::ClientContext context;
  v1::ReportLoadResponse ignored;
  s = stub->ReportLoad(&context, report, &ignored);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "cpu_utilization: must be a fraction in [0, 1]");

  // Nothing bad reached the state: no load recorded, and valid requests still succeed.
  const v1::ControlState state = GetState(*stub);
  for (const auto& m : state.modules()) EXPECT_FALSE(m.has_last_load()) << m.name();
  EXPECT_TRUE(Call(*stub, MakeRequest("rank", 8), &response).ok());
  const std::string metrics = server.ScrapeMetrics();
  EXPECT_NE(metrics.find(R"(allot_invalid_requests_total{field="features",method="Allocate"} 2)"),
            std::string::npos);
}

// Found by a probe: a body that is not the method's message got UNIMPLEMENTED with no message.
TEST(ServerTest, ABodyThatIsNotTheMessageIsRefusedSayingSo) {
  TestServer server;
  grpc::GenericStub generic(server.channel());
  const auto call = [&](const std::string& method, const std::string& bytes) {
    const grpc::Slice slice(bytes);
    const grpc::ByteBuffer body(&slice, 1);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::ByteBuffer reply;
    std::mutex mu;
    std::condition_variable done;
    bool finished = false;
    grpc::Status status;
    generic.UnaryCall(&context, "/allot.v1.Allocator/" + method, grpc::StubOptions(), &body, &reply,
                      [&](grpc::Status s) {
                        std::lock_guard<std::mutex> lock(mu);
                        status = std::move(s);
                        finished = true;
                        done.notify_one();
                      });
    std::unique_lock<std::mutex> lock(mu);
    done.wait(lock, [&] { return finished; });
    return status;
  };
  const std::string garbage = "\xff\xff\xff\xff";
  for (const auto& [method, message] : std::vector<std::pair<std::string, std::string>>{
           {"Allocate", "allot.v1.AllocateRequest"},
           {"ReportLoad", "allot.v1.LoadReport"},
           {"GetControlState", "allot.v1.GetControlStateRequest"}}) {
    const grpc::Status s = call(method, garbage);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method;
    EXPECT_EQ(s.error_message(), "request: the body is not a valid " + message) << method;
  }
  // A truncated but otherwise valid body is refused alike; a whole one is served.
  std::string valid;
  ASSERT_TRUE(MakeRequest("rank", 8).SerializeToString(&valid));
  EXPECT_EQ(call("Allocate", valid.substr(0, valid.size() - 3)).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(call("Allocate", valid).ok());
  EXPECT_NE(server.ScrapeMetrics().find(
                R"(allot_invalid_requests_total{field="request",method="Allocate"} 2)"),
            std::string::npos);
}

// A call cancelled before its message arrives (as when a deadline passes while it waits in the
// transport under overload) reaches the handler with no body: it is counted as cancelled, not as
// a bad request, so overload does not look like broken clients.
TEST(ServerTest, ACallCancelledBeforeItsMessageIsNotCountedAsInvalid) {
  TestServer server;
  grpc::GenericStub generic(server.channel());
  grpc::CompletionQueue cq;
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext context;
    const auto call = generic.PrepareCall(&context, "/allot.v1.Allocator/Allocate", &cq);
    call->StartCall(reinterpret_cast<void*>(1));  // headers only, no message
    void* tag = nullptr;
    bool ok = false;
    ASSERT_TRUE(cq.Next(&tag, &ok));
    context.TryCancel();
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(2));
    ASSERT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  }
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  std::string metrics;
  for (int i = 0; i < 100; ++i) {  // the server sees the cancellations asynchronously
    metrics = server.ScrapeMetrics();
    if (metrics.find(R"(allot_rpc_duration_seconds_count{code="CANCELLED",method="Allocate"} 5)") !=
        std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(
      metrics.find(R"(allot_rpc_duration_seconds_count{code="CANCELLED",method="Allocate"} 5)"),
      std::string::npos)
      << "the handler did not see the cancelled calls";
  EXPECT_EQ(metrics.find(R"(allot_invalid_requests_total{field="request",method="Allocate"} )"),
            metrics.find(R"(allot_invalid_requests_total{field="request",method="Allocate"} 0)"));
}

TEST(ServerTest, TooLittleDeadlineLeftAnswersWithTheSafeDefault) {
  TestServer server(DefaultConfigWith("min_deadline_ms: 1.0", "min_deadline_ms: 60000"));
  auto stub = server.stub();
  v1::AllocateResponse response;
  ASSERT_TRUE(
      Call(*stub, MakeRequest("recall", 8, 2.0f), &response, std::chrono::milliseconds(5000)).ok());
  ExpectRecallSafeDefault(response, "deadline");
  EXPECT_NE(
      server.ScrapeMetrics().find(R"(allot_fallbacks_total{agent="recall",reason="deadline"} 1)"),
      std::string::npos);
}

TEST(ServerTest, HealthAndReadinessAreServing) {
  TestServer server;
  EXPECT_EQ(HealthOf(server.channel(), ""), HealthCheckResponse::SERVING);
  EXPECT_EQ(HealthOf(server.channel(), "readiness"), HealthCheckResponse::SERVING);
  grpc::StatusCode code;
  HealthOf(server.channel(), "no-such-service", &code);
  EXPECT_EQ(code, grpc::StatusCode::NOT_FOUND);
}

TEST(ServerTest, ReportedLoadShowsUpInControlState) {
  ManualClock clock;
  TestServer server;
  auto stub = server.stub();
  v1::LoadReport report;
  report.set_module("prerank");
  report.set_cpu_utilization(0.42);
  report.set_qps(1234);
  report.set_degradation_level(1);
  report.set_reporter("pod-1");
  grpc::ClientContext context;
  v1::ReportLoadResponse ignored;
  ASSERT_TRUE(stub->ReportLoad(&context, report, &ignored).ok());
  const v1::ControlState state = GetState(*stub);
  ASSERT_EQ(state.modules_size(), 3);
  const v1::ModuleState& prerank = state.modules(1);
  EXPECT_EQ(prerank.name(), "prerank");
  EXPECT_DOUBLE_EQ(prerank.cpu_target(), 0.46);
  EXPECT_DOUBLE_EQ(prerank.compute_price(), 0.1);
  ASSERT_TRUE(prerank.has_last_load());
  EXPECT_DOUBLE_EQ(prerank.last_load().cpu_utilization(), 0.42);
  EXPECT_DOUBLE_EQ(prerank.last_load().qps(), 1234);
  EXPECT_EQ(prerank.last_load().degradation_level(), 1u);
  EXPECT_FALSE(prerank.last_load().stale());
  EXPECT_FALSE(state.modules(0).has_last_load());
  EXPECT_EQ(state.agents(0).features_size(), 8);
  EXPECT_EQ(state.agents(0).joint_actions(), 62u);
  EXPECT_EQ(state.bundle_version(), "analytic");
}

TEST(ServerTest, MetricsAreValidPrometheusExposition) {
  TestServer server;
  auto stub = server.stub();
  v1::AllocateResponse response;
  v1::AllocateRequest request = MakeRequest("recall", 8);
  auto* cache = request.add_cache();
  cache->set_stage(v1::STAGE_RANK);
  cache->set_present(true);
  cache->set_age_seconds(2);
  cache->set_size(20);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Call(*stub, request, &response).ok());
  EXPECT_EQ(response.cache_reuse(), v1::CACHE_REUSE_RANK);
  const std::string metrics = server.ScrapeMetrics();
  for (const char* name :
       {"allot_rpc_duration_seconds_bucket", "allot_decision_duration_seconds_bucket",
        "allot_actions_total", "allot_fallbacks_total", "allot_cache_reuse_total", "allot_lambda",
        "allot_module_cpu_target_ratio", "allot_predicted_cost_core_seconds", "allot_bundle_info",
        "allot_config_info"}) {
    EXPECT_NE(metrics.find(name), std::string::npos) << name;
  }
  // Sub-millisecond buckets exist.
  EXPECT_NE(
      metrics.find(R"(allot_rpc_duration_seconds_bucket{code="OK",method="Allocate",le="0.0001"})"),
      std::string::npos);
  EXPECT_NE(metrics.find(R"(allot_cache_reuse_total{agent="recall",choice="rank"} 20)"),
            std::string::npos);
  const std::string path = server.config_path() + ".metrics";
  std::ofstream(path) << metrics;
  const std::string cmd = "promtool check metrics < " + path + " > " + path + ".out 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream out(path + ".out");
  const std::string lint((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << "promtool check metrics:\n" << lint;
}

TEST(ServerTest, ReloadAppliesAValidConfigAndKeepsTheLastGoodOnError) {
  TestServer server;
  auto stub = server.stub();
  const std::string before = GetState(*stub).config_version();

  server.WriteConfig(
      DefaultConfigWith("{name: rank,    cpu_target: 0.46", "{name: rank,    cpu_target: 0.55"));
  ASSERT_TRUE(server.server().Reload());
  v1::ControlState state = GetState(*stub);
  const std::string after = state.config_version();
  EXPECT_NE(after, before);
  EXPECT_DOUBLE_EQ(state.modules(2).cpu_target(), 0.55);

  server.WriteConfig(DefaultConfigWith("horizon: 10", "horizon: -3"));
  EXPECT_FALSE(server.server().Reload());
  state = GetState(*stub);
  EXPECT_EQ(state.config_version(), after);
  EXPECT_DOUBLE_EQ(state.modules(2).cpu_target(), 0.55);
  v1::AllocateResponse response;
  EXPECT_TRUE(Call(*stub, MakeRequest("rank", 8), &response).ok());
  EXPECT_NE(server.ScrapeMetrics().find(R"(allot_config_reloads_total{result="error"} 1)"),
            std::string::npos);
}

// A SIGHUP reload of a broken file is one failed reload: the watcher does not try the same
// contents again. (A negative check: it waits out several of the watcher's polls.)
TEST(ServerTest, AFailedReloadIsCountedOnce) {
  const std::string fast = DefaultConfigWith("reload_poll_s: 2.0", "reload_poll_s: 0.02");
  TestServer server(fast);
  std::string broken = fast;
  broken.replace(broken.find("horizon: 10"), 11, "horizon: -3");
  server.WriteConfig(broken);
  EXPECT_FALSE(server.server().Reload());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // ~15 polls
  const std::string metrics = server.ScrapeMetrics();
  EXPECT_NE(metrics.find(R"(allot_config_reloads_total{result="error"} 1)"), std::string::npos)
      << metrics.substr(metrics.find("allot_config_reloads_total"), 200);
}

TEST(ServerTest, ConfigFileChangesArepicked_UpByTheWatcher) {
  TestServer server(DefaultConfigWith("reload_poll_s: 2.0", "reload_poll_s: 0.05"));
  auto stub = server.stub();
  const std::string before = GetState(*stub).config_version();
  server.WriteConfig(DefaultConfigWith("reload_poll_s: 2.0", "reload_poll_s: 0.05") +
                     "\n# touched\n");
  // Waits for an event, bounded; not a timing assertion.
  std::string now = before;
  for (int i = 0; i < 200 && now == before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    now = GetState(*stub).config_version();
  }
  EXPECT_NE(now, before);
}

TEST(ServerTest, ShutdownFailsNoCallInFlight) {
  TestServer server(DefaultConfigWith("drain_delay_s: 0.0", "drain_delay_s: 0.5"));
  const auto channel = server.channel();
  // Clients behave like a load balancer would: stop sending once readiness says NOT_SERVING.
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&] {
      AllotClient client(channel);
      while (!stop.load()) {
        v1::AllocateRequest request = MakeRequest("rank", 8);
        v1::AllocateResponse response;
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        (client.stub().Allocate(&context, request, &response).ok() ? ok : failed)++;
      }
    });
  }
  std::thread watcher([&] {
    while (HealthOf(channel, "readiness") == HealthCheckResponse::SERVING) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stop = true;
  });
  while (ok.load() < 500) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server.server().Shutdown();
  watcher.join();
  for (auto& c : clients) c.join();
  EXPECT_GT(ok.load(), 500);
  EXPECT_EQ(failed.load(), 0);
}

// A replica leaves without failing a call: clients that check health on their side (gRPC's
// client-side health checking on "readiness", round robin over two replicas) stop sending to
// it while it drains, and every call lands on the other.
TEST(ServerTest, AHealthAwareClientLosesNoCallWhileAReplicaDrains) {
  TestServer leaving(DefaultConfigWith("drain_delay_s: 0.0", "drain_delay_s: 0.5"));
  TestServer staying;
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(
      R"({"loadBalancingConfig": [{"round_robin": {}}],
          "healthCheckConfig": {"serviceName": "readiness"}})");
  const auto channel =
      grpc::CreateCustomChannel("ipv4:" + leaving.target() + "," + staying.target(),
                                grpc::InsecureChannelCredentials(), args);
  ASSERT_TRUE(
      channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5)));
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      auto stub = v1::Allocator::NewStub(channel);
      while (!stop.load()) {
        v1::AllocateResponse response;
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        (stub->Allocate(&context, MakeRequest("rank", 8), &response).ok() ? ok : failed)++;
      }
    });
  }
  while (ok.load() < 500) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto counted = [](const TestServer& server) {
    const std::string metrics = server.ScrapeMetrics();
    const std::regex line(
        R"(allot_rpc_duration_seconds_count\{code="OK",method="Allocate"\} (\d+))");
    std::smatch m;
    return std::regex_search(metrics, m, line) ? std::stoi(m[1]) : 0;
  };
  EXPECT_GT(counted(leaving), 0);  // both replicas served
  leaving.server().Shutdown();
  const int after_shutdown = ok.load();
  while (ok.load() < after_shutdown + 500)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GE(counted(staying), 500);
}

// Found by a probe: an idle connection whose client does not read the server's GOAWAY held
// shutdown for about three seconds. Handlers answer inline, so once none is running shutdown
// only needs a short grace for the last responses to flush.
TEST(ServerTest, AnIdleConnectionDoesNotHoldUpShutdown) {
  TestServer server;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(server.server().port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  // The HTTP/2 preface and an empty SETTINGS frame: a connected client that then only idles.
  const std::string hello = std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") +
                            std::string("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);
  ASSERT_EQ(write(fd, hello.data(), hello.size()), static_cast<ssize_t>(hello.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  server.server().Shutdown();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  close(fd);
  EXPECT_LT(seconds, 1.5);
}

TEST(ServerTest, ClientLibraryBuildsRequestsByNameAndFallsBackOnError) {
  TestServer server;
  // The 10 ms production deadline is about latency, which this test does not measure: a shared CI
  // machine can stall one call that long.
  ClientOptions options;
  options.allocate_timeout = std::chrono::seconds(5);
  AllotClient client(server.channel(), options);
  ASSERT_TRUE(client.LoadSchema().ok());
  const v1::AllocateRequest request = client.NewRequest("prerank")
                                          .Set("user_hist_value_log", 1.2f)
                                          .Set("recall_top_score", 0.7f)
                                          .RequestId("abc")
                                          .request();
  EXPECT_EQ(request.features_size(), 8);
  EXPECT_FLOAT_EQ(request.features(0), 1.2f);
  EXPECT_FLOAT_EQ(request.features(7), 0.7f);
  EXPECT_THROW(client.NewRequest("prerank").Set("no_such_feature", 1), std::invalid_argument);
  EXPECT_THROW(client.NewRequest("gpu"), std::invalid_argument);
  AllocationResult result = client.Allocate(request);
  ASSERT_TRUE(result.from_server) << result.status.error_message();
  EXPECT_EQ(result.response.request_id(), "abc");

  v1::AllocateRequest bad = request;
  bad.add_features(1);
  result = client.Allocate(bad);
  EXPECT_FALSE(result.from_server);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(result.response.fallback());
  ASSERT_EQ(result.response.decisions_size(), 1);
  EXPECT_EQ(result.response.decisions(0).queue_length(), 200);

  server.server().Shutdown();
  result = client.Allocate(request);
  EXPECT_FALSE(result.from_server);
  EXPECT_TRUE(result.response.fallback());
  EXPECT_EQ(result.response.decisions(0).queue_length(), 200);
}

// gRPC's default SO_REUSEPORT let a second allot-server start on a port in use and take half of
// the connections.
TEST(ServerStartTest, APortInUseFailsTheStart) {
  TestServer first;
  ServerOptions options;
  options.config_path = first.config_path();
  options.listen = first.target();
  options.metrics_listen = "127.0.0.1:0";
  try {
    AllotServer::Start(options);
    ADD_FAILURE() << "a second server started on " << first.target();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on " + first.target()), std::string::npos)
        << e.what();
  }
}

// Found by a probe: logging settings were not applied on reload.
TEST(ServerReloadTest, LoggingSettingsAreAppliedOnReload) {
  TestServer server;
  server.WriteConfig(
      std::regex_replace(EmbeddedDefaultConfigYaml(), std::regex("level: info"), "level: error"));
  ASSERT_TRUE(server.server().Reload());
  EXPECT_EQ(spdlog::get_level(), spdlog::level::err);
  server.WriteConfig(EmbeddedDefaultConfigYaml());
  ASSERT_TRUE(server.server().Reload());
  EXPECT_EQ(spdlog::get_level(), spdlog::level::info);
}

// Found by a probe: the hand-written endpoint served one connection at a time, so a client
// sending a byte every 0.5 s made a real scrape time out.
TEST(MetricsEndpointTest, SlowClientsDoNotHoldUpAScrape) {
  TestServer server;
  std::vector<int> slow;
  for (int i = 0; i < 8; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server.server().metrics_port()));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_GT(write(fd, "GET /metr", 9), 0);  // and never the rest
    slow.push_back(fd);
  }
  const std::string metrics = server.ScrapeMetrics();
  for (const int fd : slow) close(fd);
  EXPECT_NE(metrics.find("allot_config_info"), std::string::npos);
}

}  // namespace
}  // namespace allot::testing
