// The server's concurrent parts without gRPC, for ThreadSanitizer (scripts/test.sh builds them
// with -fsanitize=thread): the control runner's thread re-pricing while requests are decided,
// load is reported and configs are swapped; the bundle watcher's thread hot-swapping bundles
// while requests are decided and the bundle in force is reset. gRPC itself is not instrumented
// here (Debian's build), which is why these run without a live server.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "models/bundle.h"
#include "policy/allocation_engine.h"
#include "policy/analytic_scorer.h"
#include "policy/telemetry_store.h"
#include "server/bundle_watcher.h"
#include "server/control_runner.h"
#include "server/metrics.h"

namespace allot {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<const AllotConfig> FastConfig(double cpu_target, const std::string& models_dir) {
  AllotConfig c = LoadEmbeddedDefaultConfig();
  c.controller.period_s = 0.005;  // many periods in a short test
  c.models.dir = models_dir;
  c.models.poll_s = 0.005;
  for (ModuleConfig& m : c.modules) m.cpu_target = cpu_target;
  c.version = "target-" + std::to_string(cpu_target);
  return std::make_shared<const AllotConfig>(std::move(c));
}

std::shared_ptr<const PolicySnapshot> Analytic(std::shared_ptr<const AllotConfig> config) {
  auto scorer = std::make_shared<const AnalyticScorer>(*config);
  return MakePolicySnapshot(std::move(config), std::move(scorer));
}

// Decides requests for every agent until `stop`, checking each answer.
void DecideUntil(const AllocationEngine& engine, const std::atomic<bool>& stop,
                 std::atomic<int>& decided) {
  std::vector<float> features(64, 0.3f);
  while (!stop.load()) {
    const std::shared_ptr<const PolicySnapshot> policy = engine.policy();
    for (size_t a = 0; a < policy->spaces.size(); ++a) {
      const size_t width = policy->config->agents[a].features.size();
      const Allocation d = engine.Decide(policy, a, {features.data(), width}, {});
      ASSERT_LT(d.joint, policy->spaces[a].size());
      ASSERT_TRUE(std::isfinite(d.lambda) && std::isfinite(d.cost));
      decided.fetch_add(1);
    }
  }
}

TEST(ServerConcurrencyTest, ControlRunnerRepricesWhileRequestsLoadAndConfigsArrive) {
  const auto config = FastConfig(0.46, "/nonexistent");
  AllocationEngine engine(Analytic(config), 256, 1);
  const Clock& clock = SystemClock::Instance();
  TelemetryStore reports(clock, config->telemetry.report_load);
  ServerMetrics metrics("127.0.0.1:0");
  ControlRunner runner(engine, reports, metrics, clock);
  runner.Configure(config);
  runner.Start();

  std::atomic<bool> stop{false};
  std::atomic<int> decided{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([&] { DecideUntil(engine, stop, decided); });
  threads.emplace_back([&] {  // three reporters per module
    for (int n = 0; !stop.load(); ++n) {
      for (const ModuleConfig& m : config->modules) {
        const LoadSample sample{0.3 + 0.01 * (n % 20), 1000.0, 0, clock.NowMs()};
        reports.Report(m.name, "pod-" + std::to_string(n % 3), sample);
      }
      std::this_thread::sleep_for(1ms);
    }
  });
  threads.emplace_back([&] {  // reloads: a new target, and a new policy for the engine
    for (int n = 0; !stop.load(); ++n) {
      const auto next = FastConfig(n % 2 ? 0.5 : 0.46, "/nonexistent");
      engine.SetPolicy(Analytic(next));
      runner.Configure(next);
      std::this_thread::sleep_for(3ms);
    }
  });
  for (int i = 0; i < 40; ++i) {
    runner.StepOnce();  // as a test or a reload would, beside the runner's own thread
    EXPECT_EQ(runner.last().size(), config->modules.size());
    std::this_thread::sleep_for(10ms);
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  runner.Stop();
  EXPECT_GT(decided.load(), 0);
  for (const ModuleDecision& d : runner.last()) EXPECT_TRUE(std::isfinite(d.lambda));
}

TEST(ServerConcurrencyTest, BundleWatcherSwapsBundlesWhileRequestsAreDecided) {
  char tmpl[] = "/tmp/allot-tsan-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const auto config = FastConfig(0.46, dir + "/models");
  std::filesystem::create_directories(config->models.dir);
  AllocationEngine engine(Analytic(config), 256, 1);
  std::atomic<int> installed{0}, refused{0};
  // The loader stands in for LibTorch's: a bundle is its directory, scored by the analytic model.
  BundleWatcher watcher(
      [](const std::string& bundle, const AllotConfig& c) -> std::shared_ptr<const ActionScorer> {
        if (bundle.find("bad") != std::string::npos) throw std::runtime_error("refused");
        return std::make_shared<const AnalyticScorer>(c);
      },
      [&](std::shared_ptr<const ActionScorer> scorer, const std::string&) {
        engine.SetPolicy(MakePolicySnapshot(config, std::move(scorer)));
        installed.fetch_add(1);
      },
      [&](bool ok, const std::string&, const std::string&) {
        if (!ok) refused.fetch_add(1);
      });
  watcher.Start([config] { return config; });

  std::atomic<bool> stop{false};
  std::atomic<int> decided{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([&] { DecideUntil(engine, stop, decided); });
  for (int v = 10; v < 40; ++v) {  // a new bundle every few periods, some of them refused
    const std::string bundle =
        config->models.dir + "/2099010" + std::to_string(v) + (v % 7 == 0 ? "-bad" : "-ok");
    std::filesystem::create_directories(bundle);
    std::ofstream(bundle + "/" + models::kManifestFile) << "version: " << v << "\n";
    if (v % 5 == 0) watcher.Reset();
    (void)watcher.current_dir();  // read beside the polling thread
    std::this_thread::sleep_for(15ms);
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  watcher.Stop();
  EXPECT_GT(installed.load(), 1);
  EXPECT_GT(refused.load(), 0);
  EXPECT_GT(decided.load(), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace allot
