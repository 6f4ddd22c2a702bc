// libFuzzer target over what a caller controls: the bytes of an Allocate request or a load
// report, through decoding, validation, the decision and the response, and the control loop the
// reports and decisions feed. It aborts when any number a caller or the controller would see is
// not finite. Input: one byte choosing the message (even: AllocateRequest, odd: LoadReport), then
// the message's wire bytes.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "allot/v1/allocator.pb.h"
#include "policy/analytic_scorer.h"
#include "policy/control_loop.h"
#include "policy/explanation.h"
#include "policy/telemetry_source.h"
#include "server/proto_convert.h"
#include "server/request_validation.h"

namespace allot {
namespace {

void Require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz: %s\n", what);
    std::abort();
  }
}

// The default config with a clip bound and a reject bound, so both paths are reached.
std::shared_ptr<const AllotConfig> FuzzConfig() {
  AllotConfig config = LoadEmbeddedDefaultConfig();
  for (AgentConfig& agent : config.agents) {
    FeatureBoundConfig clip;
    clip.feature = agent.features[0];
    clip.min = -10;
    clip.max = 10;
    FeatureBoundConfig reject;
    reject.feature = agent.features[1];
    reject.min = -1e3;
    reject.max = 1e3;
    reject.action = FeatureBoundConfig::Action::kReject;
    agent.feature_bounds = {clip, reject};
  }
  return std::make_shared<const AllotConfig>(std::move(config));
}

// Everything that lives across inputs, as in a server process.
struct World {
  std::shared_ptr<const AllotConfig> config = FuzzConfig();
  ServerConfig limits = LoadEmbeddedServerConfig().server;
  std::shared_ptr<const PolicySnapshot> policy =
      MakePolicySnapshot(config, std::make_shared<const AnalyticScorer>(*config));
  AllocationEngine engine{policy, 256, 1};
  ManualClock clock;
  TelemetryStore store{clock, config->telemetry.report_load};
  ReportLoadSource source{store};
  EnginePorts ports{engine};
  ControlLoop loop{config, ControlPorts{&source, &ports, &ports, &clock}};
  uint64_t inputs = 0;
};

// What the explain flag adds to a response: finite, sorted, exactly one option chosen.
void Explain(World& w, const v1::AllocateRequest& request, size_t agent, const Allocation& a,
             v1::AllocateResponse* response) {
  const auto explanation =
      ExplainDecision(*w.policy, *w.engine.lambdas(), agent,
                      {request.features().data(), static_cast<size_t>(request.features_size())},
                      a.joint, a.proposed);
  Require(explanation.has_value(), "a decided request could not be explained");
  FillExplanation(*explanation, *w.config, response->mutable_explanation());
  int chosen = 0;
  double previous = INFINITY;
  for (const v1::OptionScore& o : response->explanation().options()) {
    Require(std::isfinite(o.value()) && std::isfinite(o.priced_score()), "non-finite option");
    Require(o.priced_score() <= previous, "options not sorted by priced score");
    previous = o.priced_score();
    chosen += o.chosen();
  }
  Require(chosen == 1, "not exactly one option chosen");
}

void Allocate(World& w, const uint8_t* data, size_t size) {
  v1::AllocateRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return;
  size_t agent = 0;
  std::vector<CachedStage> caches;
  if (!ValidateAllocateRequest(request, *w.policy, w.limits, &agent, &caches).ok()) return;
  const Allocation a = w.engine.Decide(
      w.policy, agent, {request.features().data(), static_cast<size_t>(request.features_size())},
      caches);
  v1::AllocateResponse response;
  FillAllocateResponse(a, &response);
  Require(std::isfinite(response.compute_price()) && std::isfinite(response.predicted_value()) &&
              std::isfinite(response.predicted_cost()) && std::isfinite(response.user_value()),
          "non-finite number in an AllocateResponse");
  Require(a.joint < w.policy->spaces[agent].size(), "joint action out of the action space");
  if (request.explain() && !a.fallback) Explain(w, request, agent, a, &response);
}

void Report(World& w, const uint8_t* data, size_t size) {
  v1::LoadReport report;
  if (!report.ParseFromArray(data, static_cast<int>(size))) return;
  if (!ValidateLoadReport(report, *w.config, w.limits, w.clock.NowMs()).ok()) return;
  LoadSample sample{report.cpu_utilization(), report.qps(), report.degradation_level(),
                    report.timestamp_ms()};
  w.store.Report(report.module(), report.reporter(), sample);
  if (const auto load = w.store.Latest(report.module())) {
    Require(std::isfinite(load->cpu_utilization) && std::isfinite(load->qps),
            "non-finite aggregated load");
  }
}

// A control period every 256 inputs: the reservoir and the reports above feed it.
void MaybeStep(World& w) {
  if (++w.inputs % 256 != 0) return;
  w.clock.AdvanceMs(1000);
  for (const ModuleDecision& d : w.loop.Step()) {
    Require(std::isfinite(d.lambda) && std::isfinite(d.predicted_cpu) &&
                std::isfinite(d.forecast_qps) && std::isfinite(d.max_cost_ms),
            "non-finite control decision");
  }
}

}  // namespace
}  // namespace allot

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static allot::World* world = new allot::World();  // lives for the process, as a server's state
  if (size == 0) return 0;
  if (data[0] % 2 == 0) {
    allot::Allocate(*world, data + 1, size - 1);
  } else {
    allot::Report(*world, data + 1, size - 1);
  }
  allot::MaybeStep(*world);
  return 0;
}
