// The control loop inside the real server, and the Prometheus telemetry source against a real
// Prometheus server started by the test on 127.0.0.1.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <map>
#include <optional>
#include <regex>
#include <thread>

#include "policy/control_loop.h"
#include "server/metrics_http.h"
#include "server/prometheus_source.h"
#include "tests/integration/prometheus_process.h"
#include "tests/integration/test_server.h"

namespace allot::testing {
namespace {

TEST(ControlInServerTest, ReportedOverloadRaisesTheModulesLambda) {
  TestServer server;
  auto stub = server.stub();
  v1::AllocateResponse response;
  ASSERT_EQ(AllocateMany(*stub, "rank", 200), 200);
  const double before = GetState(*stub).modules(2).compute_price();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(ReportLoad(*stub, "rank", 0.9, i));
    server.server().control().StepOnce();
  }
  const v1::ControlState state = GetState(*stub);
  const v1::ModuleState& rank = state.modules(2);
  EXPECT_GT(rank.compute_price(), before);
  EXPECT_EQ(rank.controller(), "mpc");
  EXPECT_FALSE(rank.stale());
  EXPECT_GT(rank.predicted_cpu(), 0.0);
  EXPECT_EQ(rank.forecast_qps_size(), 10);
  EXPECT_TRUE(rank.max_cost_ms() > 0) << "0.9 is above the 0.8 hard limit";
  EXPECT_TRUE(state.modules(0).stale());  // recall never reported
  EXPECT_EQ(state.telemetry_source(), "report_load");
  // New decisions use the new price.
  grpc::ClientContext context;
  ASSERT_TRUE(stub->Allocate(&context, MakeRequest("rank", 8), &response).ok());
  EXPECT_DOUBLE_EQ(response.compute_price(), rank.compute_price());
  const std::string metrics = server.ScrapeMetrics();
  EXPECT_NE(metrics.find(R"(allot_controller_active{controller="mpc",module="rank"} 1)"),
            std::string::npos);
  EXPECT_NE(metrics.find(R"(allot_telemetry_stale{module="recall"} 1)"), std::string::npos);
}

// A reload that leaves the modules as they are keeps the controller: a logging change keeps
// everything, a new cpu target is taken by the same warm controller.
TEST(ControlInServerTest, ReloadKeepsTheControllersStateWhereTheModulesStay) {
  const std::string slow = DefaultConfigWith("period_s: 1.0", "period_s: 600");
  TestServer server(slow);
  auto stub = server.stub();
  ASSERT_EQ(AllocateMany(*stub, "rank", 200), 200);
  const int64_t now = SystemClock::Instance().NowMs();
  for (int i = 0; i < 5; ++i) {
    v1::LoadReport report;
    report.set_module("rank");
    report.set_cpu_utilization(0.5);
    report.set_qps(1000);
    report.set_timestamp_ms(now + i);
    grpc::ClientContext context;
    v1::ReportLoadResponse ignored;
    ASSERT_TRUE(stub->ReportLoad(&context, report, &ignored).ok());
    server.server().control().StepOnce();
  }
  const v1::ModuleState before = GetState(*stub).modules(2);
  ASSERT_EQ(before.controller(), "mpc");

  server.WriteConfig(std::regex_replace(slow, std::regex("level: info"), "level: warn"));
  ASSERT_TRUE(server.server().Reload());
  v1::ModuleState after = GetState(*stub).modules(2);
  EXPECT_EQ(after.controller(), "mpc");
  EXPECT_DOUBLE_EQ(after.predicted_cpu(), before.predicted_cpu());
  EXPECT_DOUBLE_EQ(after.compute_price(), before.compute_price());

  server.WriteConfig(std::regex_replace(slow, std::regex("cpu_target: 0.46"), "cpu_target: 0.44"));
  ASSERT_TRUE(server.server().Reload());
  after = GetState(*stub).modules(2);
  EXPECT_DOUBLE_EQ(after.cpu_target(), 0.44);
  EXPECT_DOUBLE_EQ(after.predicted_cpu(), before.predicted_cpu());
}

grpc::Status SendLoad(v1::Allocator::Stub& stub, const std::string& reporter, double cpu,
                      int64_t timestamp_ms = 0) {
  v1::LoadReport report;
  report.set_module("recall");
  report.set_reporter(reporter);
  report.set_cpu_utilization(cpu);
  report.set_qps(1000);
  report.set_timestamp_ms(timestamp_ms);
  grpc::ClientContext context;
  v1::ReportLoadResponse ignored;
  return stub.ReportLoad(&context, report, &ignored);
}

// Recall's lambda after 30 one-second control periods (on a manual clock) with three honest
// replicas at the target (0.46) and, optionally, one more caller reporting `hostile_cpu` every
// period. The reports do not answer lambda, so the MPC (which aims below the target until it has
// seen its own errors) keeps raising it: a baseline that any shift in the load would move.
double RecallLambdaUnderReports(std::optional<double> hostile_cpu, std::string* metrics = nullptr) {
  ManualClock clock(SystemClock::Instance().NowMs());
  TestServer server(DefaultConfigWith("period_s: 1.0", "period_s: 600"), &clock);
  auto stub = server.stub();
  EXPECT_EQ(AllocateMany(*stub, "recall", 200), 200);
  for (int period = 0; period < 30; ++period) {
    for (const char* pod : {"pod-a", "pod-b", "pod-c"}) {
      EXPECT_TRUE(SendLoad(*stub, pod, 0.46).ok());
    }
    if (hostile_cpu) {
      EXPECT_TRUE(SendLoad(*stub, "", *hostile_cpu).ok());
    }
    server.server().control().StepOnce();
    clock.AdvanceMs(1000);
  }
  if (metrics) *metrics = server.ScrapeMetrics();
  return GetState(*stub).modules(0).compute_price();
}

// Found by a probe: one caller reporting recall at full load every 0.2 s moved its lambda from 0.1
// to 20, and one reporting 0 pulled it to 0.06. Against three honest replicas it now moves
// lambda by at most 1.5x either way, and is counted as an outlier.
TEST(ControlInServerTest, OneHostileReporterCannotSetThePriceOfCompute) {
  const double honest = RecallLambdaUnderReports(std::nullopt);
  for (const double hostile_cpu : {1.0, 0.0}) {
    std::string metrics;
    const double steered = RecallLambdaUnderReports(hostile_cpu, &metrics);
    EXPECT_LE(steered, 1.5 * honest) << hostile_cpu;
    EXPECT_GE(steered, honest / 1.5) << hostile_cpu;
    EXPECT_TRUE(std::regex_search(
        metrics, std::regex(R"re(allot_load_reports_total\{outcome="outlier"\} (2[89]|30))re")))
        << metrics;
  }
}

TEST(ControlInServerTest, ReportsFromTheFutureOrFromUnlistedReportersAreRefused) {
  TestServer server(DefaultConfigWith(
      "controller:\n",
      "telemetry: {report_load: {reporters: [pod-a], max_future_skew_s: 2}}\ncontroller:\n"));
  auto stub = server.stub();
  const int64_t now = SystemClock::Instance().NowMs();
  grpc::Status status = SendLoad(*stub, "pod-a", 1.0, now + 59'000);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message().rfind("timestamp_ms: ", 0), 0u) << status.error_message();
  status = SendLoad(*stub, "pod-b", 0.5);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(status.error_message().rfind("reporter: ", 0), 0u) << status.error_message();
  EXPECT_TRUE(SendLoad(*stub, "pod-a", 0.5).ok());
  EXPECT_NE(server.ScrapeMetrics().find(R"(allot_load_reports_total{outcome="not_allowed"} 1)"),
            std::string::npos);
}

TEST(PrometheusParseTest, AcceptsOneSampleAndNamesWhatIsWrong) {
  const PromSample s = ParsePrometheusInstant(
      R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.5,"0.42"]}]}})");
  EXPECT_DOUBLE_EQ(s.value, 0.42);
  EXPECT_EQ(s.timestamp_ms, 1700000000500);
  EXPECT_DOUBLE_EQ(ParsePrometheusInstant(
                       R"({"status":"success","data":{"resultType":"scalar","result":[1,"3"]}})")
                       .value,
                   3);
  auto error_of = [](const std::string& body) {
    try {
      ParsePrometheusInstant(body);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of("not json").rfind("answer is not JSON", 0), 0u);
  EXPECT_EQ(error_of(R"({"status":"error","error":"parse error at char 3"})"),
            "query failed: parse error at char 3");
  EXPECT_EQ(error_of(R"({"status":"success","data":{"resultType":"vector","result":[]}})"),
            "expected exactly one series, got 0");
  EXPECT_EQ(
      error_of(
          R"({"status":"success","data":{"resultType":"vector","result":[{"value":[1,"NaN"]}]}})"),
      "sample value is NaN");
  EXPECT_EQ(error_of(R"({"status":"success","data":{"resultType":"matrix","result":[]}})"),
            "unsupported result type 'matrix'");
}

// A real Prometheus scraping a real exporter, both on loopback.
class PrometheusSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (system("command -v prometheus >/dev/null") != 0)
      GTEST_FAIL() << "prometheus is not installed";
    registry_ = std::make_shared<prometheus::Registry>();
    auto& cpu = prometheus::BuildGauge().Name("test_module_cpu").Help("cpu").Register(*registry_);
    cpu.Add({{"module", "rank"}}).Set(0.42);
    cpu.Add({{"module", "recall"}}).Set(1.7);  // out of range: must be refused
    cpu.Add({{"module", "prerank"}, {"pod", "a"}}).Set(0.3);
    cpu.Add({{"module", "prerank"}, {"pod", "b"}}).Set(0.5);
    auto& price =
        prometheus::BuildGauge().Name("test_cluster_price").Help("price").Register(*registry_);
    price.Add({{"module", "rank"}}).Set(3.5);
    price.Add({{"module", "prerank"}}).Set(-1);  // not a price: the replica keeps initial_lambda
    prometheus::BuildGauge()
        .Name("test_module_qps")
        .Help("qps")
        .Register(*registry_)
        .Add({})
        .Set(1500);
    exporter_ = std::make_unique<MetricsHttpServer>("127.0.0.1:0", registry_);
    prometheus_ = std::make_unique<PrometheusProcess>(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n  - job_name: test\n    static_configs:\n      - targets: ['127.0.0.1:" +
        std::to_string(exporter_->port()) + "']\n");
  }

  AllotConfig Config() const {
    AllotConfig c = LoadEmbeddedDefaultConfig();
    c.telemetry.source = TelemetrySourceKind::kPrometheus;
    c.telemetry.prometheus.url = prometheus_->url();
    c.telemetry.prometheus.query_timeout_s = 2;
    for (auto& m : c.modules) {
      m.cpu_query = "test_module_cpu{module=\"" + m.name + "\"}";
      m.qps_query = "test_module_qps";
      m.price_query = "test_cluster_price{module=\"" + m.name + "\"}";
    }
    return c;
  }

  // Waits (bounded) for Prometheus to start and scrape the exporter once.
  void WaitForFirstScrape() const {
    PrometheusSource source(Config());
    std::string error;
    bool scraped = false;
    for (int i = 0; i < 300 && !scraped; ++i) {
      scraped = source.Latest("rank", &error).has_value();
      if (!scraped) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(scraped) << error;
  }

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<MetricsHttpServer> exporter_;
  std::unique_ptr<PrometheusProcess> prometheus_;
};

TEST_F(PrometheusSourceTest, ReadsModuleLoadAndRefusesBadAnswers) {
  const AllotConfig config = Config();
  PrometheusSource source(config);
  std::optional<LoadSample> rank;
  std::string error;
  // Waits (bounded) for Prometheus to start and scrape once; not a timing assertion.
  for (int i = 0; i < 300 && !rank; ++i) {
    error.clear();
    rank = source.Latest("rank", &error);
    if (!rank) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(rank) << error;
  EXPECT_DOUBLE_EQ(rank->cpu_utilization, 0.42);
  EXPECT_DOUBLE_EQ(rank->qps, 1500);
  EXPECT_GT(rank->timestamp_ms, 0);

  error.clear();
  EXPECT_FALSE(source.Latest("recall", &error));
  EXPECT_NE(error.find("modules[0].cpu_query (recall): CPU utilisation 1.700000 is outside [0, 1]"),
            std::string::npos)
      << error;
  error.clear();
  EXPECT_FALSE(source.Latest("prerank", &error));
  EXPECT_NE(error.find("expected exactly one series, got 2"), std::string::npos) << error;

  AllotConfig broken = config;
  broken.modules[2].cpu_query = "test_module_cpu{";
  PrometheusSource bad(broken);
  error.clear();
  EXPECT_FALSE(bad.Latest("rank", &error));
  EXPECT_NE(error.find("HTTP status 400"), std::string::npos) << error;

  // The price the module's replicas use: a number >= 0, once per series.
  error.clear();
  EXPECT_EQ(source.ClusterPrice("rank", &error), 3.5) << error;
  EXPECT_FALSE(source.ClusterPrice("prerank", &error));
  EXPECT_NE(error.find("modules[1].price_query (prerank): price -1"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(source.ClusterPrice("recall", &error));  // no such series
  EXPECT_NE(error.find("modules[0].price_query"), std::string::npos) << error;

  AllotConfig unreachable = config;
  unreachable.telemetry.prometheus.url = "http://127.0.0.1:" + std::to_string(FreePort());
  PrometheusSource down(unreachable);
  error.clear();
  EXPECT_FALSE(down.Latest("rank", &error));
  EXPECT_NE(error.find("HTTP request failed"), std::string::npos) << error;
}

// A replica that starts (or restarts) joins at the price its module's replicas use, read
// with modules[].price_query, instead of initial_lambda; a module whose query fails starts at
// initial_lambda.
TEST_F(PrometheusSourceTest, AStartingReplicaJoinsAtTheClustersPrice) {
  WaitForFirstScrape();
  // The queries as templates: every module's own follows from its name.
  const std::string yaml = DefaultConfigWith(
      "modules:\n", "telemetry:\n  source: prometheus\n  prometheus:\n    url: '" +
                        prometheus_->url() +
                        "'\n    query_timeout_s: 2\n"
                        "    cpu_query: 'test_module_cpu{module=\"{module}\"}'\n"
                        "    price_query: 'test_cluster_price{module=\"{module}\"}'\nmodules:\n");
  TestServer server(yaml);
  auto stub = server.stub();
  const AllotConfig& config = *server.server().config();
  std::map<std::string, double> price;
  const v1::ControlState state = GetState(*stub);
  for (const auto& m : state.modules()) price[m.name()] = m.compute_price();
  // One control period may have run since: within one rate-limited step of 3.5.
  EXPECT_NEAR(price["rank"], 3.5, MaxLambdaStep(config.lambda, 3.5));
  EXPECT_GT(price["rank"], 10 * config.modules[2].initial_lambda);
  // prerank's query answered -1 and recall's nothing: both start near their initial_lambda.
  EXPECT_NEAR(price["prerank"], config.modules[1].initial_lambda,
              MaxLambdaStep(config.lambda, config.modules[1].initial_lambda));
}

}  // namespace
}  // namespace allot::testing
