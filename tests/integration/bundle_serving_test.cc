// Model bundles inside the real server: served once warm, readiness, refusal of a corrupt bundle
// while the old one keeps serving, and a hot swap under concurrent load that fails no request.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "models/trainer.h"
#include "models/training_log.h"
#include "server/allocator_service.h"
#include "tests/integration/test_server.h"
#include "tests/models/synthetic.h"

namespace allot::testing {
namespace {

// One small bundle for the default config, trained once for the whole test binary.
class BundleServingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/allot-bundles-XXXXXX";
    source_ = mkdtemp(tmpl);
    const AllotConfig config = LoadEmbeddedDefaultConfig();
    WriteRandomLog(config, source_ + "/log.binpb", 1500, 4);
    const models::TrainOptions o = SmallBundleOptions(2, 8);
    std::ostringstream progress;
    bundle_ = models::TrainBundle(models::ReadTrainingLog({source_ + "/log.binpb"}, config, false),
                                  config, o, source_ + "/trained", progress)
                  .bundle_dir;
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(source_); }

  void SetUp() override {
    char tmpl[] = "/tmp/allot-models-XXXXXX";
    models_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(models_); }

  // Copies the trained bundle in under a new version name. It is staged beside the model
  // directory and renamed in, as operators are told to do: the server's own first poll runs
  // concurrently with the test, and must never see a half-written bundle.
  // manifest_extra: lines appended to the manifest, in place of the trained manifest's key of the
  // same name.
  std::string Install(const std::string& version, bool corrupt = false,
                      const std::string& manifest_extra = "") const {
    const std::string dir = models_ + "/" + version;
    const std::string staging = models_ + ".staging-" + version;
    std::filesystem::copy(bundle_, staging);
    std::ifstream in(staging + "/manifest.yaml");
    std::string manifest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    manifest =
        std::regex_replace(manifest, std::regex("(^|\n)version: [^\n]*"), "$1version: " + version);
    std::smatch key;
    if (std::regex_search(manifest_extra, key, std::regex("^([a-z_]+):"))) {
      manifest = std::regex_replace(
          manifest, std::regex("(^|\n)" + key[1].str() + ":[^\n]*(\n[ -][^\n]*)*"), "$1");
    }
    std::ofstream(staging + "/manifest.yaml") << manifest << "\n" << manifest_extra;
    if (corrupt) std::filesystem::resize_file(staging + "/model.pt", 64);
    std::filesystem::rename(staging, dir);
    return dir;
  }

  std::string Config(bool serve_analytic) const {
    std::string yaml = DefaultConfigWith("  dir: var/models", "  dir: " + models_);
    yaml = std::regex_replace(yaml, std::regex("poll_s: 10.0"), "poll_s: 0");
    if (!serve_analytic)
      yaml = std::regex_replace(yaml, std::regex("serve_analytic: true"), "serve_analytic: false");
    return yaml;
  }

  static std::string Version(v1::Allocator::Stub& stub) {
    grpc::ClientContext context;
    v1::AllocateResponse response;
    EXPECT_TRUE(stub.Allocate(&context, MakeRequest("recall", 8), &response).ok());
    return response.bundle_version();
  }

  static bool Ready(const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service("readiness");
    grpc::health::v1::HealthCheckResponse response;
    return stub->Check(&context, request, &response).ok() &&
           response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  }

  static std::string source_, bundle_;
  std::string models_;
};

std::string BundleServingTest::source_;
std::string BundleServingTest::bundle_;

TEST_F(BundleServingTest, ReadyOnlyOnceABundleIsWarmWhenAnalyticServingIsOff) {
  TestServer server(Config(/*serve_analytic=*/false));
  EXPECT_FALSE(Ready(server.channel()));
  Install("20990101-000000-awrq");
  ASSERT_TRUE(server.server().bundles().PollOnce(*server.server().config()));
  EXPECT_TRUE(Ready(server.channel()));
  auto stub = server.stub();
  EXPECT_EQ(Version(*stub), "20990101-000000-awrq");
  grpc::ClientContext context;
  v1::ControlState state;
  ASSERT_TRUE(stub->GetControlState(&context, v1::GetControlStateRequest(), &state).ok());
  EXPECT_EQ(state.bundle_version(), "20990101-000000-awrq");
}

// A bundle whose logs hardly held some joint actions (the manifest's unlogged_actions) never
// chooses them on the live server, and explain marks them. A manifest naming a joint action that
// does not exist, or excluding every one, or whose logged counts do not fit the agent's joint
// actions, is refused, and the server keeps the bundle it has.
TEST_F(BundleServingTest, UnloggedActionsAreNeverChosenAndExplainedAsSuch) {
  // Recall's joint actions 60 and 61 select all five channels (elastic recall off and on).
  std::string all_but_two = "unlogged_actions:\n  recall: [0";
  for (int j = 1; j < 60; ++j) all_but_two += ", " + std::to_string(j);
  Install("20990101-000000-awrq", false, all_but_two + "]\n");
  TestServer server(Config(true));
  auto stub = server.stub();
  for (const float level : {-2.0f, 0.0f, 0.5f, 3.0f}) {
    grpc::ClientContext context;
    v1::AllocateResponse response;
    ASSERT_TRUE(stub->Allocate(&context, MakeRequest("recall", 8, level), &response).ok());
    ASSERT_EQ(response.bundle_version(), "20990101-000000-awrq");
    ASSERT_FALSE(response.fallback());
    EXPECT_EQ(response.decisions(0).selected_size(), 5) << "level " << level;
  }
  grpc::ClientContext context;
  v1::AllocateRequest request = MakeRequest("recall", 8, 1.0f);
  request.set_explain(true);
  v1::AllocateResponse explained;
  ASSERT_TRUE(stub->Allocate(&context, request, &explained).ok());
  ASSERT_EQ(explained.explanation().options_size(), 62);
  for (const v1::OptionScore& o : explained.explanation().options()) {
    EXPECT_EQ(o.unlogged(), o.joint_action() < 60) << o.joint_action();
    if (o.chosen()) {
      EXPECT_GE(o.joint_action(), 60u);
    }
  }

  Install("20990202-000000-awrq", false, "unlogged_actions:\n  recall: [62]\n");
  EXPECT_FALSE(server.server().bundles().PollOnce(*server.server().config()));
  Install("20990303-000000-awrq", false, all_but_two + ", 60, 61]\n");
  EXPECT_FALSE(server.server().bundles().PollOnce(*server.server().config()));
  Install("20990404-000000-awrq", false, "unlogged_actions:\n  recall: 5\n");
  EXPECT_FALSE(server.server().bundles().PollOnce(*server.server().config()));
  // Logged counts: one per joint action, or the bundle is refused too.
  Install("20990505-000000-awrq", false, "logged_counts:\n  recall: [10, 20]\n");
  EXPECT_FALSE(server.server().bundles().PollOnce(*server.server().config()));
  EXPECT_EQ(Version(*stub), "20990101-000000-awrq");
  const std::string metrics = server.ScrapeMetrics();
  EXPECT_NE(metrics.find(R"(allot_bundle_reloads_total{result="error"} 4)"), std::string::npos);
}

TEST_F(BundleServingTest, StartsWithTheNewestBundleAndRefusesACorruptNewerOne) {
  Install("20990101-000000-awrq");
  TestServer server(Config(true));
  auto stub = server.stub();
  EXPECT_EQ(Version(*stub), "20990101-000000-awrq");
  Install("20990202-000000-awrq", /*corrupt=*/true);
  EXPECT_FALSE(server.server().bundles().PollOnce(*server.server().config()));
  EXPECT_EQ(Version(*stub), "20990101-000000-awrq");
  EXPECT_TRUE(Ready(server.channel()));
  const std::string metrics = server.ScrapeMetrics();
  EXPECT_NE(metrics.find(R"(allot_bundle_reloads_total{result="error"} 1)"), std::string::npos);
  EXPECT_NE(metrics.find(R"(allot_bundle_info{inference="fast",version="20990101-000000-awrq"} 1)"),
            std::string::npos);
}

// Q-heads with hidden layers have no fast path: the bundle serves through LibTorch, about ten
// times slower per decision, and operators see it in allot_bundle_info.
TEST_F(BundleServingTest, ABundleOffTheFastPathIsShownInTheBundleInfo) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  models::TrainOptions o = SmallBundleOptions(2, 8);
  o.head_hidden = {4};
  o.network = "algorithm";  // a distilled bundle serves two-tower networks: always fast
  std::ostringstream progress;
  const models::TrainSummary slow =
      models::TrainBundle(models::ReadTrainingLog({source_ + "/log.binpb"}, config, false), config,
                          o, models_, progress);
  TestServer server(Config(true));
  auto stub = server.stub();
  EXPECT_EQ(Version(*stub), slow.version);
  EXPECT_NE(server.ScrapeMetrics().find(R"(allot_bundle_info{inference="libtorch",version=")" +
                                        slow.version + R"("} 1)"),
            std::string::npos);
}

// A maddpg bundle on the continuous config: its actors answer on the fast path, and every rank
// length is on the range's grid and moves with the request.
TEST_F(BundleServingTest, AMaddpgBundleServesItsActorsLengthsOnTheRangesGrid) {
  const std::string yaml = ContinuousConfigYaml();
  ASSERT_FALSE(yaml.empty());
  const AllotConfig config = LoadConfigFromString(yaml, "continuous");
  WriteRandomLog(config, models_ + "-continuous.binpb", 1500, 5);
  models::TrainOptions o = SmallBundleOptions(2, 8);
  o.algorithm = "maddpg";
  std::ostringstream progress;
  const models::TrainSummary maddpg =
      models::TrainBundle(models::ReadTrainingLog({models_ + "-continuous.binpb"}, config, false),
                          config, o, models_, progress);
  std::filesystem::remove(models_ + "-continuous.binpb");
  std::string served = yaml;
  ReplaceOnce(served, "  dir: var/models", "  dir: " + models_);
  ReplaceOnce(served, "poll_s: 10.0", "poll_s: 0");
  TestServer server(served);
  auto stub = server.stub();
  EXPECT_NE(server.ScrapeMetrics().find(R"(allot_bundle_info{inference="fast",version=")" +
                                        maddpg.version + R"("} 1)"),
            std::string::npos);
  std::set<uint32_t> lengths;
  for (int trial = 0; trial < 60; ++trial) {
    v1::AllocateRequest request = MakeRequest("rank", config.agents[2].features.size());
    for (int f = 0; f < request.features_size(); ++f)
      request.set_features(f, -2.0f + 0.07f * static_cast<float>(trial * (f + 1) % 60));
    grpc::ClientContext context;
    v1::AllocateResponse response;
    ASSERT_TRUE(stub->Allocate(&context, request, &response).ok());
    EXPECT_EQ(response.bundle_version(), maddpg.version);
    const uint32_t length = response.decisions(0).queue_length();
    ExpectOnContinuousRankGrid(length);
    lengths.insert(length);
  }
  EXPECT_GE(lengths.size(), 2u) << "the request should move the actor's length";

  // The explanation says the actor chose, so that its option's rank among the priced scores does
  // not read as a broken rule.
  v1::AllocateRequest request = MakeRequest("rank", config.agents[2].features.size());
  request.set_explain(true);
  grpc::ClientContext context;
  v1::AllocateResponse response;
  ASSERT_TRUE(stub->Allocate(&context, request, &response).ok());
  EXPECT_EQ(response.explanation().chosen_by(), "actor");
  int chosen = 0;
  for (const v1::OptionScore& option : response.explanation().options()) {
    if (!option.chosen()) continue;
    ++chosen;
    EXPECT_NE(option.label().find(std::to_string(response.decisions(0).queue_length())),
              std::string::npos)
        << option.label();
  }
  EXPECT_EQ(chosen, 1);
}

// Found by a probe: a bundle copied non-atomically (manifest first, weights later) was refused
// once and never tried again.
TEST_F(BundleServingTest, ARefusedBundleIsTriedAgainWhenItsFilesChange) {
  TestServer server(Config(true));
  auto stub = server.stub();
  const std::string dir = Install("20990101-000000-awrq", /*corrupt=*/true);
  BundleWatcher& bundles = server.server().bundles();
  EXPECT_FALSE(bundles.PollOnce(*server.server().config()));
  EXPECT_FALSE(bundles.PollOnce(*server.server().config()));  // unchanged: refused once only
  EXPECT_NE(server.ScrapeMetrics().find(R"(allot_bundle_reloads_total{result="error"} 1)"),
            std::string::npos);
  std::filesystem::copy_file(bundle_ + "/model.pt", dir + "/model.pt",
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_TRUE(bundles.PollOnce(*server.server().config()));
  EXPECT_EQ(Version(*stub), "20990101-000000-awrq");
}

// Found by a probe: a config the bundle did not match refused it, and rolling the config back
// never brought the bundle back (the refusal was remembered forever).
TEST_F(BundleServingTest, AConfigRollbackBringsTheBundleBackWithinOnePoll) {
  Install("20990101-000000-awrq");
  const std::string good = Config(true);
  TestServer server(good);
  auto stub = server.stub();
  ASSERT_EQ(Version(*stub), "20990101-000000-awrq");
  server.WriteConfig(std::regex_replace(good, std::regex("page_index"), "page_number"));
  ASSERT_TRUE(server.server().Reload());
  EXPECT_NE(Version(*stub), "20990101-000000-awrq");  // another schema: the analytic model
  EXPECT_FALSE(server.server().bundles().PollOnce(*server.server().config()));
  server.WriteConfig(good);
  ASSERT_TRUE(server.server().Reload());
  EXPECT_TRUE(server.server().bundles().PollOnce(*server.server().config()));
  EXPECT_EQ(Version(*stub), "20990101-000000-awrq");
}

// Found by a probe: a missing or misspelt model directory was silent. It is logged and shown by
// allot_model_dir_exists; readiness follows the documented rule (SERVING on the analytic model
// when models.serve_analytic, else not until a bundle is warm).
TEST_F(BundleServingTest, AMissingModelDirectoryIsShownAndABundleThereLaterServes) {
  std::filesystem::remove_all(models_);
  TestServer server(Config(true));
  EXPECT_NE(server.ScrapeMetrics().find("allot_model_dir_exists 0"), std::string::npos);
  EXPECT_TRUE(Ready(server.channel()));
  std::filesystem::create_directories(models_);
  Install("20990101-000000-awrq");
  EXPECT_TRUE(server.server().bundles().PollOnce(*server.server().config()));
  EXPECT_NE(server.ScrapeMetrics().find("allot_model_dir_exists 1"), std::string::npos);
  auto stub = server.stub();
  EXPECT_EQ(Version(*stub), "20990101-000000-awrq");
}

TEST_F(BundleServingTest, HotSwapUnderConcurrentLoadFailsNoRequest) {
  Install("20990101-000000-awrq");
  TestServer server(Config(true));
  const auto channel = server.channel();
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0}, fallback{0}, new_version{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      auto stub = v1::Allocator::NewStub(channel);
      const char* agents[] = {"recall", "prerank", "rank"};
      while (!stop.load()) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        v1::AllocateResponse response;
        if (!stub->Allocate(&context, MakeRequest(agents[t % 3], 8, 0.2f * t), &response).ok()) {
          ++failed;
          continue;
        }
        ++ok;
        if (response.fallback()) ++fallback;
        if (response.bundle_version() == "20990303-000000-awrq") ++new_version;
      }
    });
  }
  while (ok.load() < 300) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  Install("20990303-000000-awrq");
  ASSERT_TRUE(server.server().bundles().PollOnce(*server.server().config()));
  const int at_swap = ok.load();
  while (ok.load() < at_swap + 300) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(fallback.load(), 0);
  EXPECT_GT(new_version.load(), 0);
}

// A platform that ships a bundle every hour must not run a cold controller every hour: the swap
// replaces the scorer and nothing the controller learned.
TEST_F(BundleServingTest, HotSwapKeepsTheControlStateLearnedUnderTelemetry) {
  Install("20990101-000000-awrq");
  // A long period: only the test steps the loop, so nothing moves between the two reads.
  TestServer server(std::regex_replace(Config(true), std::regex("period_s: 1.0"), "period_s: 600"));
  auto stub = server.stub();
  ASSERT_EQ(AllocateMany(*stub, "rank", 200), 200);
  const int64_t now = SystemClock::Instance().NowMs();
  for (int i = 0; i < 6; ++i) {
    v1::LoadReport report;
    report.set_module("rank");
    report.set_cpu_utilization(0.5 + 0.01 * i);
    report.set_qps(1000);
    report.set_timestamp_ms(now + i);
    grpc::ClientContext context;
    v1::ReportLoadResponse ignored;
    ASSERT_TRUE(stub->ReportLoad(&context, report, &ignored).ok());
    server.server().control().StepOnce();
  }
  auto state = [&] {
    grpc::ClientContext context;
    v1::ControlState out;
    EXPECT_TRUE(stub->GetControlState(&context, v1::GetControlStateRequest(), &out).ok());
    return out;
  };
  const v1::ControlState before = state();
  ASSERT_EQ(before.modules(2).controller(), "mpc");
  ASSERT_GT(before.modules(2).predicted_cpu(), 0.0);

  Install("20990202-000000-awrq");
  ASSERT_TRUE(server.server().bundles().PollOnce(*server.server().config()));
  const v1::ControlState after = state();
  EXPECT_EQ(after.bundle_version(), "20990202-000000-awrq");
  for (int m = 0; m < before.modules_size(); ++m) {
    SCOPED_TRACE(before.modules(m).name());
    EXPECT_EQ(after.modules(m).controller(), before.modules(m).controller());
    EXPECT_DOUBLE_EQ(after.modules(m).compute_price(), before.modules(m).compute_price());
    EXPECT_DOUBLE_EQ(after.modules(m).predicted_cpu(), before.modules(m).predicted_cpu());
    EXPECT_EQ(after.modules(m).forecast_qps_size(), before.modules(m).forecast_qps_size());
  }
}

std::string WithShadow(std::string yaml, const std::string& bundle, const std::string& rate) {
  yaml = std::regex_replace(yaml, std::regex("shadow_bundle: \"\""), "shadow_bundle: " + bundle);
  return std::regex_replace(yaml, std::regex("shadow_sample_rate: 0.01"),
                            "shadow_sample_rate: " + rate);
}

// The analytic model serves; the trained bundle (outside the model directory) decides in shadow
// on every call. Every answer is the one a server without a shadow gives, and the shadow's
// choices are counted in the control state and the metrics.
TEST_F(BundleServingTest, ShadowDecisionsAreCountedAndNeverReturned) {
  // One clock that does not move: both control loops keep the initial prices.
  ManualClock clock;
  TestServer plain(Config(true), &clock);
  TestServer shadowed(WithShadow(Config(true), bundle_, "1.0"), &clock);
  auto plain_stub = plain.stub();
  auto shadowed_stub = shadowed.stub();
  const v1::ControlState schema = GetState(*plain_stub);
  std::mt19937 rng(3);
  std::normal_distribution<float> feature(0.0f, 1.5f);
  int calls = 0;
  for (const v1::AgentSchema& agent : schema.agents()) {
    for (int i = 0; i < 60; ++i, ++calls) {
      v1::AllocateRequest request = MakeRequest(agent.name(), agent.features_size());
      request.set_request_id("shadow-" + std::to_string(calls));
      for (int f = 0; f < agent.features_size(); ++f) request.set_features(f, feature(rng));
      v1::AllocateResponse expected, got;
      grpc::ClientContext c1, c2;
      ASSERT_TRUE(plain_stub->Allocate(&c1, request, &expected).ok());
      ASSERT_TRUE(shadowed_stub->Allocate(&c2, request, &got).ok());
      EXPECT_EQ(got.SerializeAsString(), expected.SerializeAsString()) << agent.name();
      EXPECT_EQ(got.bundle_version(), "analytic");
    }
  }
  // The counts are made after each answer is sent: wait for the last one.
  v1::ControlState state;
  uint64_t counted = 0, differ = 0;
  for (int attempt = 0; attempt < 200 && counted < static_cast<uint64_t>(calls); ++attempt) {
    state = GetState(*shadowed_stub);
    counted = differ = 0;
    for (const v1::ShadowAgreement& a : state.shadow().agents()) {
      counted += a.agree() + a.differ() + a.failed();
      differ += a.differ();
    }
    if (counted < static_cast<uint64_t>(calls))
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(state.has_shadow());
  EXPECT_NE(state.shadow().bundle_version(), "analytic");
  EXPECT_DOUBLE_EQ(state.shadow().sample_rate(), 1.0);
  EXPECT_EQ(counted, static_cast<uint64_t>(calls));
  EXPECT_GT(differ, 0u) << "a randomly trained bundle agrees with the analytic model everywhere";
  EXPECT_FALSE(GetState(*plain_stub).has_shadow());
  const std::string metrics = shadowed.ScrapeMetrics();
  EXPECT_NE(metrics.find("allot_shadow_decisions_total{agent=\"rank\",outcome=\"differ\"}"),
            std::string::npos);
  EXPECT_NE(metrics.find("allot_shadow_info{bundle=\"" + state.shadow().bundle_version() + "\"} 1"),
            std::string::npos);

  // Explaining shows the candidate's view beside the serving one; its choice is never the answer.
  v1::AllocateRequest request = MakeRequest("rank", 8, 1.5f);
  request.set_explain(true);
  v1::AllocateResponse plain_answer, shadowed_answer;
  grpc::ClientContext c1, c2;
  ASSERT_TRUE(plain_stub->Allocate(&c1, request, &plain_answer).ok());
  ASSERT_TRUE(shadowed_stub->Allocate(&c2, request, &shadowed_answer).ok());
  EXPECT_FALSE(plain_answer.has_shadow_explanation());
  ASSERT_TRUE(shadowed_answer.has_shadow_explanation());
  EXPECT_EQ(shadowed_answer.explanation().SerializeAsString(),
            plain_answer.explanation().SerializeAsString());
  const v1::Explanation& candidate = shadowed_answer.shadow_explanation();
  EXPECT_EQ(candidate.model(), state.shadow().bundle_version());
  EXPECT_EQ(shadowed_answer.explanation().model(), "analytic");
  ASSERT_EQ(candidate.options_size(), 8);
  int chosen = 0;
  for (const v1::OptionScore& o : candidate.options()) chosen += o.chosen();
  EXPECT_EQ(chosen, 1);
  EXPECT_EQ(shadowed_answer.predicted_value(), plain_answer.predicted_value());
}

TEST_F(BundleServingTest, AShadowThatCannotLoadIsRefusedWithItsKeyNamed) {
  try {
    TestServer server(WithShadow(Config(true), models_ + "/nowhere", "0.5"));
    FAIL() << "started with a missing shadow bundle";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("experiments.shadow_bundle"), std::string::npos)
        << e.what();
  }
  // On reload the last good config keeps serving, its shadow too.
  TestServer server(WithShadow(Config(true), "analytic", "0.5"));
  const std::string version = server.server().config()->version;
  server.WriteConfig(WithShadow(Config(true), models_ + "/nowhere", "0.5"));
  EXPECT_FALSE(server.server().Reload());
  EXPECT_EQ(server.server().config()->version, version);
  auto stub = server.stub();
  EXPECT_EQ(GetState(*stub).shadow().bundle_version(), "analytic");
  // A relative name is a bundle under models.dir; removing the key ends the shadow.
  Install("candidate");
  std::string yaml = WithShadow(Config(true), "candidate", "0.5");
  server.WriteConfig(yaml);
  ASSERT_TRUE(server.server().Reload());
  EXPECT_EQ(GetState(*stub).shadow().bundle_version(), "candidate");
  server.WriteConfig(Config(true));
  ASSERT_TRUE(server.server().Reload());
  EXPECT_FALSE(GetState(*stub).has_shadow());
  EXPECT_EQ(server.ScrapeMetrics().find("allot_shadow_info{"), std::string::npos);
}

TEST(ShadowSampleTest, SamplesTheSameRequestsEverywhereAtTheConfiguredRate) {
  int in = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string id = "req-" + std::to_string(i);
    const bool sampled = InShadowSample(id, 0.1);
    EXPECT_EQ(InShadowSample(id, 0.1), sampled) << "stable per request id";
    if (sampled) {
      EXPECT_TRUE(InShadowSample(id, 0.2)) << "a larger sample contains a smaller one";
    }
    in += sampled;
  }
  EXPECT_NEAR(in, 2000, 150);  // ~3.5 sigma
  EXPECT_FALSE(InShadowSample("x", 0.0));
  EXPECT_TRUE(InShadowSample("x", 1.0));
  int anonymous = 0;
  for (int i = 0; i < 20000; ++i) anonymous += InShadowSample("", 0.25);
  EXPECT_NEAR(anonymous, 5000, 230);
}

}  // namespace
}  // namespace allot::testing
