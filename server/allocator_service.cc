// Each handler runs inline on the gRPC callback thread: decisions take microseconds, so handing
// them to another pool would only add a context switch.
#include "server/allocator_service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <random>

#include "server/in_flight.h"
#include "server/proto_convert.h"
#include "server/request_validation.h"
#include "server/tls.h"

namespace allot {
namespace {

using SteadyClock = std::chrono::steady_clock;

double SecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// Remaining time before the caller's deadline, in ms; +inf when the call has no deadline.
double RemainingMs(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max())
    return std::numeric_limits<double>::infinity();
  return std::chrono::duration<double, std::milli>(deadline - std::chrono::system_clock::now())
      .count();
}

// The body parsed as the method's message, or INVALID_ARGUMENT naming the message it is not.
// A call that ended before its message arrived (the caller cancelled, or its deadline passed
// while the call waited in the transport, as under overload) has no body at all: CANCELLED, and
// not the caller's mistake. A body in one uncompressed slice (a small request always is) is
// parsed in place; gRPC's generic path, which the rest take, wraps it in a stream first.
template <typename Message>
grpc::Status ParseBody(const grpc::ByteBuffer& body, Message* message) {
  if (!body.Valid())
    return {grpc::StatusCode::CANCELLED, "request: the call ended before its message arrived"};
  grpc::Slice slice;
  bool parsed = false;
  if (body.TrySingleSlice(&slice).ok() && slice.size() <= INT32_MAX) {
    parsed = message->ParseFromArray(slice.begin(), static_cast<int>(slice.size()));
  } else {
    grpc::ByteBuffer copy(body);  // Deserialize consumes its buffer; the copy shares the slices
    parsed = grpc::SerializationTraits<Message>::Deserialize(&copy, message).ok();
  }
  if (parsed) return grpc::Status::OK;
  return {grpc::StatusCode::INVALID_ARGUMENT,
          "request: the body is not a valid " + Message::descriptor()->full_name()};
}

// The message written straight into one slice of its size (gRPC's generic path streams a
// message of more than a few bytes through a zero-copy writer).
template <typename Message>
grpc::Status SerializeBody(const Message& message, grpc::ByteBuffer* body) {
  grpc::Slice slice(message.ByteSizeLong());
  message.SerializeWithCachedSizesToArray(const_cast<uint8_t*>(slice.begin()));
  grpc::ByteBuffer written(&slice, 1);
  body->Swap(&written);
  return grpc::Status::OK;
}

// Counts a handler as running for its scope (shutdown waits for none to run).
class InHandler {
 public:
  explicit InHandler(std::atomic<int>& count) : count_(count) {
    count_.fetch_add(1, std::memory_order_acq_rel);
  }
  ~InHandler() { count_.fetch_sub(1, std::memory_order_acq_rel); }
  InHandler(const InHandler&) = delete;
  InHandler& operator=(const InHandler&) = delete;

 private:
  std::atomic<int>& count_;
};

// A call shed beyond server.max_in_flight, for callers that retry on another replica.
grpc::Status OverloadStatus(const ServerConfig& settings) {
  return {grpc::StatusCode::RESOURCE_EXHAUSTED,
          "server: more than server.max_in_flight (" + std::to_string(settings.max_in_flight) +
              ") Allocate calls in flight; shed without a decision"};
}

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// The status of a report the telemetry store refused, naming the field at fault.
grpc::Status RefusedReport(ReportOutcome outcome, const v1::LoadReport& request,
                           const ReportLoadConfig& limits) {
  const std::string who = "'" + request.reporter().substr(0, 64) + "'";
  switch (outcome) {
    case ReportOutcome::kNotAllowed:
      return {grpc::StatusCode::PERMISSION_DENIED,
              "reporter: " + who + " is not in telemetry.report_load.reporters"};
    case ReportOutcome::kRateLimited:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED,
              "reporter: " + who +
                  " reports more often than telemetry.report_load.reports_per_s (" +
                  std::to_string(limits.reports_per_s) + "/s)"};
    case ReportOutcome::kTooManyReporters:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED,
              "reporter: module '" + request.module() +
                  "' already has telemetry.report_load.max_reporters (" +
                  std::to_string(limits.max_reporters) + ") live reporters"};
    default:
      return {grpc::StatusCode::INVALID_ARGUMENT,
              std::string("timestamp_ms: refused (") + ReportOutcomeName(outcome) + ")"};
  }
}

}  // namespace

AllocatorService::AllocatorService(AllocationEngine& engine, TelemetryStore& telemetry,
                                   ServerMetrics& metrics, const ControlRunner& control,
                                   const Clock& clock)
    : engine_(engine), telemetry_(telemetry), metrics_(metrics), control_(control), clock_(clock) {}

grpc::ServerUnaryReactor* AllocatorService::Allocate(grpc::CallbackServerContext* context,
                                                     const grpc::ByteBuffer* body,
                                                     grpc::ByteBuffer* response_body) {
  const InHandler running(in_handlers_);
  const auto start = SteadyClock::now();
  int held = 0;
  CountedUnaryReactor* reactor =
      CountedUnaryReactor::Start(context, metrics_.allocate_in_flight(), &held);
  const std::shared_ptr<const ServingSnapshot> serving = serving_.load();
  const ServerConfig& settings = serving->server;
  const bool shed = settings.max_in_flight > 0 && held >= settings.max_in_flight;
  if (shed) metrics_.CountShed();
  thread_local v1::AllocateRequest request;
  thread_local v1::AllocateResponse response;
  response.Clear();
  ShadowTask shadow;
  grpc::Status status = shed && settings.overload_answer == OverloadAnswer::kResourceExhausted
                            ? OverloadStatus(settings)
                            : ParseBody(*body, &request);
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT)
      metrics_.CountInvalid(RpcMethod::kAllocate, "request");
  } else {
    try {
      status = DoAllocate(context, serving, shed, request, &response, &shadow);
    } catch (const std::exception& e) {
      // Unreachable by design (the engine does not throw); never let a bug kill the process.
      spdlog::error("Allocate {}: internal error: {}", request.request_id(), e.what());
      status = grpc::Status(grpc::StatusCode::INTERNAL, "internal error");
    }
    if (status.ok()) status = SerializeBody(response, response_body);
  }
  metrics_.ObserveRpc(RpcMethod::kAllocate, status.error_code(), SecondsSince(start));
  reactor->Finish(status);
  if (shadow.serving && status.ok())
    reactor->RunWhenDone([this, task = std::move(shadow)] { DecideInShadow(task); });
  return reactor;
}

void AllocatorService::FillArmStates(const ServingSnapshot& serving,
                                     v1::ControlState* state) const {
  const AllotConfig& config = *serving.policy->config;
  for (size_t a = 0; a < serving.arms.size(); ++a) {
    const ArmServing& arm = serving.arms[a];
    v1::ArmState* out = state->add_arms();
    out->set_name(arm.name);
    const PolicySnapshot& policy = arm.policy ? *arm.policy : *serving.policy;
    out->set_bundle_version(policy.scorer->version());
    out->set_weight(arm.weight);
    const AllocationEngine& engine = arm.runtime ? *arm.runtime->engine : engine_;
    const std::shared_ptr<const LambdaTable> lambdas = engine.lambdas();
    const std::vector<ModuleDecision> decisions =
        arm.runtime ? arm.runtime->control->last() : control_.last();
    for (size_t m = 0; m < config.modules.size(); ++m) {
      v1::ArmModule* module = out->add_modules();
      module->set_module(config.modules[m].name);
      module->set_compute_price(
          lambdas->Get(config.modules[m].name, config.modules[m].initial_lambda));
      if (m < decisions.size()) module->set_controller(decisions[m].controller);
      const double all = serving.arm_load->ModuleTotal(m);
      module->set_load_share(all > 0 ? serving.arm_load->Total(a, m) / all : 0.0);
    }
  }
}

void FillShadowState(const ServingSnapshot& serving, v1::ShadowState* out) {
  out->set_bundle_version(serving.shadow->scorer->version());
  out->set_sample_rate(serving.shadow_sample_rate);
  const auto count = [](const prometheus::Counter* c) { return static_cast<uint64_t>(c->Value()); };
  for (size_t a = 0; a < serving.shadow_metrics.size(); ++a) {
    const ShadowMetrics& m = serving.shadow_metrics[a];
    v1::ShadowAgreement* agent = out->add_agents();
    agent->set_agent(serving.policy->config->agents[a].name);
    agent->set_agree(count(m.agree));
    agent->set_differ(count(m.differ));
    agent->set_failed(count(m.failed));
  }
}

bool InShadowSample(const std::string& request_id, double rate) {
  if (rate >= 1.0) return true;
  if (!(rate > 0.0)) return false;
  if (request_id.empty()) {
    thread_local std::mt19937_64 draw(std::random_device{}());
    return static_cast<double>(draw() >> 11) * 0x1.0p-53 < rate;
  }
  return StableUnitHash("shadow", request_id) < rate;
}

void AllocatorService::DecideInShadow(const ShadowTask& task) const {
  try {
    const ServingSnapshot& serving = *task.serving;
    const std::span<const float> features(task.features);
    const Allocation a =
        engine_.Decide(serving.shadow, task.agent, features, task.caches, DecisionUse::kShadow);
    const ShadowMetrics& m = serving.shadow_metrics[task.agent];
    if (a.fallback) {
      m.failed->Increment();
    } else if (a.joint == task.served_joint) {
      m.agree->Increment();
    } else {
      m.differ->Increment();
    }
    if (spdlog::should_log(spdlog::level::debug)) {
      const AgentConfig& agent = serving.policy->config->agents[task.agent];
      const ActionSpace& space = serving.policy->spaces[task.agent];
      spdlog::debug("shadow {} agent={} served=[{}] shadow {}=[{}]{}", task.request_id, agent.name,
                    JointActionLabel(agent, space, task.served_joint),
                    serving.shadow->scorer->version(),
                    a.fallback ? "" : JointActionLabel(agent, space, a.joint),
                    a.fallback ? a.fallback_reason : "");
    }
  } catch (const std::exception& e) {
    spdlog::error("shadow decision for {}: {}", task.request_id, e.what());
  }
}

grpc::Status AllocatorService::DoAllocate(grpc::CallbackServerContext* context,
                                          const std::shared_ptr<const ServingSnapshot>& serving,
                                          bool shed, const v1::AllocateRequest& request,
                                          v1::AllocateResponse* response, ShadowTask* shadow) {
  thread_local std::vector<CachedStage> caches;
  size_t agent = 0;
  const ValidationResult valid =
      ValidateAllocateRequest(request, *serving->policy, serving->server, &agent, &caches);
  if (!valid.ok()) {
    metrics_.CountInvalid(RpcMethod::kAllocate, valid.field);
    return valid.status;
  }
  const ServerConfig& settings = serving->server;
  if (request.explain() &&
      !explain_limiter_.Allow(CallerOfPeer(context->peer()), settings.explain_per_caller_per_s)) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "explain: over server.explain_per_caller_per_s (" +
                            std::to_string(settings.explain_per_caller_per_s) +
                            " per second per caller)");
  }
  const auto start = SteadyClock::now();
  const double remaining_ms = RemainingMs(*context);
  const std::span<const float> features(request.features().data(),
                                        static_cast<size_t>(request.features_size()));
  // An experiment arm decides with its own policy and prices; the main arm is the service's.
  const size_t arm = serving->arms.empty() ? 0 : ArmOf(request.user_id(), serving->arm_weights);
  const bool in_experiment_arm = arm > 0;
  const std::shared_ptr<const PolicySnapshot>& policy =
      in_experiment_arm ? serving->arms[arm].policy : serving->policy;
  AllocationEngine& engine = in_experiment_arm ? *serving->arms[arm].runtime->engine : engine_;
  const Allocation allocation = shed ? engine.SafeDefault(policy, agent, "overload")
                                : remaining_ms < settings.min_deadline_ms
                                    ? engine.SafeDefault(policy, agent, "deadline")
                                    : engine.Decide(policy, agent, features, caches);
  response->set_request_id(request.request_id());
  FillAllocateResponse(allocation, response);
  if (!serving->arms.empty()) {
    const ArmServing& a = serving->arms[arm];
    response->set_arm(a.name);
    a.metrics[agent].decisions->Increment();
    if (allocation.fallback) {
      a.metrics[agent].fallbacks->Increment();
    } else {
      a.metrics[agent].predicted_value->Increment(allocation.value);
      a.metrics[agent].predicted_cost_ms->Increment(allocation.cost);
      serving->arm_load->Add(arm, policy->agent_module_index[agent], allocation.cost);
    }
  }
  const AgentMetrics& m = serving->agent_metrics[agent];
  m.decision_seconds->Observe(SecondsSince(start));
  metrics_.RecordAllocation(m, allocation, *policy);
  if (!caches.empty()) {
    m.cache_reuse[allocation.cache.reuse]->Increment();
    if (allocation.cache.reuse != 0)
      m.cache_saved_core_seconds->Increment(allocation.cache.cost_saved_ms / 1000.0);
  }
  if (allocation.fallback) {
    spdlog::debug("Allocate {} agent={} fallback={}", request.request_id(), request.agent(),
                  allocation.fallback_reason);
  }
  // The shadow is compared with the main arm's decisions.
  if (serving->shadow && !in_experiment_arm && !allocation.fallback &&
      InShadowSample(request.request_id(), serving->shadow_sample_rate)) {
    *shadow = {serving,
               agent,
               allocation.joint,
               request.request_id(),
               {features.begin(), features.end()},
               {caches.begin(), caches.end()}};
  }
  // After the decision's metrics: explaining is not part of the decision's time.
  if (request.explain() && !allocation.fallback) {
    // At the prices in force now: a controller update since the decision shows in the scores.
    const std::shared_ptr<const LambdaTable> lambdas = engine.lambdas();
    if (const auto explanation = ExplainDecision(*policy, *lambdas, agent, features,
                                                 allocation.joint, allocation.proposed)) {
      FillExplanation(*explanation, *serving->policy->config, response->mutable_explanation());
    }
    // The candidate's view of the same request, for telling why it would decide otherwise.
    if (serving->shadow && !in_experiment_arm) {
      const Allocation candidate =
          engine_.Decide(serving->shadow, agent, features, caches, DecisionUse::kShadow);
      const auto explanation = candidate.fallback
                                   ? std::nullopt
                                   : ExplainDecision(*serving->shadow, *lambdas, agent, features,
                                                     candidate.joint, candidate.proposed);
      if (explanation)
        FillExplanation(*explanation, *serving->policy->config,
                        response->mutable_shadow_explanation());
    }
  }
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* AllocatorService::ReportLoad(grpc::CallbackServerContext* context,
                                                       const grpc::ByteBuffer* body,
                                                       grpc::ByteBuffer* response_body) {
  const InHandler running(in_handlers_);
  const auto start = SteadyClock::now();
  v1::LoadReport request;
  grpc::Status status = ParseBody(*body, &request);
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT)
      metrics_.CountInvalid(RpcMethod::kReportLoad, "request");
  } else {
    status = DoReportLoad(*context, request);
    if (status.ok()) status = SerializeBody(v1::ReportLoadResponse(), response_body);
  }
  metrics_.ObserveRpc(RpcMethod::kReportLoad, status.error_code(), SecondsSince(start));
  return Finish(context, status);
}

grpc::Status AllocatorService::DoReportLoad(const grpc::CallbackServerContext& context,
                                            const v1::LoadReport& request) {
  const std::shared_ptr<const ServingSnapshot> serving = serving_.load();
  const AllotConfig& config = *serving->policy->config;
  // Who reports is checked before what: with mutual TLS, only allowed certificates set load.
  if (!MayReport(serving->server.tls, context)) {
    metrics_.CountLoadReport(ReportOutcome::kNotAllowed);
    return {grpc::StatusCode::PERMISSION_DENIED,
            "reporter: the caller's certificate identity is not in "
            "server.tls.reporter_identities"};
  }
  const ValidationResult valid =
      ValidateLoadReport(request, config, serving->server, clock_.NowMs());
  if (!valid.ok()) {
    metrics_.CountInvalid(RpcMethod::kReportLoad, valid.field);
    return valid.status;
  }
  LoadSample sample;
  sample.cpu_utilization = request.cpu_utilization();
  sample.qps = request.qps();
  sample.degradation_level = request.degradation_level();
  sample.timestamp_ms = request.timestamp_ms();
  // An unnamed reporter is told apart by its connection, so anonymous replicas do not overwrite
  // one another.
  const std::string reporter =
      request.reporter().empty() ? "peer:" + context.peer() : request.reporter();
  const ReportOutcome outcome = telemetry_.Report(request.module(), reporter, sample);
  metrics_.CountLoadReport(outcome);
  if (Refused(outcome)) return RefusedReport(outcome, request, config.telemetry.report_load);
  if (const auto latest = telemetry_.Latest(request.module())) {
    metrics_.SetModuleLoad(request.module(), latest->cpu_utilization, latest->qps,
                           static_cast<double>(latest->timestamp_ms) / 1000.0);
  }
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* AllocatorService::GetControlState(grpc::CallbackServerContext* context,
                                                            const grpc::ByteBuffer* body,
                                                            grpc::ByteBuffer* response_body) {
  const InHandler running(in_handlers_);
  const auto start = SteadyClock::now();
  v1::GetControlStateRequest request;
  grpc::Status status = ParseBody(*body, &request);
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT)
      metrics_.CountInvalid(RpcMethod::kGetControlState, "request");
  } else {
    v1::ControlState state;
    FillControlState(&state);
    status = SerializeBody(state, response_body);
  }
  metrics_.ObserveRpc(RpcMethod::kGetControlState, status.error_code(), SecondsSince(start));
  return Finish(context, status);
}

void AllocatorService::FillControlState(v1::ControlState* state) const {
  const std::shared_ptr<const ServingSnapshot> serving = serving_.load();
  const PolicySnapshot& policy = *serving->policy;
  const AllotConfig& config = *policy.config;
  const std::shared_ptr<const LambdaTable> lambdas = engine_.lambdas();
  const int64_t now_ms = clock_.NowMs();
  state->set_server_time_ms(now_ms);
  state->set_bundle_version(policy.scorer->version());
  state->set_config_version(config.version);
  state->set_telemetry_source(control_.telemetry_source());
  if (const auto budget = engine_.cache_budget()) state->set_cache_budget_mu(budget->mu());
  if (serving->shadow) FillShadowState(*serving, state->mutable_shadow());
  if (!serving->arms.empty()) FillArmStates(*serving, state);
  const std::vector<ModuleDecision> decisions = control_.last();
  for (size_t i = 0; i < config.modules.size(); ++i) {
    const ModuleConfig& m = config.modules[i];
    v1::ModuleState* out = state->add_modules();
    out->set_name(m.name);
    out->set_cpu_target(m.cpu_target);
    out->set_cpu_hard_limit(m.cpu_hard_limit);
    out->set_compute_price(lambdas->Get(m.name, m.initial_lambda));
    if (i < decisions.size()) {
      const ModuleDecision& d = decisions[i];
      out->set_controller(d.controller);
      out->set_predicted_cpu(d.predicted_cpu);
      for (double q : d.forecast) out->add_forecast_qps(q);
      out->set_stale(d.stale);
      out->set_max_cost_ms(d.max_cost_ms);
    }
    if (const auto load = telemetry_.Latest(m.name)) {
      v1::LoadSample* last = out->mutable_last_load();
      last->set_cpu_utilization(load->cpu_utilization);
      last->set_qps(load->qps);
      last->set_degradation_level(load->degradation_level);
      last->set_timestamp_ms(load->timestamp_ms);
      const double age_s = static_cast<double>(now_ms - load->timestamp_ms) / 1000.0;
      last->set_age_seconds(age_s);
      last->set_stale(age_s > config.lambda.stale_after_s);
    }
  }
  FillAgentSchemas(policy, state);
}

}  // namespace allot
