// Online evaluation rows built from a scorer and one of the production lambda controllers.
#pragma once

#include <memory>
#include <string>

#include "policy/lambda_controller.h"
#include "policy/scorer.h"
#include "sim/evaluation.h"

namespace allot::sim {

// An online row: the production decision path around `scorer`, lambdas from `controller` every
// control period, starting from `context.dcaf_lambdas`. Bundle rows ("bundle+pid", "bundle+mpc")
// are this with a learned scorer.
EvalRow ControlledRow(const EvalContext& context, std::string name,
                      std::shared_ptr<const ActionScorer> scorer,
                      std::unique_ptr<LambdaController> controller);

// A hindsight row: the decision path around `scorer` held at every module's target window by
// window (context.window_s), at the lambdas that meet each window's share of the budget. The most
// a controller that holds its targets can make of this scorer; oracle-windowed is the same with
// the true values.
EvalRow WindowedRow(const EvalContext& context, std::string name,
                    std::shared_ptr<const ActionScorer> scorer);

// analytic+pid and analytic+mpc: the analytic model under the PID and MPC controllers.
RowFactory AnalyticControllerRows();

// <algorithm>+dcaf (offline: bisection on the bundle's own scores, outcomes from the truth),
// <algorithm>+windowed (WindowedRow), <algorithm>+pid and <algorithm>+mpc for a learned bundle (the
// name is the bundle's algorithm, the last part of its version).
RowFactory BundleControllerRows(std::shared_ptr<const ActionScorer> scorer);

}  // namespace allot::sim
