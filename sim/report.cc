// Table arithmetic and formatting; numbers are printed with fixed precision so identical runs
// give byte-identical output.
#include "sim/report.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "sim/control_quality.h"

namespace allot::sim {
namespace {

std::string Fixed(double v, int precision) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", precision, v);
  return buf;
}

std::string Pad(const std::string& s, size_t width, bool left = false) {
  if (s.size() >= width) return s;
  return left ? s + std::string(width - s.size(), ' ') : std::string(width - s.size(), ' ') + s;
}

}  // namespace

Table BuildTable(const World& world, const Evaluation& ev) {
  Table table;
  const AllotConfig& config = world.config();
  std::vector<size_t> modules;  // the modules the chain runs on, in config order
  for (size_t m = 0; m < world.num_modules(); ++m) {
    if (world.cores(m) > 0) {
      modules.push_back(m);
      table.modules.push_back(config.modules[m].name);
    }
  }
  for (size_t i = 0; i < ev.runs.size(); ++i) {
    const RunResult& run = ev.runs[i];
    TableRow row;
    row.policy = run.name;
    row.mode = run.hindsight ? "hindsight" : run.online ? "online" : "offline";
    row.revenue = run.revenue;
    row.oracle_revenue = ev.oracle_equal_revenue[i];
    row.pct_of_oracle = row.oracle_revenue > 0 ? 100.0 * run.revenue / row.oracle_revenue : 0.0;
    double total_used = 0.0;
    for (size_t m : modules) {
      ModuleColumns c;
      c.used = run.cost[m];
      c.budget = ev.budget[m];
      c.used_pct = c.budget > 0 ? 100.0 * c.used / c.budget : 0.0;
      const QualityOfControl q =
          MeasureControl(run, m, world.target(m), [](auto&) { return true; });
      c.mu = q.mu;
      c.nu = q.nu;
      c.lambda = MeanLambda(run, m);
      total_used += c.used;
      row.modules.push_back(c);
    }
    row.cache_saved = run.cache_saved_cost;
    row.cache_saved_pct = total_used + run.cache_saved_cost > 0
                              ? 100.0 * run.cache_saved_cost / (total_used + run.cache_saved_cost)
                              : 0.0;
    row.cache_revenue_cost = run.cache_revenue_cost;
    row.cache_revenue_cost_pct =
        run.revenue > 0 ? 100.0 * run.cache_revenue_cost / run.revenue : 0.0;
    row.requests = run.requests;
    row.timeouts = run.timeouts;
    row.fallbacks = run.fallbacks;
    table.rows.push_back(std::move(row));
  }
  return table;
}

std::string FormatTable(const Table& t) {
  std::ostringstream out;
  const size_t name_width =
      std::accumulate(t.rows.begin(), t.rows.end(), size_t{6},
                      [](size_t w, const TableRow& r) { return std::max(w, r.policy.size()); });
  // Two header lines: module groups, then columns.
  std::string group = Pad("", name_width + 1 + 10 + 12 + 9);
  std::string head = Pad("policy", name_width, true) + " " + Pad("mode", 10, true) +
                     Pad("revenue", 12) + Pad("%oracle", 9);
  for (const std::string& m : t.modules) {
    group += " | " + Pad(m, 27, true);
    head += " | " + Pad("used%", 6) + Pad("mu%", 6) + Pad("nu%", 6) + Pad("lambda", 9);
  }
  group += " | cache";
  head += " | " + Pad("saved%", 7) + Pad("rev-cost%", 10);
  out << group << "\n" << head << "\n";
  for (const TableRow& r : t.rows) {
    out << Pad(r.policy, name_width, true) << " " << Pad(r.mode, 10, true)
        << Pad(Fixed(r.revenue, 1), 12) << Pad(Fixed(r.pct_of_oracle, 2), 9);
    for (const ModuleColumns& c : r.modules) {
      out << " | " << Pad(Fixed(c.used_pct, 1), 6) << Pad(Fixed(100 * c.mu, 1), 6)
          << Pad(Fixed(100 * c.nu, 2), 6) << Pad(Fixed(c.lambda, 4), 9);
    }
    out << " | " << Pad(Fixed(r.cache_saved_pct, 2), 7)
        << Pad(Fixed(r.cache_revenue_cost_pct, 2), 10) << "\n";
  }
  return out.str();
}

std::string FormatCsv(const Table& t) {
  std::ostringstream out;
  out << "policy,mode,revenue,oracle_revenue_equal_compute,pct_of_oracle";
  for (const std::string& m : t.modules) {
    out << "," << m << "_used_core_ms," << m << "_budget_core_ms," << m << "_used_pct_budget," << m
        << "_mu," << m << "_nu," << m << "_lambda_mean";
  }
  out << ",cache_saved_core_ms,cache_saved_pct,cache_revenue_cost,cache_revenue_cost_pct,requests,"
         "timeouts,fallbacks\n";
  for (const TableRow& r : t.rows) {
    out << r.policy << "," << r.mode << "," << Fixed(r.revenue, 4) << ","
        << Fixed(r.oracle_revenue, 4) << "," << Fixed(r.pct_of_oracle, 4);
    for (const ModuleColumns& c : r.modules) {
      out << "," << Fixed(c.used, 3) << "," << Fixed(c.budget, 3) << "," << Fixed(c.used_pct, 4)
          << "," << Fixed(c.mu, 6) << "," << Fixed(c.nu, 6) << "," << Fixed(c.lambda, 6);
    }
    out << "," << Fixed(r.cache_saved, 3) << "," << Fixed(r.cache_saved_pct, 4) << ","
        << Fixed(r.cache_revenue_cost, 4) << "," << Fixed(r.cache_revenue_cost_pct, 4) << ","
        << r.requests << "," << r.timeouts << "," << r.fallbacks << "\n";
  }
  return out.str();
}

std::string FormatReuseBreakdown(const World& world, const Evaluation& ev) {
  std::ostringstream out;
  out << "\ncache reuse by reused stage: reuses, core-ms saved, revenue lost against recomputing"
         " (predicted), share of the fresh value kept (predicted)\n";
  for (const RunResult& run : ev.runs) {
    if (run.reuses == 0) continue;
    out << "  " << Pad(run.name, 20, true);
    for (int s = 0; s < kNumStages; ++s) {
      const ReuseTally& t = run.reuse_by_stage[static_cast<size_t>(s)];
      if (t.reuses == 0) continue;
      const std::string& stage = world.config().agents[world.layout().at_stage(s).agent].name;
      const double kept =
          t.counterfactual_revenue > 0 ? 1.0 - t.revenue_cost / t.counterfactual_revenue : 0.0;
      const bool predicted = t.estimated == t.reuses && t.predicted_fresh > 0;
      out << " | " << stage << " " << t.reuses << " " << Fixed(t.saved_cost, 0) << " "
          << Fixed(t.revenue_cost, 1);
      if (predicted) out << " (" << Fixed(t.predicted_fresh - t.predicted_kept, 1) << ")";
      out << " " << Fixed(kept, 3);
      if (predicted) out << " (" << Fixed(t.predicted_kept / t.predicted_fresh, 3) << ")";
    }
    out << "\n";
  }
  return out.str();
}

}  // namespace allot::sim
