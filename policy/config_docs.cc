// What each config key is for and when to change it. Keys are paths as the parser reads them;
// config_reference_test fails on a key read but not documented here, or documented but not read.
#include "policy/config_reference.h"

namespace allot {

const std::map<std::string, std::string>& ConfigKeyDocs() {
  static const std::map<std::string, std::string> docs = {
      // models
      {"models", "Where learned model bundles come from and when one may serve."},
      {"models.dir",
       "Directory of bundles (one subdirectory per version, the newest valid one serves)."},
      {"models.poll_s", "How often models.dir is checked for a newer bundle (0: only at start)."},
      {"models.serve_analytic",
       "With no servable bundle, answer from the analytic model below (ready) instead of "
       "reporting NOT_SERVING. Turn off when the analytic model is not calibrated for your chain."},
      {"models.min_offpolicy_ratio",
       "Refuse a bundle unless the 95% lower bound of its doubly robust off-policy estimate of "
       "net return per request (manifest offpolicy.net.dr, on its validation logs) is at least "
       "this fraction of the logging policy's; a bundle with no estimate is refused too. 0: no "
       "floor. With a small effective sample size the bound is loose and the floor refuses: "
       "log more exploration, or ramp through a shadow instead."},
      // experiments
      {"experiments", "Candidates observed beside the serving policy before they serve."},
      {"experiments.shadow_bundle",
       "A bundle directory (relative to models.dir, or absolute) or \"analytic\" that decides in "
       "shadow: on a sample of calls, after the answer is sent, at the serving prices; counted "
       "in allot_shadow_decisions_total and GetControlState.shadow, never returned. \"\": none."},
      {"experiments.shadow_sample_rate",
       "Share of Allocate calls the shadow also decides, picked by a hash of request_id (every "
       "stage and replica shadows the same requests). Each costs one more scoring on the "
       "handler thread after the answer."},
      {"experiments.arms",
       "Experiment arms besides the main one (the serving bundle). A request is in an arm by a "
       "hash of its user_id (no user_id: main), so a user stays in one arm; AllocateResponse.arm "
       "names it, for joining with your revenue logs. Each arm decides with its bundle at its "
       "own price of compute, set by its own controller from its share of each module's load. "
       "Arms are added, reweighted or removed by a reload; an arm whose bundle cannot load fails "
       "the reload."},
      {"experiments.arms[].name", "Required, unique, not \"main\": the arm label of its metrics."},
      {"experiments.arms[].bundle",
       "Required: a bundle directory (relative to models.dir, or absolute) or \"analytic\". "
       "Subject to models.min_offpolicy_ratio, as it serves."},
      {"experiments.arms[].weight",
       "Share of users in the arm, in (0, 1); the weights sum to less than 1 and the main arm "
       "keeps the rest. Arms own consecutive ranges of the hash in config order, so changing "
       "one arm's weight also moves the users of the arms after it: add new arms at the end, "
       "and grow the last one."},
      // lambda
      {"lambda", "Bounds and safety of the price of compute (lambda, revenue per core-ms)."},
      {"lambda.min", "Lowest price the controller may set."},
      {"lambda.max",
       "Highest price the controller may set. Keep it above the price at which your cheapest "
       "options win for every request, or the CPU target cannot be held at peak."},
      {"lambda.max_step",
       "Largest absolute change per control period (lets lambda leave zero). The limit is "
       "max(max_step, max_step_ratio * lambda)."},
      {"lambda.max_step_ratio",
       "Largest relative change per control period (lets lambda cross orders of magnitude)."},
      {"lambda.safe_value",
       "Price decayed to while telemetry is stale: choose one that keeps the modules safe at "
       "peak traffic."},
      {"lambda.stale_after_s",
       "A module whose newest load sample is older than this is stale: its lambda is held, then "
       "decays to safe_value."},
      {"lambda.decay_half_life_s", "Half-life of the decay towards safe_value while stale."},
      {"lambda.consensus",
       "Replicas with modules[].price_query: each period a replica first moves this fraction of "
       "the way (in log) from its own price to the cluster's, then takes its controller's step "
       "from there. PID replicas read the same telemetry and take the same steps, so their "
       "prices converge (a replica that joined a step late comes back within a few periods); "
       "the MPC plans each price afresh from its own sample of the calls, so it is barely "
       "pulled. Experiment arms keep their own prices. 0 turns it off."},
      // controller
      {"controller", "The per-module lambda controller and its traffic forecast."},
      {"controller.kind",
       "mpc (model-predictive, MaRCA's balancer; PID takes over while its predictions are poor) "
       "or pid."},
      {"controller.period_s", "Control period: lambda is updated this often."},
      {"controller.mpc.horizon", "MPC look-ahead in periods."},
      {"controller.mpc.alpha", "MPC discount of later periods in the objective."},
      {"controller.mpc.beta",
       "MPC damping of load changes, applied only at or above critical_load: higher is smoother "
       "and slower near the target."},
      {"controller.mpc.critical_load", "CPU fraction above which MPC damps load changes (beta)."},
      {"controller.mpc.samples", "MPC random rate-limited lambda paths tried per period."},
      {"controller.pid.kp", "PID proportional gain (on log lambda and relative CPU error)."},
      {"controller.pid.ki", "PID integral gain, per second."},
      {"controller.pid.kd", "PID derivative gain, seconds."},
      {"controller.reservoir_size",
       "Scored requests kept for the controller to re-decide at candidate prices (a ring of the "
       "newest). It holds reservoir_size x sample_every requests of traffic: at Q calls/s per "
       "replica, that many / Q seconds. Size it to about one minute of traffic: longer lags a "
       "change of traffic mix, shorter makes the predicted cost noisy."},
      {"controller.sample_every",
       "Record one scored call in this many into the reservoir. Raise it with QPS so the "
       "reservoir still spans about a minute without growing; each record copies the call's "
       "scores."},
      {"controller.mpc.load_lag",
       "MPC load model: cpu[t+1] = load_lag * cpu[t] + (1 - load_lag) * k * qps * cost(lambda). "
       "Higher for modules whose CPU responds slowly (queues, autoscaling)."},
      {"controller.mpc.calibration_alpha",
       "Smoothing of k (CPU per core-ms per second), learned online from telemetry."},
      {"controller.mpc.fallback_error",
       "MPC hands a module to PID while its smoothed relative prediction error exceeds this."},
      {"controller.mpc.overshoot_budget",
       "MPC aims below the target by a back-off so that the load it cannot predict overshoots "
       "the target by this much on average (fraction of target). Lower is safer, costs compute."},
      {"controller.mpc.error_window", "Prediction errors (periods) the back-off is judged from."},
      {"controller.mpc.state_gain",
       "MPC state observer: a plan starts from predicted + state_gain * (measured - predicted)."},
      {"controller.mpc.max_backoff", "Largest MPC back-off below the target (fraction of target)."},
      {"controller.mpc.move_penalty",
       "MPC move suppression: weight of each period's squared change of log lambda against the "
       "squared load error measured in units of the load's unpredictable scatter (from the "
       "recent one-period prediction errors). 0 chases every measured deviation; higher steadies "
       "lambda against noise, and the noisier the load the more. Predictable load changes "
       "(traffic the forecast sees) are followed as fast as before."},
      {"controller.lambda_grid",
       "Lambdas per period the cost curves are evaluated at; the MPC's constant-lambda paths."},
      {"controller.mpc",
       "The MPC controller (kind: mpc): load model, objective, search, back-off."},
      {"controller.pid", "The PID controller (kind: pid, and the MPC's fallback)."},
      {"controller.forecast", "The traffic forecast the MPC plans over."},
      {"controller.mpc.seed", "Seed of the MPC's random shooting (deterministic runs)."},
      {"controller.forecast.day_length_s",
       "Length of the traffic cycle the forecast learns (86400: a day). Shorter only in "
       "compressed simulations."},
      {"controller.forecast.slots",
       "Time slots per cycle in the forecast's seasonal profile (96: 15 minutes a slot)."},
      {"controller.forecast.level_alpha", "Holt-Winters level smoothing of the QPS forecast."},
      {"controller.forecast.trend_beta", "Holt-Winters trend smoothing."},
      {"controller.forecast.seasonal_gamma", "Holt-Winters seasonal profile smoothing."},
      // telemetry
      {"telemetry", "Where the controller reads each module's CPU load and QPS."},
      {"telemetry.report_load",
       "Trust in ReportLoad calls (source: report_load): who may report, how often, how fresh."},
      {"telemetry.prometheus", "source: prometheus: where to query and how long to wait."},
      {"telemetry.source",
       "report_load (stages call ReportLoad; each replica sees its reporters) or prometheus "
       "(every replica queries the same numbers: modules[].cpu_query and qps_query)."},
      {"telemetry.prometheus.url", "Prometheus base URL for source: prometheus."},
      {"telemetry.prometheus.query_timeout_s", "Timeout of one Prometheus query."},
      {"telemetry.prometheus.cpu_query",
       "Default of modules[].cpu_query, with {module} replaced by the module's name, e.g. "
       "node_cpu:ratio{service=\"{module}\"}. A module's own query wins."},
      {"telemetry.prometheus.qps_query",
       "Default of modules[].qps_query, with {module} replaced by the module's name."},
      {"telemetry.prometheus.price_query",
       "Default of modules[].price_query, with {module} replaced by the module's name, e.g. "
       "allot:module_price:avg{module=\"{module}\"}."},
      {"telemetry.report_load.reporter_window_s",
       "A reporter counts while its newest report is this recent; a module's load is the median "
       "over its counting reporters."},
      {"telemetry.report_load.max_future_skew_s",
       "Reports stamped further ahead of this server are refused."},
      {"telemetry.report_load.max_reporters",
       "Live reporters per module; new names are refused beyond it."},
      {"telemetry.report_load.reports_per_s",
       "Per reporter, sustained (bursts of twice that pass)."},
      {"telemetry.report_load.reporters",
       "Allow-list of reporter names (empty: any). Set it in production: see deploy/README.md."},
      // value_model
      {"value_model",
       "The analytic user value: exp(bias + sum of weight x feature). It serves when no bundle "
       "does, and its buckets are part of the agents' observation."},
      {"value_model.bias", "Log-scale intercept of the analytic value."},
      {"value_model.bucket_bounds",
       "Upper bounds of the value buckets (N bounds, N+1 buckets), ascending; the analytic "
       "options' gain lists have one entry per bucket."},
      {"value_model.weights", "Feature name to log-scale weight; features not listed weigh 0."},
      // modules
      {"modules",
       "Required: the clusters whose CPU is priced. One lambda and one controller each."},
      {"modules[].name", "Required, unique. Agents and cache stages refer to it."},
      {"modules[].cpu_target",
       "Fraction of the module's CPU the controller holds on average. Leave headroom for "
       "forecast error and bursts."},
      {"modules[].cpu_hard_limit",
       "Above this fraction per-request cost caps apply (the overload backstop); above "
       "cpu_target."},
      {"modules[].initial_lambda",
       "Price at start, before the controller has telemetry. A price near the one it settles at "
       "in steady traffic shortens the first minutes."},
      {"modules[].cpu_query", "PromQL returning the module's CPU fraction (source: prometheus)."},
      {"modules[].price_query",
       "telemetry.source prometheus: PromQL for the price the module's replicas use now, such "
       "as the recording rule deploy/prometheus ships: "
       "allot:module_price:avg{namespace=\"allot\", module=\"rank\"}. A replica that starts or "
       "restarts takes it "
       "(within lambda.min/max) instead of initial_lambda, so it rejoins at the cluster's price. "
       "A failed query is logged and the replica starts at initial_lambda."},
      {"modules[].qps_query", "PromQL returning the module's requests/s (source: prometheus)."},
      // agents
      {"agents",
       "Required: one per stage that calls Allocate. Its decisions define its joint action "
       "space, whose index is the training logs' joint_action."},
      {"agents[].name", "Required, unique: Allocate's agent field."},
      {"agents[].module", "Required: the module whose compute this agent's choices spend."},
      {"agents[].max_cost_ms",
       "Per-request cap on the agent's predicted cost in core-ms (0: none): options above it are "
       "not chosen."},
      {"agents[].features",
       "Required: feature names in the order Allocate's features list carries them. Changing "
       "the list changes the schema: bundles trained for the old one stop serving."},
      {"agents[].feature_bounds", "Optional trusted ranges of features."},
      {"agents[].feature_bounds[].feature", "A name from the agent's features."},
      {"agents[].feature_bounds[].min", "Lowest trusted value."},
      {"agents[].feature_bounds[].max", "Highest trusted value."},
      {"agents[].feature_bounds[].action",
       "clip (into the range before scoring) or reject (INVALID_ARGUMENT naming the feature)."},
      {"agents[].decisions",
       "Required: the agent's decisions, in joint-index order (the last varies fastest)."},
      {"agents[].decisions[].name", "Required, unique within the agent."},
      {"agents[].decisions[].kind",
       "link (a set of channels: bitmask of options), switch (off/on) or queue (one length)."},
      {"agents[].decisions[].min_selected", "link only: fewest channels per request."},
      {"agents[].decisions[].max_selected", "link only: most channels per request (0: all)."},
      {"agents[].decisions[].safe_default",
       "Required: the option labels answered when no decision can be made (link: channels; "
       "switch and queue: one label). Clients fall back to it too."},
      {"agents[].decisions[].options",
       "Required unless a queue has a range: the options (link: channels)."},
      {"agents[].decisions[].options[].name", "link and switch: the option's label."},
      {"agents[].decisions[].options[].length", "queue: the queue length (its label)."},
      {"agents[].decisions[].options[].gain",
       "Analytic model only: the option's value uplift per value bucket."},
      {"agents[].decisions[].options[].cost_ms",
       "Analytic model only: core-ms the option costs in the agent's module."},
      {"agents[].decisions[].options[].cost_multiplier",
       "Analytic model only: scales the agent's whole cost when chosen (a heavier model)."},
      {"agents[].decisions[].options[].module_cost_ms",
       "Analytic model only: core-ms the option causes in later modules, by module name."},
      {"agents[].decisions[].range",
       "queue only, instead of options: a continuous queue of every length from min to max in "
       "steps of granularity. It expands to one option per length (labels are the lengths), and "
       "GetControlState's schema describes the range."},
      {"agents[].decisions[].range.min", "Required: the shortest length."},
      {"agents[].decisions[].range.max", "Required: the longest length, > min."},
      {"agents[].decisions[].range.granularity",
       "Step between lengths; must divide max - min (at most 1024 lengths)."},
      {"agents[].decisions[].range.fixed_cost_ms",
       "Analytic model only: core-ms a request costs at any length."},
      {"agents[].decisions[].range.cost_per_item_ms",
       "Analytic model only: core-ms per queued item in the agent's module (cost = fixed + per "
       "item x length, so it never falls with length)."},
      {"agents[].decisions[].range.module_cost_per_item_ms",
       "Analytic model only: core-ms per queued item in later modules, by module name."},
      {"agents[].decisions[].range.gain_curve",
       "Required: the analytic value curve, points in increasing length from min to max; the "
       "gain is linear in length between points."},
      {"agents[].decisions[].range.gain_curve[].length", "The point's length."},
      {"agents[].decisions[].range.gain_curve[].gain",
       "Analytic model only: value uplift per value bucket at that length."},
      // cache_reuse
      {"cache_reuse", "ComRecycle: reuse a repeat request's cached stage output."},
      {"cache_reuse.enabled", "Consider reuse when a request describes cached outputs."},
      {"cache_reuse.max_age_s", "Older cached outputs are never reused."},
      {"cache_reuse.budget", "The budget mode's settings (mode: budget)."},
      {"cache_reuse.mode",
       "lambda (reuse when the priced compute saved exceeds the value lost) or budget (save the "
       "most compute while the value lost stays under decay_budget)."},
      {"cache_reuse.budget.decay_budget", "budget mode: largest share of value reuse may lose."},
      {"cache_reuse.budget.window_s",
       "budget mode: the multiplier is solved over each window and used for the next."},
      {"cache_reuse.stages", "Required when enabled: the cacheable stages, in chain order."},
      {"cache_reuse.stages[].stage", "recall, prerank or rank."},
      {"cache_reuse.stages[].module",
       "The module whose compute reusing this stage saves (with every earlier stage's)."},
      {"cache_reuse.stages[].half_life_s",
       "Config rule: a cached output keeps 0.5^(age / half_life_s) of its value (a learned "
       "reuse model replaces it when it fits better)."},
      {"cache_reuse.stages[].stage_cost_ms", "Core-ms this stage costs a request."},
  };
  return docs;
}

}  // namespace allot
