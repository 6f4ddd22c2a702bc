// Counting and comparing means; thresholds are named where they are used.
#include "models/policy_checks.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace allot::models {
namespace {

constexpr double kCollapsedShare = 0.95;  // one action for nearly every request
constexpr double kSpreadLogged = 0.80;    // the logging policy really chose among several
constexpr int64_t kMinRows = 30;          // rows behind a logged mean worth comparing

std::string Percent(double share) {
  char text[16];
  std::snprintf(text, sizeof(text), "%.1f%%", 100 * share);
  return text;
}

}  // namespace

CollapseCheck DetectCollapse(const std::string& agent, std::span<const int64_t> chosen,
                             std::span<const int64_t> logged, std::span<const double> logged_net,
                             int64_t actions, const std::function<std::string(int64_t)>& label) {
  CollapseCheck out;
  if (chosen.empty() || actions <= 0) return out;
  const size_t n = static_cast<size_t>(actions);
  std::vector<int64_t> policy_count(n, 0), logged_count(n, 0);
  std::vector<double> net_sum(n, 0.0);
  for (int64_t a : chosen) ++policy_count[static_cast<size_t>(a)];
  for (size_t r = 0; r < logged.size(); ++r) {
    ++logged_count[static_cast<size_t>(logged[r])];
    net_sum[static_cast<size_t>(logged[r])] += logged_net[r];
  }
  const auto top = std::max_element(policy_count.begin(), policy_count.end());
  out.top = top - policy_count.begin();
  out.top_share = static_cast<double>(*top) / static_cast<double>(chosen.size());
  out.logged_top_share =
      logged.empty()
          ? 0.0
          : static_cast<double>(*std::max_element(logged_count.begin(), logged_count.end())) /
                static_cast<double>(logged.size());
  out.distinct =
      std::count_if(policy_count.begin(), policy_count.end(), [](int64_t c) { return c > 0; });
  if (out.top_share < kCollapsedShare || out.logged_top_share >= kSpreadLogged) return out;

  const size_t t = static_cast<size_t>(out.top);
  const bool top_supported = logged_count[t] >= kMinRows;
  const double top_mean = top_supported ? net_sum[t] / logged_count[t] : 0.0;
  int64_t better = -1;
  double better_mean = top_mean;
  for (size_t a = 0; a < n; ++a) {
    if (a == t || logged_count[a] < kMinRows) continue;
    const double mean = net_sum[a] / logged_count[a];
    if (mean > better_mean) {
      better_mean = mean;
      better = static_cast<int64_t>(a);
    }
  }
  if (top_supported && better < 0) return out;  // the logs agree that this action pays best
  out.warning = "agent " + agent + ": policy collapse: at the logged prices the model chooses '" +
                label(out.top) + "' for " + Percent(out.top_share) +
                " of validation requests, where the logging policy's most common choice had " +
                Percent(out.logged_top_share);
  if (!top_supported) {
    out.warning += "; the logs hardly ever chose it";
  } else {
    char means[96];
    std::snprintf(means, sizeof(means), " (%.4g vs %.4g per request, net of priced compute)",
                  better_mean, top_mean);
    out.warning += "; in the logs '" + label(better) + "' paid more" + means;
  }
  return out;
}

}  // namespace allot::models
