// The evaluation table: revenue vs the oracle at equal compute, compute vs budget, quality of
// control (mu, nu) per module and what cache reuse saved and cost; printed and as CSV.
#pragma once

#include <string>
#include <vector>

#include "sim/evaluation.h"
#include "sim/world.h"

namespace allot::sim {

struct ModuleColumns {
  double used = 0.0;  // core-ms of simulated requests
  double budget = 0.0;
  double used_pct = 0.0;  // of budget
  double mu = 0.0;        // mean(min(C, target) / target) over complete control periods
  double nu = 0.0;        // mean(max(C - target, 0) / target)
  double lambda = 0.0;    // mean over periods
};

struct TableRow {
  std::string policy;
  std::string mode;  // offline | online | hindsight
  double revenue = 0.0;
  double oracle_revenue = 0.0;  // the optimum at this row's compute
  double pct_of_oracle = 0.0;
  std::vector<ModuleColumns> modules;
  double cache_saved = 0.0;      // core-ms
  double cache_saved_pct = 0.0;  // of the compute the row would have used without reuse
  double cache_revenue_cost = 0.0;
  double cache_revenue_cost_pct = 0.0;  // of revenue
  int64_t requests = 0;
  int64_t timeouts = 0;
  int64_t fallbacks = 0;
};

struct Table {
  std::vector<std::string> modules;
  std::vector<TableRow> rows;
};

Table BuildTable(const World& world, const Evaluation& evaluation);
std::string FormatTable(const Table& table);
std::string FormatCsv(const Table& table);
// Per row that reused cached outputs, per reused stage (named by its agent): reuses, core-ms
// saved and revenue lost against recomputing, and for a policy that estimates its reuses the
// loss it predicted and the share of the fresh value it expected to keep against the share kept.
std::string FormatReuseBreakdown(const World& world, const Evaluation& evaluation);

}  // namespace allot::sim
