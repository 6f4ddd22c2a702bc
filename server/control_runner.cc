// The loop runs on its own thread; a step takes milliseconds (cost curves over the reservoir) and
// never blocks the request path, which only reads the lambda snapshot the step publishes.
#include "server/control_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "server/prometheus_source.h"

namespace allot {

ControlRunner::ControlRunner(AllocationEngine& engine, const TelemetryStore& reports,
                             ServerMetrics& metrics, const Clock& clock, std::string arm,
                             TelemetryDecorator decorate)
    : engine_(engine),
      arm_(std::move(arm)),
      decorate_(std::move(decorate)),
      engine_ports_(engine),
      reports_(reports),
      metrics_(metrics),
      clock_(clock) {}

ControlRunner::~ControlRunner() { Stop(); }

namespace {

// The one place a telemetry source kind is built.
std::unique_ptr<TelemetrySource> MakeTelemetrySource(const AllotConfig& config,
                                                     const TelemetryStore& reports) {
  switch (config.telemetry.source) {
    case TelemetrySourceKind::kReportLoad:
      return std::make_unique<ReportLoadSource>(reports);
    case TelemetrySourceKind::kPrometheus:
      return std::make_unique<PrometheusSource>(config);
  }
  throw std::logic_error("unknown telemetry source");  // unreachable: the enum is closed
}

// The telemetry source reads the telemetry section and each module's queries.
bool SameTelemetry(const AllotConfig& a, const AllotConfig& b) {
  auto queries = [](const ModuleConfig& x, const ModuleConfig& y) {
    return x.name == y.name && x.cpu_query == y.cpu_query && x.qps_query == y.qps_query &&
           x.price_query == y.price_query;
  };
  return a.telemetry == b.telemetry && std::equal(a.modules.begin(), a.modules.end(),
                                                  b.modules.begin(), b.modules.end(), queries);
}

// A replica that starts takes the price its module's other replicas use (modules[].price_query),
// within the lambda bounds, instead of initial_lambda: it neither undercuts nor overcharges them
// while its own controller catches up.
void JoinClusterPrices(const AllotConfig& config, TelemetrySource& source, PriceBoard& prices) {
  const std::vector<double> current = prices.Current(config);
  std::vector<ModuleDecision> decisions(config.modules.size());
  bool joined = false;
  for (size_t m = 0; m < config.modules.size(); ++m) {
    const ModuleConfig& module = config.modules[m];
    decisions[m].lambda = current[m];
    std::string error;
    if (const std::optional<double> price = source.ClusterPrice(module.name, &error)) {
      decisions[m].lambda = std::clamp(*price, config.lambda.min, config.lambda.max);
      joined = true;
      spdlog::info("{} joins at the cluster's price {} (modules[{}].price_query)", module.name,
                   decisions[m].lambda, m);
    } else if (!error.empty()) {
      spdlog::warn("{}; {} starts at initial_lambda {}", error, module.name, current[m]);
    }
  }
  if (joined) prices.Publish(config, decisions);
}

// Periods start on multiples of period_s of the wall clock, so replicas (whose clocks agree to
// NTP precision) step together and read the same telemetry sample: a replica stepping half a
// period after the others would show their last step as a spread of prices.
std::chrono::milliseconds UntilNextPeriod(int64_t now_ms, double period_s) {
  const int64_t period_ms = std::max<int64_t>(1, std::llround(period_s * 1000.0));
  return std::chrono::milliseconds(period_ms - ((now_ms % period_ms) + period_ms) % period_ms);
}

}  // namespace

void ControlRunner::Configure(std::shared_ptr<const AllotConfig> config) {
  std::lock_guard<std::mutex> step(step_mu_);
  std::unique_ptr<TelemetrySource> source;
  // A decorated source depends on the arms too (weights, shares): rebuilt on every change.
  if (!source_ || !SameTelemetry(*config_, *config) ||
      (decorate_ && config_->experiments.arms != config->experiments.arms)) {
    source = MakeTelemetrySource(*config, reports_);
    if (decorate_) source = decorate_(std::move(source), *config);
  }
  // The first config only: a replica that starts. Before mu_, as it may wait on the network
  // (loop_ changes only here, under step_mu_).
  if (!loop_) JoinClusterPrices(*config, *source, engine_ports_);
  std::lock_guard<std::mutex> lock(mu_);
  if (!loop_) {
    loop_ = std::make_unique<ControlLoop>(
        config, ControlPorts{source.get(), &engine_ports_, &engine_ports_, &clock_});
  } else {
    // Controller state, forecast, back-off and lambdas carry over wherever the modules stay.
    loop_->Reconfigure(config, source.get());
  }
  if (source) source_ = std::move(source);
  config_ = std::move(config);
}

void ControlRunner::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ControlRunner::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ControlRunner::StepOnce() {
  std::lock_guard<std::mutex> step(step_mu_);
  ControlLoop* loop;
  std::shared_ptr<const AllotConfig> config;
  {
    std::lock_guard<std::mutex> lock(mu_);
    loop = loop_.get();
    config = config_;
  }
  const auto start = std::chrono::steady_clock::now();
  const std::vector<ModuleDecision> decisions = loop->Step();
  // With experiment arms the main loop's prices are also shown beside the arms' (arm="main").
  if (!arm_.empty() || !config->experiments.arms.empty()) {
    for (size_t m = 0; m < decisions.size(); ++m) {
      metrics_.SetArmLambda(arm_.empty() ? "main" : arm_, config->modules[m].name,
                            decisions[m].lambda);
    }
  }
  if (!arm_.empty()) {
    if (const auto budget = engine_.cache_budget()) budget->MaybeRoll(clock_.NowSeconds());
    return;
  }
  if (const auto budget = engine_.cache_budget()) {
    if (budget->MaybeRoll(clock_.NowSeconds()))
      spdlog::info("cache reuse budget: mu = {:.4g}", budget->mu());
    metrics_.SetCacheBudgetMu(budget->mu());
  }
  metrics_.ObserveControlStep(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  Export(*config, decisions);
}

void ControlRunner::Export(const AllotConfig& config,
                           const std::vector<ModuleDecision>& decisions) {
  for (size_t m = 0; m < decisions.size(); ++m) {
    const ModuleDecision& d = decisions[m];
    const std::string& module = config.modules[m].name;
    metrics_.SetControl(module, d);
    if (!d.telemetry_error.empty()) {
      spdlog::warn("telemetry for {} rejected: {}", module, d.telemetry_error);
    }
  }
  metrics_.SetReservoir(engine_.reservoir().recorded(), engine_.reservoir().dropped());
}

std::vector<ModuleDecision> ControlRunner::last() const {
  std::lock_guard<std::mutex> lock(mu_);
  return loop_ ? loop_->last() : std::vector<ModuleDecision>{};
}

const char* ControlRunner::telemetry_source() const {
  std::lock_guard<std::mutex> lock(mu_);
  return source_ ? source_->name() : "";
}

void ControlRunner::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const auto wait = UntilNextPeriod(clock_.NowMs(), config_->controller.period_s);
    if (cv_.wait_for(lock, wait, [this] { return stopping_; })) break;
    lock.unlock();
    StepOnce();
    lock.lock();
  }
}

}  // namespace allot
