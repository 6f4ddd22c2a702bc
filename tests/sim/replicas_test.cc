// Replicas that agree on the price: three in-process servers on loopback ports read module load
// from a real Prometheus, which scrapes the simulator's load exporter and the replicas' own
// /metrics (for the shipped recording rule allot:module_price:avg). One replica is stopped and
// restarted mid-run on the same ports and must come back at the cluster's price.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <vector>

#include "server/allot_server.h"
#include "sim/drive.h"
#include "sim/replica_prices.h"
#include "sim/report.h"
#include "tests/integration/prometheus_process.h"
#include "tests/integration/test_server.h"
#include "tests/sim/sim_test_util.h"

namespace allot::sim {
namespace {

using allot::testing::FreePort;
using allot::testing::PrometheusProcess;

// ---- the arithmetic on polls, without servers ----

PricePoll Poll(double sim_s, std::vector<std::vector<double>> lambda) {
  return PricePoll{sim_s, std::move(lambda)};
}

TEST(ReplicaPricesTest, SpreadIsMaxOverMinAmongThoseThatAnswered) {
  const std::vector<PricePoll> polls = {
      Poll(1, {{1.0}, {4.0}, {2.0}}),   // before from_s: ignored
      Poll(2, {{1.0}, {1.1}, {NAN}}),   // 10%
      Poll(3, {{2.0}, {NAN}, {NAN}}),   // one answer: no spread
      Poll(4, {{1.0}, {1.0}, {1.02}}),  // 2%
      Poll(5, {{1.0}, {1.3}, {1.0}}),   // 30%
  };
  const PriceSpread s = SpreadOf(polls, 0, 2.0);
  EXPECT_EQ(s.periods, 3u);
  EXPECT_NEAR(s.median, 0.10, 1e-12);
  EXPECT_NEAR(s.p90, 0.30, 1e-12);
  EXPECT_NEAR(s.max, 0.30, 1e-12);
  EXPECT_EQ(SpreadOf(polls, 0, 6.0).periods, 0u);
}

TEST(ReplicaPricesTest, ARejoinIsAnAnswerAfterASilenceNotALateStart) {
  const std::vector<PricePoll> polls = {
      Poll(1, {{1.0, 2.0}, {NAN, NAN}}),  // replica 1 is late to start
      Poll(2, {{1.0, 2.0}, {1.0, 2.0}}), Poll(3, {{1.0, 2.0}, {NAN, NAN}}),  // stopped
      Poll(4, {{1.2, 2.2}, {1.1, 0.1}}),                                     // back
  };
  const std::vector<Rejoin> rejoins = FindRejoins(polls);
  ASSERT_EQ(rejoins.size(), 2u);
  EXPECT_EQ(rejoins[0].replica, 1u);
  EXPECT_EQ(rejoins[0].module, 0u);
  EXPECT_EQ(rejoins[0].sim_s, 4.0);
  EXPECT_DOUBLE_EQ(rejoins[0].lambda, 1.1);
  EXPECT_DOUBLE_EQ(rejoins[0].others, 1.2);
  EXPECT_DOUBLE_EQ(rejoins[1].lambda, 0.1);
  EXPECT_DOUBLE_EQ(rejoins[1].others, 2.2);
  EXPECT_NE(PricesCsv(polls, {"a", "b"}).find("3,1,a,\n"), std::string::npos);
}

// ---- the closed loop ----

// N AllotServers sharing one config file, each on ports reserved up front, so that Prometheus's
// config can name them before they start and a restart comes back where the load balancer and
// Prometheus expect it.
class ReplicaSet {
 public:
  explicit ReplicaSet(size_t n) : servers_(n) {
    char tmpl[] = "/tmp/allot-replicas-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::filesystem::create_directories(dir_ + "/models");
    for (size_t i = 0; i < n; ++i) ports_.emplace_back(FreePort(), FreePort());
  }
  ~ReplicaSet() {
    for (size_t i = 0; i < servers_.size(); ++i) Stop(i);
    std::filesystem::remove_all(dir_);
  }

  void StartAll(const std::string& config_yaml) {
    std::ofstream(dir_ + "/allot.yaml") << allot::testing::WithOwnModelDir(config_yaml, dir_);
    for (size_t i = 0; i < servers_.size(); ++i) Start(i);
  }
  void Start(size_t i) {
    ServerOptions options;
    options.config_path = dir_ + "/allot.yaml";
    options.listen = Address(ports_[i].first);
    options.metrics_listen = Address(ports_[i].second);
    servers_[i] = AllotServer::Start(options);
  }
  void Stop(size_t i) {
    if (!servers_[i]) return;
    servers_[i]->Shutdown();
    servers_[i].reset();
  }

  std::string Targets() const {
    std::string out;
    for (const auto& p : ports_) out += (out.empty() ? "" : ",") + Address(p.first);
    return out;
  }
  std::string MetricsTargets() const {
    std::string out;
    for (const auto& p : ports_) out += (out.empty() ? "'" : ", '") + Address(p.second) + "'";
    return out;
  }

 private:
  static std::string Address(int port) { return "127.0.0.1:" + std::to_string(port); }

  std::string dir_;
  std::vector<std::unique_ptr<AllotServer>> servers_;
  std::vector<std::pair<int, int>> ports_;  // gRPC, metrics
};

// The embedded default config reading load from Prometheus, with the PID controller and a drain
// before each stop so the client's health checks move calls off a replica before it goes.
std::string ReplicaConfig(const std::string& prometheus_url) {
  std::string yaml = allot::testing::DefaultConfigWith(
      "modules:\n",
      "telemetry:\n  source: prometheus\n  prometheus:\n    url: '" + prometheus_url +
          "'\n    query_timeout_s: 0.5\n"
          "    cpu_query: 'allot_sim_module_cpu_utilization{module=\"{module}\"}'\n"
          "    qps_query: 'allot_sim_module_qps{module=\"{module}\"}'\n"
          "    price_query: 'allot:module_price:avg{module=\"{module}\"}'\nmodules:\n");
  // PID: its step depends only on the telemetry every replica shares, so replicas that start at
  // one price stay together. Each MPC plans from its own sample of the calls and drifts apart
  // (bench/replicas.sh measures both).
  allot::testing::ReplaceOnce(yaml, "kind: mpc", "kind: pid");
  allot::testing::ReplaceOnce(yaml, "drain_delay_s: 0.0", "drain_delay_s: 1.0");
  return yaml;
}

std::string PrometheusConfig(int exporter_port, const std::string& replica_metrics) {
  return "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
         "scrape_configs:\n"
         "  - job_name: allot-sim\n    static_configs:\n      - targets: ['127.0.0.1:" +
         std::to_string(exporter_port) +
         "']\n"
         "  - job_name: allot\n    static_configs:\n      - targets: [" +
         replica_metrics + "]\n";
}

struct LoopResult {
  DriveSummary summary;
  TableRow row;  // the live run's
};

// Drives `replicas` servers for `duration_s` through one Prometheus that also evaluates the
// shipped rules; `on_second` may stop and restart replicas.
LoopResult RunLoop(size_t replicas, double duration_s,
                   const std::function<void(ReplicaSet&, double)>& on_second = {}) {
  const auto world = testing::MakeWorld();
  const int exporter_port = FreePort();
  ReplicaSet set(replicas);
  PrometheusProcess prometheus(PrometheusConfig(exporter_port, set.MetricsTargets()),
                               {ALLOT_SOURCE_DIR "/deploy/prometheus/allot-rules.yaml"});
  set.StartAll(ReplicaConfig(prometheus.url()));

  DriveOptions options;
  options.target = set.Targets();
  options.qps = 200;
  options.duration_s = duration_s;
  options.seed = 5;
  options.allocate_timeout = std::chrono::milliseconds(2000);  // sanitizer builds are slow
  options.export_load = "127.0.0.1:" + std::to_string(exporter_port);
  options.on_second = [&](double sim_s) {
    if (on_second) on_second(set, sim_s);
  };
  LoopResult out;
  out.summary = Drive(*world, options);
  out.row = BuildTable(*world, out.summary.evaluation).rows.front();
  EXPECT_EQ(out.row.policy, "server");
  return out;
}

// Three replicas' control minus one replica's, per module (printed as it is measured).
struct ControlGap {
  std::vector<double> mu, nu;
  bool Within(double bound) const {
    for (size_t m = 0; m < mu.size(); ++m)
      if (std::abs(mu[m]) > bound || std::abs(nu[m]) > bound) return false;
    return true;
  }
  ControlGap MeanWith(const ControlGap& other) const {
    ControlGap mean = *this;
    for (size_t m = 0; m < mu.size(); ++m) {
      mean.mu[m] = (mu[m] + other.mu[m]) / 2;
      mean.nu[m] = (nu[m] + other.nu[m]) / 2;
    }
    return mean;
  }
};

ControlGap GapOf(const TableRow& three, const TableRow& one) {
  ControlGap gap;
  std::cout << "mu/nu, 3 replicas vs 1:";
  for (size_t m = 0; m < three.modules.size(); ++m) {
    gap.mu.push_back(three.modules[m].mu - one.modules[m].mu);
    gap.nu.push_back(three.modules[m].nu - one.modules[m].nu);
    std::cout << " " << three.modules[m].mu << "/" << three.modules[m].nu << " vs "
              << one.modules[m].mu << "/" << one.modules[m].nu;
  }
  std::cout << "\n";
  return gap;
}

constexpr double kControlBound = 0.05;

TEST(ReplicasTest, ThreeReplicasAgreeOnThePriceAndARestartRejoinsAtIt) {
  const double kDuration = 40;
  const double kSteady = 12;  // the controllers have settled
  const double kStop = 22;
  const double kRestart = 28;
  std::future<void> stopping;
  const auto restart_replica_2 = [&](ReplicaSet& set, double sim_s) {
    if (sim_s == kStop) stopping = std::async(std::launch::async, [&set] { set.Stop(2); });
    if (sim_s == kRestart) {
      stopping.get();
      set.Start(2);
    }
  };
  LoopResult three = RunLoop(3, kDuration, restart_replica_2);
  const DriveSummary& s = three.summary;
  // The stopped replica drained first: the round-robin client moved off it, nothing failed.
  EXPECT_EQ(s.allocate_ok, s.allocate_calls);
  EXPECT_EQ(s.report_calls, 0);  // the load went through Prometheus only

  const AllotConfig config = LoadEmbeddedDefaultConfig();
  for (size_t m = 0; m < config.modules.size(); ++m) {
    const PriceSpread spread = SpreadOf(s.prices, m, kSteady);
    EXPECT_GE(spread.periods, 20u) << config.modules[m].name;
    EXPECT_LT(spread.median, 0.05) << config.modules[m].name;
    // Together again a few periods after the restart (consensus pulls the late joiner in).
    EXPECT_LT(SpreadOf(s.prices, m, kRestart + 5).median, 0.05) << config.modules[m].name;
  }
  const std::vector<Rejoin> rejoins = FindRejoins(s.prices);
  ASSERT_EQ(rejoins.size(), config.modules.size());
  for (const Rejoin& j : rejoins) {
    const ModuleConfig& module = config.modules[j.module];
    EXPECT_EQ(j.replica, 2u);
    // At the cluster's price, which the controllers have moved well away from initial_lambda;
    // polled a period after joining, so within one rate-limited step of it.
    EXPECT_GT(std::abs(std::log(j.others / module.initial_lambda)), std::log(1.5)) << module.name;
    EXPECT_LT(std::abs(std::log(j.lambda / j.others)), std::log(1 + config.lambda.max_step_ratio))
        << module.name;
  }
  std::cout << FormatPriceReport(s.prices, {"recall", "prerank", "rank"}, kSteady);
  // Control as good as one replica's on the same stream (the aim is within 1 point; the
  // bound leaves room for this shared machine's timing). Wall-clock runs vary: on one setup, nu
  // read 0.007-0.074 from run to run, in the one-replica run as much as in the three-replica
  // one. So a first pair outside the bound is measured once more, and the mean of the two pairs
  // decides: a real regression is outside on both.
  ControlGap gap = GapOf(three.row, RunLoop(1, kDuration).row);
  if (!gap.Within(kControlBound)) {
    std::cout << "control gap outside " << kControlBound << " on the first pair; a second pair\n";
    const LoopResult three_again = RunLoop(3, kDuration, restart_replica_2);
    gap = gap.MeanWith(GapOf(three_again.row, RunLoop(1, kDuration).row));
  }
  for (size_t m = 0; m < gap.mu.size(); ++m) {
    EXPECT_NEAR(gap.mu[m], 0.0, kControlBound) << "mu of module " << m << ", 3 replicas - 1";
    EXPECT_NEAR(gap.nu[m], 0.0, kControlBound) << "nu of module " << m << ", 3 replicas - 1";
  }
}

}  // namespace
}  // namespace allot::sim
