// Start-up order: config -> metrics -> policy -> gRPC server -> health SERVING; shutdown reverses.
#include "server/allot_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string_view>

#include "models/bundle.h"
#include "policy/analytic_scorer.h"
#include "server/logging.h"
#include "server/tls.h"

namespace allot {
namespace {

constexpr char kReadiness[] = "readiness";

// The watcher compares contents, not modification times: two writes inside one tick of the
// filesystem's coarse clock share an mtime, and a rewrite with the same bytes needs no reload.
std::string FileContents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

AllotServer::AllotServer(const ServerOptions& options) : options_(options) {}

AllotServer::~AllotServer() { Shutdown(); }

ServerFileConfig AllotServer::LoadConfig() const {
  ServerFileConfig file = options_.config_path.empty()
                              ? LoadEmbeddedServerConfig()
                              : LoadServerConfigFromFile(options_.config_path);
  if (!options_.listen.empty()) file.server.listen = options_.listen;
  if (!options_.metrics_listen.empty()) file.server.metrics_listen = options_.metrics_listen;
  if (!options_.model_dir.empty()) {
    AllotConfig config = *file.allot;
    config.models.dir = options_.model_dir;
    file.allot = std::make_shared<const AllotConfig>(std::move(config));
  }
  return file;
}

void AllotServer::Install(std::shared_ptr<const AllotConfig> config, const ServerConfig& server) {
  // The learned bundle serves while it matches this config's schema; else the analytic model.
  std::shared_ptr<const ActionScorer> scorer;
  {
    std::lock_guard<std::mutex> lock(bundle_mu_);
    if (bundle_ && bundle_schema_ == models::SchemaYaml(*config)) {
      scorer = bundle_;
    } else if (bundle_) {
      spdlog::warn(
          "bundle {} does not match the new config's schema; serving the analytic model until one "
          "does",
          bundle_->version());
      bundle_.reset();
      if (bundles_) bundles_->Reset();
    }
  }
  if (!scorer) scorer = std::make_shared<const AnalyticScorer>(*config);
  auto policy = MakePolicySnapshot(config, std::move(scorer));
  auto serving = std::make_shared<ServingSnapshot>();
  serving->policy = policy;
  serving->server = server;
  serving->agent_metrics = metrics_->ForPolicy(*policy);
  std::shared_ptr<const ActionScorer> shadow;
  {
    std::lock_guard<std::mutex> lock(bundle_mu_);
    shadow = shadow_;
  }
  if (shadow) {
    serving->shadow = MakePolicySnapshot(config, shadow);
    serving->shadow_sample_rate = config->experiments.shadow_sample_rate;
    serving->shadow_metrics = metrics_->ForShadow(*serving->shadow);
  }
  metrics_->SetShadowInfo(shadow ? shadow->version() : "");
  InstallArms(config, *serving);
  if (engine_) {
    engine_->SetPolicy(policy);
  } else {
    // First install: the reservoir is sized once, from the config the process started with.
    engine_ = std::make_unique<AllocationEngine>(policy, config->controller.reservoir_size,
                                                 config->controller.sample_every);
    control_ = std::make_unique<ControlRunner>(*engine_, *telemetry_, *metrics_, *options_.clock,
                                               "", ArmTelemetry("main"));
    service_ = std::make_unique<AllocatorService>(*engine_, *telemetry_, *metrics_, *control_,
                                                  *options_.clock);
  }
  telemetry_->Configure(config->telemetry.report_load);
  control_->Configure(config);
  service_->SetServing(std::move(serving));
  const auto lambdas = engine_->lambdas();
  for (const ModuleConfig& m : config->modules) {
    metrics_->SetModuleTarget(m.name, m.cpu_target, m.cpu_hard_limit);
    metrics_->SetLambda(m.name, lambdas->Get(m.name, m.initial_lambda));
  }
  metrics_->SetPolicyInfo(config->version, policy->scorer->version(), policy->scorer->inference());
}

std::unique_ptr<AllotServer> AllotServer::Start(const ServerOptions& options) {
  std::unique_ptr<AllotServer> self(new AllotServer(options));
  // Read before loading: a write that lands between the two is then seen by the first poll.
  if (!options.config_path.empty()) self->watched_contents_ = FileContents(options.config_path);
  const ServerFileConfig file = self->LoadConfig();
  const std::shared_ptr<const AllotConfig>& config = file.allot;
  const ServerConfig& settings = file.server;
  // The logging this file asks for, whatever the caller configured before (they may differ if
  // the file changed since): what logging_ says is what is in force.
  ConfigureLogging(file.logging.level_name(), file.logging.format_name());
  self->logging_ = file.logging;

  try {
    self->metrics_ = std::make_unique<ServerMetrics>(settings.metrics_listen);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot serve metrics on " + settings.metrics_listen + ": " +
                             e.what());
  }
  self->telemetry_ = std::make_unique<TelemetryStore>(*options.clock);
  self->CommitExperiments(self->LoadExperiments(*config));
  self->Install(config, settings);
  AllotServer* raw = self.get();
  self->bundles_ = std::make_unique<BundleWatcher>(
      [](const std::string& dir, const AllotConfig& c) { return models::LoadBundle(dir, c); },
      [raw](std::shared_ptr<const ActionScorer> scorer, const std::string& dir) {
        if (std::string_view(scorer->inference()) == "libtorch") {
          spdlog::warn(
              "model bundle {} has layers the fast path cannot express; serving it through "
              "LibTorch, about ten times slower per decision (allot_bundle_info{{inference}})",
              dir);
        }
        raw->InstallBundle(scorer, dir);
      },
      [raw](bool ok, const std::string& dir, const std::string& error) {
        raw->metrics_->CountBundleReload(ok);
        if (ok) {
          spdlog::info("serving model bundle {}", dir);
        } else {
          spdlog::error("refused model bundle: {}", error);
        }
      },
      [raw](const std::string& models_dir, bool exists) {
        raw->metrics_->SetModelDirExists(exists);
        if (exists) {
          spdlog::info("model directory {} found", models_dir);
        } else {
          spdlog::warn("model directory {} does not exist; serving {} until a bundle appears there",
                       models_dir,
                       raw->config()->models.serve_analytic ? "the analytic model"
                                                            : "nothing (readiness NOT_SERVING)");
        }
      });
  // The first poll runs before serving so that a process with a bundle starts with it.
  self->bundles_->PollOnce(*config);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC binds with SO_REUSEPORT by default: a second server on the same port would start and
  // take half of the connections. A port in use must fail the start instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (settings.max_concurrent_streams > 0)
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, settings.max_concurrent_streams);
  builder.AddListeningPort(settings.listen, MakeServerCredentials(settings.tls), &self->port_);
  builder.RegisterService(self->service_.get());
  self->server_ = builder.BuildAndStart();
  if (!self->server_ || self->port_ == 0) {
    throw std::runtime_error("cannot listen on " + settings.listen +
                             " (in use, or not a local address)");
  }
  self->server_->GetHealthCheckService()->SetServingStatus("", true);
  self->UpdateReadiness();
  self->bundles_->Start([raw] { return raw->config(); });

  // One period now, so that control state and metrics are complete from the first scrape.
  self->control_->StepOnce();
  self->control_->Start();
  if (!options.config_path.empty() && settings.reload_poll_s > 0) {
    self->watcher_ = std::thread([raw = self.get()] { raw->WatchConfigFile(); });
  }
  spdlog::info("allot-server listening on port {} (metrics on port {}), config {} version {}",
               self->port_, self->metrics_port(), config->source, config->version);
  return self;
}

bool AllotServer::Reload() {
  std::lock_guard<std::mutex> lock(reload_mu_);
  if (options_.config_path.empty()) {
    spdlog::info("reload: serving the embedded config, nothing to reload");
    return true;
  }
  {
    // What this reload reads is what the watcher has seen: it must not try (and count) the same
    // contents again after a SIGHUP.
    std::lock_guard<std::mutex> watched(mu_);
    watched_contents_ = FileContents(options_.config_path);
  }
  const std::shared_ptr<const AllotConfig> current = config();
  const ServerConfig current_settings = settings();
  ServerFileConfig file;
  std::shared_ptr<const AllotConfig> next;
  PendingExperiments experiments;
  try {
    file = LoadConfig();
    next = file.allot;
    if (next->version == current->version) return true;
    // Everything the new config's experiments need is loaded before anything changes: a bundle
    // that cannot load leaves the serving state as it was.
    experiments = LoadExperiments(*next);
  } catch (const std::exception& e) {
    metrics_->CountConfigReload(false);
    spdlog::error("reload of {} failed, keeping config version {}: {}", options_.config_path,
                  current->version, e.what());
    return false;
  }
  if (file.server.listen != current_settings.listen ||
      file.server.metrics_listen != current_settings.metrics_listen ||
      file.server.tls != current_settings.tls ||
      file.server.max_concurrent_streams != current_settings.max_concurrent_streams) {
    spdlog::warn(
        "reload: listen addresses, server.tls or server.max_concurrent_streams changed; they "
        "take effect only after a restart");
  }
  // The transport keeps the addresses and TLS it started with, and so does the identity check on
  // top of it: settings() says what is in force.
  file.server.listen = current_settings.listen;
  file.server.metrics_listen = current_settings.metrics_listen;
  file.server.tls = current_settings.tls;
  file.server.max_concurrent_streams = current_settings.max_concurrent_streams;
  if (file.logging != logging_)
    ConfigureLogging(file.logging.level_name(), file.logging.format_name());
  logging_ = file.logging;
  CommitExperiments(std::move(experiments));
  Install(next, file.server);
  UpdateReadiness();
  metrics_->CountConfigReload(true);
  spdlog::info("reload: config version {} -> {}", current->version, next->version);
  return true;
}

void AllotServer::InstallBundle(std::shared_ptr<const ActionScorer> scorer,
                                const std::string& dir) {
  // The config read under the reload lock: a reload in progress is not undone.
  std::lock_guard<std::mutex> reload(reload_mu_);
  const std::shared_ptr<const AllotConfig> current = config();
  {
    std::lock_guard<std::mutex> lock(bundle_mu_);
    bundle_ = std::move(scorer);
    bundle_schema_ = models::SchemaYaml(*current);
  }
  Install(current, settings());
  UpdateReadiness();
}

namespace {

// Where a bundle named in experiments.* lives: "analytic", an absolute path, or under models.dir.
std::string BundleDir(const AllotConfig& config, const std::string& name) {
  return name == "analytic" || name.front() == '/' ? name : config.models.dir + "/" + name;
}

// What a loaded experiment scorer was loaded for: its directory and the schema (the analytic
// model: the whole config, whose gains and costs it reads).
std::string ScorerKey(const AllotConfig& config, const std::string& name) {
  return BundleDir(config, name) + "\n" +
         (name == "analytic" ? config.version : models::SchemaYaml(config));
}

// `name`'s scorer for `config`; `what` names the key in errors. The off-policy floor applies
// only when it serves.
std::shared_ptr<const ActionScorer> LoadExperimentScorer(const AllotConfig& config,
                                                         const std::string& name,
                                                         const std::string& what, bool serves) {
  if (name == "analytic") return std::make_shared<const AnalyticScorer>(config);
  const std::string dir = BundleDir(config, name);
  AllotConfig checks = config;
  if (!serves) checks.models.min_offpolicy_ratio = 0.0;
  std::shared_ptr<const ActionScorer> scorer;
  try {
    scorer = models::LoadBundle(dir, checks);
  } catch (const std::exception& e) {
    throw std::runtime_error(what + ": cannot load '" + dir + "': " + e.what());
  }
  WarmUp(*scorer, config);
  return scorer;
}

}  // namespace

AllotServer::PendingExperiments AllotServer::LoadExperiments(const AllotConfig& config) {
  PendingExperiments pending;
  const std::string& shadow = config.experiments.shadow_bundle;
  pending.shadow_key = shadow.empty() ? "" : ScorerKey(config, shadow);
  std::map<std::string, std::string> loaded;  // arm name -> key
  {
    std::lock_guard<std::mutex> lock(bundle_mu_);
    pending.shadow_changed = pending.shadow_key != shadow_key_;
    for (const auto& [name, scorer] : arm_scorers_) loaded[name] = scorer.first;
  }
  if (pending.shadow_changed && !shadow.empty()) {
    // A shadow never serves: the off-policy floor guards serving, not observing.
    pending.shadow =
        LoadExperimentScorer(config, shadow, "experiments.shadow_bundle", /*serves=*/false);
    spdlog::info("shadow scoring with {} on {:.2f}% of the calls", BundleDir(config, shadow),
                 100.0 * config.experiments.shadow_sample_rate);
  }
  for (size_t i = 0; i < config.experiments.arms.size(); ++i) {
    const ArmConfig& arm = config.experiments.arms[i];
    const std::string key = ScorerKey(config, arm.bundle);
    if (loaded.count(arm.name) && loaded[arm.name] == key) continue;
    pending.arm_scorers[arm.name] = {
        key, LoadExperimentScorer(config, arm.bundle,
                                  "experiments.arms[" + std::to_string(i) + "].bundle",
                                  /*serves=*/true)};
  }
  return pending;
}

void AllotServer::CommitExperiments(PendingExperiments pending) {
  std::lock_guard<std::mutex> lock(bundle_mu_);
  if (pending.shadow_changed) {
    shadow_ = std::move(pending.shadow);
    shadow_key_ = std::move(pending.shadow_key);
  }
  for (auto& [name, scorer] : pending.arm_scorers) arm_scorers_[name] = std::move(scorer);
}

void AllotServer::StepControlOnce() {
  control_->StepOnce();
  std::vector<std::shared_ptr<ArmRuntime>> arms;
  {
    std::lock_guard<std::mutex> lock(bundle_mu_);
    for (const auto& [name, arm] : arms_) arms.push_back(arm);
  }
  for (const auto& arm : arms) arm->control->StepOnce();
}

TelemetryDecorator AllotServer::ArmTelemetry(std::string arm) {
  // By name: an arm's position changes when earlier arms are added or removed by a reload.
  return [this, arm](std::unique_ptr<TelemetrySource> source,
                     const AllotConfig& config) -> std::unique_ptr<TelemetrySource> {
    const auto& arms = config.experiments.arms;
    size_t index = 0;
    for (size_t i = 0; i < arms.size(); ++i) {
      if (arms[i].name == arm) index = i + 1;
    }
    const double weight = index > 0 ? arms[index - 1].weight : config.experiments.main_arm_weight();
    if (arms.empty() || (index == 0 && arm != "main")) return source;
    std::vector<std::string> modules;
    for (const ModuleConfig& m : config.modules) modules.push_back(m.name);
    std::shared_ptr<ArmLoadShare> share;
    {
      std::lock_guard<std::mutex> lock(bundle_mu_);
      share = arm_load_;
    }
    if (!share) return source;
    return std::make_unique<ArmShareSource>(std::move(source), std::move(share), index, weight,
                                            std::move(modules));
  };
}

void AllotServer::InstallArms(const std::shared_ptr<const AllotConfig>& config,
                              ServingSnapshot& serving) {
  const auto& arms = config->experiments.arms;
  std::vector<std::shared_ptr<ArmRuntime>> removed;
  std::vector<std::shared_ptr<ArmRuntime>> kept(arms.size());
  std::vector<std::shared_ptr<const ActionScorer>> scorers(arms.size());
  {
    std::lock_guard<std::mutex> lock(bundle_mu_);
    for (auto it = arms_.begin(); it != arms_.end();) {
      const bool configured = std::any_of(arms.begin(), arms.end(),
                                          [&](const ArmConfig& a) { return a.name == it->first; });
      if (configured) {
        ++it;
        continue;
      }
      removed.push_back(it->second);
      arm_scorers_.erase(it->first);
      it = arms_.erase(it);
    }
    if (!arms.empty() && (!arm_load_ || arm_load_->arms() != arms.size() + 1 ||
                          arm_load_->modules() != config->modules.size()))
      arm_load_ = std::make_shared<ArmLoadShare>(arms.size() + 1, config->modules.size());
    if (arms.empty()) arm_load_.reset();
    for (size_t i = 0; i < arms.size(); ++i) {
      scorers[i] = arm_scorers_.at(arms[i].name).second;
      if (const auto it = arms_.find(arms[i].name); it != arms_.end()) kept[i] = it->second;
    }
  }
  // A removed arm stops setting prices now; requests in flight may still use its engine.
  for (const auto& arm : removed) {
    arm->control->Stop();
    metrics_->RemoveArm(arm->name);
  }
  if (arms.empty()) {
    metrics_->RemoveArm("main");
    return;
  }
  serving.arm_load = arm_load_;
  const double main_weight = config->experiments.main_arm_weight();
  serving.arms.push_back(
      {"main", main_weight, nullptr, nullptr, metrics_->ForArm("main", *config)});
  for (size_t i = 0; i < arms.size(); ++i) {
    auto policy = MakePolicySnapshot(config, scorers[i]);
    std::shared_ptr<ArmRuntime> runtime = kept[i];
    if (runtime) {
      // A new bundle for the arm keeps its prices and what its controller learned.
      runtime->engine->SetPolicy(policy);
      runtime->control->Configure(config);
    } else {
      runtime = std::make_shared<ArmRuntime>();
      runtime->name = arms[i].name;
      runtime->engine = std::make_unique<AllocationEngine>(
          policy, config->controller.reservoir_size, config->controller.sample_every);
      runtime->control =
          std::make_unique<ControlRunner>(*runtime->engine, *telemetry_, *metrics_, *options_.clock,
                                          runtime->name, ArmTelemetry(runtime->name));
      runtime->control->Configure(config);
      runtime->control->StepOnce();
      runtime->control->Start();
      std::lock_guard<std::mutex> lock(bundle_mu_);  // published once whole
      arms_[runtime->name] = runtime;
    }
    serving.arm_weights.push_back(arms[i].weight);
    serving.arms.push_back(
        {arms[i].name, arms[i].weight, runtime, policy, metrics_->ForArm(arms[i].name, *config)});
  }
}

void AllotServer::UpdateReadiness() {
  if (!server_) return;
  bool ready;
  {
    std::lock_guard<std::mutex> lock(bundle_mu_);
    ready = bundle_ != nullptr || config()->models.serve_analytic;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!stopping_) server_->GetHealthCheckService()->SetServingStatus(kReadiness, ready);
}

void AllotServer::WatchConfigFile() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    // A reload may set reload_poll_s to 0: then only SIGHUP reloads, and the watcher only looks
    // once a second whether polling is back on.
    const double poll_s = settings().reload_poll_s;
    cv_.wait_for(lock, std::chrono::duration<double>(poll_s > 0 ? poll_s : 1.0),
                 [this] { return stopping_; });
    if (poll_s <= 0) continue;
    if (stopping_) break;
    std::string now = FileContents(options_.config_path);
    if (now == watched_contents_) continue;
    watched_contents_ = std::move(now);
    lock.unlock();
    Reload();
    lock.lock();
  }
}

void AllotServer::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (!service_) return;  // Start() failed before anything ran
  const ServerConfig settings = this->settings();
  if (server_) {
    grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
    health->SetServingStatus(kReadiness, false);
    health->SetServingStatus("", false);
    if (settings.drain_delay_s > 0) {
      spdlog::info("shutdown: NOT_SERVING, draining for {} s", settings.drain_delay_s);
      std::this_thread::sleep_for(std::chrono::duration<double>(settings.drain_delay_s));
    }
    // Handlers answer inline in microseconds: once none is running, the last responses only
    // need a short grace to flush. gRPC would otherwise wait the whole timeout for idle
    // connections whose clients do not read its GOAWAY.
    const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::duration<double>(settings.shutdown_timeout_s));
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (service_->calls_in_handlers() > 0 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    constexpr std::chrono::milliseconds kFlushGrace(500);
    server_->Shutdown(std::chrono::system_clock::now() + std::min(timeout, kFlushGrace));
  }
  if (watcher_.joinable()) watcher_.join();
  if (bundles_) bundles_->Stop();
  if (control_) control_->Stop();
  {
    std::lock_guard<std::mutex> lock(bundle_mu_);
    for (auto& [name, arm] : arms_) arm->control->Stop();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
  spdlog::info("shutdown complete");
}

void AllotServer::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return stopped_; });
}

}  // namespace allot
