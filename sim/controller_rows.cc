// Row factories for the controllers in policy/.
#include "sim/controller_rows.h"

#include "policy/analytic_scorer.h"
#include "policy/mpc_controller.h"
#include "policy/pid_controller.h"
#include "sim/policies.h"

namespace allot::sim {

EvalRow ControlledRow(const EvalContext& context, std::string name,
                      std::shared_ptr<const ActionScorer> scorer,
                      std::unique_ptr<LambdaController> controller) {
  EvalRow row;
  row.name = name;
  row.online = true;
  row.policy = std::make_unique<ScorerPolicy>(std::move(name), context.config, std::move(scorer));
  row.controller = std::move(controller);
  row.lambdas = context.dcaf_lambdas;
  return row;
}

EvalRow WindowedRow(const EvalContext& context, std::string name,
                    std::shared_ptr<const ActionScorer> scorer) {
  std::vector<std::vector<double>> lambdas =
      TuneWindowedLambdas(context.world, context.requests, context.duration_s, context.window_s,
                          context.period_s, context.scale, scorer);
  EvalRow row;
  row.name = name;
  row.hindsight = true;
  row.lambdas = lambdas.front();
  row.policy = std::make_unique<WindowedLambdaPolicy>(
      std::make_unique<ScorerPolicy>(std::move(name), context.config, std::move(scorer)),
      context.window_s, std::move(lambdas));
  return row;
}

RowFactory AnalyticControllerRows() {
  return [](const EvalContext& context) {
    std::vector<EvalRow> rows;
    const auto scorer = std::make_shared<AnalyticScorer>(*context.config);
    rows.push_back(ControlledRow(context, "analytic+pid", scorer,
                                 std::make_unique<PidController>(*context.config)));
    rows.push_back(ControlledRow(context, "analytic+mpc", scorer,
                                 std::make_unique<MpcController>(*context.config)));
    return rows;
  };
}

RowFactory BundleControllerRows(std::shared_ptr<const ActionScorer> scorer) {
  return [scorer](const EvalContext& context) {
    const std::string& version = scorer->version();
    const std::string name = version.substr(version.rfind('-') + 1);
    std::vector<EvalRow> rows;
    // Offline: the bundle's own budget-meeting lambdas, outcomes from the truth.
    EvalRow offline;
    offline.name = name + "+dcaf";
    offline.policy = std::make_unique<ScorerPolicy>(offline.name, context.config, scorer);
    offline.lambdas = TuneDcafLambdas(context.world, context.requests, context.budget,
                                      context.period_s, context.scale, scorer);
    rows.push_back(std::move(offline));
    if (context.window_s > 0 && context.duration_s > 0)
      rows.push_back(WindowedRow(context, name + "+windowed", scorer));
    rows.push_back(ControlledRow(context, name + "+pid", scorer,
                                 std::make_unique<PidController>(*context.config)));
    rows.push_back(ControlledRow(context, name + "+mpc", scorer,
                                 std::make_unique<MpcController>(*context.config)));
    return rows;
  };
}

}  // namespace allot::sim
