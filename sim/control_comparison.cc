// Runs the analytic scorer under each production controller through the same held-out stream
// (common random numbers for traffic and CPU noise) and measures quality of control.
#include "sim/control_comparison.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "policy/lambda_controller.h"
#include "sim/controller_rows.h"
#include "sim/evaluation.h"

namespace allot::sim {
namespace {

std::string Percent(double fraction, int precision) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", precision, 100.0 * fraction);
  return buf;
}

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

}  // namespace

bool InPromotion(const World& world, double start_s) {
  const double hour =
      world.world().time.start_hour + start_s * world.world().compression() / 3600.0;
  const double day = std::floor(hour / 24.0);
  return world.traffic().Spike(static_cast<int>(day), hour - 24.0 * day) > 1.0;
}

ControlComparison CompareControllers(const World& world, const ControlOptions& options) {
  const HeldOutStream held = MakeHeldOutStream(world, options.seed, options.requests);
  ControlComparison out;
  out.duration_s = held.duration_s;
  const std::vector<double> budget = world.Budgets(held.duration_s, held.scale);
  std::vector<size_t> modules;
  for (size_t m = 0; m < world.num_modules(); ++m) {
    if (world.cores(m) > 0) {
      modules.push_back(m);
      out.modules.push_back(world.config().modules[m].name);
    }
  }
  const RunOptions base = EvaluationRunOptions(world, held.scale, options.seed);
  const std::vector<double> dcaf =
      TuneDcafLambdas(world, held.requests, budget, base.period_s, held.scale);
  auto config = std::make_shared<const AllotConfig>(world.config());
  const EvalContext context{world, config,        held.requests, budget,      dcaf,
                            dcaf,  base.period_s, held.scale,    options.seed};
  auto in_promotion = [&](const PeriodRecord& p) { return InPromotion(world, p.start_s); };
  auto outside = [&](const PeriodRecord& p) { return !InPromotion(world, p.start_s); };
  auto all = [](const PeriodRecord&) { return true; };
  for (EvalRow& row : AnalyticControllerRows()(context)) {
    const RunResult run = RunRow(world, held.requests, row, base);
    ControlRow r;
    r.controller = row.controller->name();
    for (size_t m : modules) {
      const double target = world.target(m);
      r.all.push_back(MeasureControl(run, m, target, all));
      r.spikes.push_back(MeasureControl(run, m, target, in_promotion));
      r.rest.push_back(MeasureControl(run, m, target, outside));
      r.mean_lambda.push_back(MeanLambda(run, m));
    }
    out.spike_periods = r.spikes.empty() ? 0 : r.spikes[0].periods;
    out.rows.push_back(std::move(r));
  }
  return out;
}

std::string FormatControlComparison(const ControlComparison& c) {
  std::ostringstream out;
  char head[160];
  std::snprintf(head, sizeof(head),
                "closed loop, analytic scorer, %.0f simulated s; mu%% / nu%% per module: all "
                "periods | the %d in promotions | the rest\n",
                c.duration_s, c.spike_periods);
  out << head;
  out << Pad("controller", 10);
  for (const std::string& m : c.modules) out << " | " << Pad(m, 29);
  out << "\n";
  for (const ControlRow& r : c.rows) {
    out << Pad(r.controller, 10);
    for (size_t i = 0; i < c.modules.size(); ++i) {
      auto cell = [](const QualityOfControl& q) {
        return Percent(q.mu, 1) + "/" + Percent(q.nu, 2);
      };
      out << " | " << Pad(cell(r.all[i]), 10) << Pad(cell(r.spikes[i]), 11)
          << Pad(cell(r.rest[i]), 10);
    }
    out << "\n";
  }
  return out.str();
}

std::string FormatControlComparisonCsv(const ControlComparison& c) {
  std::ostringstream out;
  out << "controller,module,periods,mu,nu,spike_periods,spike_mu,spike_nu,rest_mu,rest_nu,"
         "mean_lambda\n";
  for (const ControlRow& r : c.rows) {
    for (size_t i = 0; i < c.modules.size(); ++i) {
      char line[256];
      std::snprintf(line, sizeof(line), "%s,%s,%d,%.6f,%.6f,%d,%.6f,%.6f,%.6f,%.6f,%.6f\n",
                    r.controller.c_str(), c.modules[i].c_str(), r.all[i].periods, r.all[i].mu,
                    r.all[i].nu, r.spikes[i].periods, r.spikes[i].mu, r.spikes[i].nu, r.rest[i].mu,
                    r.rest[i].nu, r.mean_lambda[i]);
      out << line;
    }
  }
  return out.str();
}

}  // namespace allot::sim
