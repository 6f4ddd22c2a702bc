// The live policy is a SimPolicy whose decisions are Allocate calls; the Runner does the rest,
// paced to the wall clock, with ReportLoad as its per-period hook.
#include "sim/drive.h"

#include <grpcpp/grpcpp.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "client/allot_client.h"
#include "server/metrics_http.h"
#include "sim/request_stream.h"
#include "sim/runner.h"

namespace allot::sim {
namespace {

using SteadyClock = std::chrono::steady_clock;

class RemotePolicy final : public SimPolicy {
 public:
  // One client per stage, as each serving stage has its own: with replicas, each stage's calls
  // go round the replicas on their own (one shared rotation would pin stages to replicas).
  RemotePolicy(const World& world, std::vector<std::unique_ptr<AllotClient>> stage_clients,
               DriveSummary& summary)
      : world_(world), stage_clients_(std::move(stage_clients)), summary_(summary) {}
  const std::string& name() const override { return name_; }

  AgentChoice Decide(const AgentView& view) override {
    const AgentConfig& agent = world_.config().agents[view.agent];
    v1::AllocateRequest request;
    request.set_request_id("sim-" + std::to_string(view.request->index) + "-" + agent.name);
    request.set_agent(agent.name);
    request.set_user_id("u" + std::to_string(view.request->user));
    for (float f : view.features) request.add_features(f);
    for (const CachedStage& c : view.caches) {
      v1::StageCache* cache = request.add_cache();
      cache->set_stage(static_cast<v1::Stage>(c.stage));
      cache->set_present(c.present);
      cache->set_age_seconds(c.age_s);
      cache->set_size(c.size);
    }
    const AllocationResult result = stage_clients_[view.position]->Allocate(request);
    ++summary_.allocate_calls;
    summary_.allocate_ok += result.status.ok();
    const v1::AllocateResponse& response = result.response;
    AgentChoice choice;
    choice.fallback = response.fallback() || !result.from_server;
    summary_.fallbacks += choice.fallback;
    choice.lambda = response.compute_price();
    choice.predicted_value = response.predicted_value();
    choice.predicted_cost = response.predicted_cost();
    choice.user_value = response.user_value();
    choice.cache_reuse = static_cast<int>(response.cache_reuse());
    const ActionSpace& space = world_.layout().chain()[view.position].space;
    const std::optional<size_t> joint = ToJoint(agent, space, response);
    if (!joint) ++summary_.unmappable;
    choice.joint = static_cast<uint32_t>(joint.value_or(space.safe_default()));
    return choice;
  }

 private:
  // The response names options; the world needs the joint index of the config's action space.
  static std::optional<size_t> ToJoint(const AgentConfig& agent, const ActionSpace& space,
                                       const v1::AllocateResponse& response) {
    std::vector<uint32_t> choices(agent.decisions.size(), 0);
    for (size_t d = 0; d < agent.decisions.size(); ++d) {
      const DecisionConfig& decision = agent.decisions[d];
      const auto it =
          std::find_if(response.decisions().begin(), response.decisions().end(),
                       [&](const v1::Decision& x) { return x.name() == decision.name; });
      if (it == response.decisions().end()) return std::nullopt;
      for (const std::string& label : it->selected()) {
        const auto o = std::find_if(decision.options.begin(), decision.options.end(),
                                    [&](const OptionConfig& opt) { return opt.label == label; });
        if (o == decision.options.end()) return std::nullopt;
        const uint32_t index = static_cast<uint32_t>(o - decision.options.begin());
        choices[d] = WithOption(decision.kind, choices[d], index);
      }
    }
    const size_t joint = space.IndexOf(choices);
    return joint < space.size() ? std::optional<size_t>(joint) : std::nullopt;
  }

  const World& world_;
  std::vector<std::unique_ptr<AllotClient>> stage_clients_;
  DriveSummary& summary_;
  std::string name_ = "server";
};

void CheckSchema(const World& world, const v1::ControlState& schema) {
  for (const AgentLayout& layout : world.layout().chain()) {
    const AgentConfig& agent = world.config().agents[layout.agent];
    const auto it = std::find_if(schema.agents().begin(), schema.agents().end(),
                                 [&](const v1::AgentSchema& a) { return a.name() == agent.name; });
    if (it == schema.agents().end())
      throw std::runtime_error("the server has no agent '" + agent.name + "'");
    const std::vector<std::string> features(it->features().begin(), it->features().end());
    if (features != agent.features) {
      throw std::runtime_error("the server's features of agent '" + agent.name +
                               "' differ from --config");
    }
    if (it->joint_actions() != layout.space.size()) {
      throw std::runtime_error("the server's action space of agent '" + agent.name +
                               "' differs from --config");
    }
  }
}

bool IsOneLoopbackTarget(const std::string& target) {
  std::string host = target;
  if (host.rfind("ipv4:", 0) == 0) host = host.substr(5);
  if (host.rfind("ipv6:", 0) == 0) host = host.substr(5);
  if (!host.empty() && host[0] == '[') return host.rfind("[::1]:", 0) == 0;
  const size_t colon = host.rfind(':');
  if (colon == std::string::npos || colon + 1 == host.size()) return false;
  host = host.substr(0, colon);
  return host == "localhost" || host.rfind("127.", 0) == 0;
}

// The modules' load as gauges on /metrics, where a Prometheus scrapes it for the replicas.
class LoadExporter {
 public:
  LoadExporter(const World& world, const std::string& address)
      : registry_(std::make_shared<prometheus::Registry>()),
        cpu_(prometheus::BuildGauge()
                 .Name("allot_sim_module_cpu_utilization")
                 .Help("Simulated module CPU utilisation over the last second (lagged, noisy)")
                 .Register(*registry_)),
        qps_(prometheus::BuildGauge()
                 .Name("allot_sim_module_qps")
                 .Help("Simulated module requests per second over the last second")
                 .Register(*registry_)),
        level_(prometheus::BuildGauge()
                   .Name("allot_sim_module_degradation_level")
                   .Help("Simulated module degradation level in force")
                   .Register(*registry_)),
        http_(address, registry_) {
    for (const ModuleConfig& m : world.config().modules) modules_.push_back(m.name);
  }

  void Publish(const World& world, const PeriodRecord& p) {
    for (size_t m = 0; m < world.num_modules(); ++m) {
      if (world.cores(m) <= 0) continue;
      const prometheus::Labels labels{{"module", modules_[m]}};
      cpu_.Add(labels).Set(std::clamp(p.cpu[m], 0.0, 1.0));
      qps_.Add(labels).Set(p.qps[m]);
      level_.Add(labels).Set(p.level[m]);
    }
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>& cpu_;
  prometheus::Family<prometheus::Gauge>& qps_;
  prometheus::Family<prometheus::Gauge>& level_;
  MetricsHttpServer http_;
  std::vector<std::string> modules_;
};

// A channel over every replica for one stage's Allocate calls. With several, round_robin over those
// whose readiness is SERVING, as a serving stage's client would: a replica that drains before it
// stops gets no new calls.
std::shared_ptr<grpc::Channel> AllocateChannel(const std::string& target, size_t replicas) {
  if (replicas == 1) return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(R"({"loadBalancingConfig": [{"round_robin": {}}],)"
                            R"( "healthCheckConfig": {"serviceName": "readiness"}})");
  return grpc::CreateCustomChannel("ipv4:" + target, grpc::InsecureChannelCredentials(), args);
}

void ReportLoadToAll(const World& world, const PeriodRecord& p,
                     const std::vector<std::unique_ptr<AllotClient>>& replicas,
                     DriveSummary& summary) {
  for (size_t m = 0; m < world.num_modules(); ++m) {
    if (world.cores(m) <= 0) continue;
    v1::LoadReport report;
    report.set_module(world.config().modules[m].name);
    report.set_cpu_utilization(std::clamp(p.cpu[m], 0.0, 1.0));
    report.set_qps(p.qps[m]);
    report.set_degradation_level(static_cast<uint32_t>(p.level[m]));
    report.set_timestamp_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
    report.set_reporter("allot-sim");
    for (const auto& replica : replicas) {
      ++summary.report_calls;
      summary.report_ok += replica->ReportLoad(report).ok();
    }
  }
}

// Each replica's compute price per module now; NaN for a replica that does not answer in time.
PricePoll PollPrices(const World& world, const std::vector<std::unique_ptr<AllotClient>>& replicas,
                     double sim_s) {
  PricePoll poll;
  poll.sim_s = sim_s;
  for (const auto& replica : replicas) {
    std::vector<double> lambda(world.num_modules(), NAN);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    v1::ControlState state;
    if (replica->stub().GetControlState(&context, v1::GetControlStateRequest(), &state).ok()) {
      for (const v1::ModuleState& m : state.modules()) {
        const int index = world.config().ModuleIndex(m.name());
        if (index >= 0) lambda[static_cast<size_t>(index)] = m.compute_price();
      }
    }
    poll.lambda.push_back(std::move(lambda));
  }
  return poll;
}

}  // namespace

std::vector<std::string> SplitTargets(const std::string& target) {
  std::vector<std::string> out;
  std::string part;
  std::istringstream in(target);
  while (std::getline(in, part, ',')) out.push_back(part);
  return out;
}

bool IsLoopbackTarget(const std::string& target) {
  const std::vector<std::string> replicas = SplitTargets(target);
  if (replicas.empty()) return false;
  if (replicas.size() == 1) return IsOneLoopbackTarget(replicas[0]);
  // Several replicas become one "ipv4:" channel target, which takes numeric addresses only.
  return std::all_of(replicas.begin(), replicas.end(), [](const std::string& r) {
    return r.rfind("127.", 0) == 0 && IsOneLoopbackTarget(r);
  });
}

DriveSummary Drive(const World& world, const DriveOptions& options) {
  if (!IsLoopbackTarget(options.target)) {
    throw std::invalid_argument(
        "--target must be a loopback HOST:PORT (127.0.0.1, localhost or [::1]), or replicas "
        "127.x.y.z:PORT separated by commas, got '" +
        options.target + "'");
  }
  if (!(options.qps > 0) || !(options.duration_s > 0))
    throw std::invalid_argument("--qps and --duration must be > 0");
  if (!options.export_load.empty() && !IsOneLoopbackTarget(options.export_load)) {
    throw std::invalid_argument("--export-load must be a loopback HOST:PORT, got '" +
                                options.export_load + "'");
  }
  ClientOptions client_options;
  client_options.allocate_timeout = options.allocate_timeout;
  client_options.control_timeout = std::chrono::milliseconds(3000);
  const std::vector<std::string> targets = SplitTargets(options.target);
  std::vector<std::unique_ptr<AllotClient>> stage_clients;
  for (size_t s = 0; s < world.layout().chain().size(); ++s) {
    stage_clients.push_back(std::make_unique<AllotClient>(
        AllocateChannel(options.target, targets.size()), client_options));
  }
  // One client per replica for what each keeps on its own: reported load and prices.
  std::vector<std::unique_ptr<AllotClient>> replicas;
  for (const std::string& replica : targets) {
    replicas.push_back(std::make_unique<AllotClient>(
        grpc::CreateChannel(replica, grpc::InsecureChannelCredentials()), client_options));
  }
  for (const auto& client : stage_clients) {  // each answers with a safe default on failure
    const grpc::Status status = client->LoadSchema();
    if (!status.ok()) {
      throw std::runtime_error("cannot read the schema from " + options.target + ": " +
                               status.error_message());
    }
  }
  CheckSchema(world, stage_clients.front()->schema());

  StreamOptions stream_options;
  stream_options.seed = options.seed;
  stream_options.name = "drive";
  stream_options.mean_qps = options.qps;
  stream_options.start_hour = options.start_hour;
  const RequestStream stream(world, stream_options);
  std::vector<Request> requests = stream.TakeSeconds(options.duration_s);
  if (static_cast<int64_t>(requests.size()) > options.max_requests) {
    requests.resize(static_cast<size_t>(options.max_requests));
  }

  std::unique_ptr<LoadExporter> exporter;
  if (!options.export_load.empty()) {
    exporter = std::make_unique<LoadExporter>(world, options.export_load);
  }
  DriveSummary summary;
  RemotePolicy policy(world, std::move(stage_clients), summary);
  RunOptions run;
  run.online = true;
  run.period_s = 1.0;  // load published once per simulated (= wall) second per module
  run.scale = stream.scale();
  run.noise_seed = options.seed;
  const auto start = SteadyClock::now();
  run.before_request = [&](const Request& r) {
    const auto due = start + std::chrono::duration_cast<SteadyClock::duration>(
                                 std::chrono::duration<double>(r.sim_s));
    const auto now = SteadyClock::now();
    if (now < due) {
      std::this_thread::sleep_until(due);
    } else {
      summary.max_behind_s =
          std::max(summary.max_behind_s, std::chrono::duration<double>(now - due).count());
    }
  };
  run.on_period = [&](const PeriodRecord& p) {
    if (exporter) {
      exporter->Publish(world, p);
    } else {
      ReportLoadToAll(world, p, replicas, summary);
    }
    const double sim_s = p.start_s + run.period_s;
    summary.prices.push_back(PollPrices(world, replicas, sim_s));
    if (options.on_second) options.on_second(sim_s);
  };
  Runner runner(world, policy, run, "server");
  for (const Request& r : requests) runner.Process(r);
  RunResult result = runner.Finish();
  summary.wall_s = std::chrono::duration<double>(SteadyClock::now() - start).count();
  summary.requests = result.requests;
  if (options.evaluate) {
    EvalOptions eval;
    eval.seed = options.seed;
    std::vector<RunResult> external;
    external.push_back(std::move(result));
    summary.evaluation = EvaluateRequests(world, requests, options.duration_s, stream.scale(), eval,
                                          std::move(external));
  } else {
    summary.evaluation.runs.push_back(std::move(result));
  }
  return summary;
}

}  // namespace allot::sim
