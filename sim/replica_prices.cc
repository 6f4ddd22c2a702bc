#include "sim/replica_prices.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace allot::sim {
namespace {

// The value at quantile q of sorted values (nearest rank).
double Quantile(const std::vector<double>& sorted, double q) {
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

bool Answered(const PricePoll& poll, size_t replica) {
  return !poll.lambda[replica].empty() && !std::isnan(poll.lambda[replica][0]);
}

}  // namespace

PriceSpread SpreadOf(const std::vector<PricePoll>& polls, size_t module, double from_s) {
  std::vector<double> spreads;
  for (const PricePoll& poll : polls) {
    if (poll.sim_s < from_s) continue;
    double lo = INFINITY;
    double hi = -INFINITY;
    int answered = 0;
    for (const std::vector<double>& replica : poll.lambda) {
      if (module >= replica.size() || std::isnan(replica[module])) continue;
      lo = std::min(lo, replica[module]);
      hi = std::max(hi, replica[module]);
      ++answered;
    }
    if (answered >= 2 && lo > 0) spreads.push_back(hi / lo - 1.0);
  }
  PriceSpread out;
  out.periods = spreads.size();
  if (spreads.empty()) return out;
  std::sort(spreads.begin(), spreads.end());
  out.median = Quantile(spreads, 0.5);
  out.p90 = Quantile(spreads, 0.9);
  out.max = spreads.back();
  return out;
}

std::vector<Rejoin> FindRejoins(const std::vector<PricePoll>& polls) {
  std::vector<Rejoin> out;
  for (size_t i = 1; i < polls.size(); ++i) {
    const PricePoll& poll = polls[i];
    for (size_t r = 0; r < poll.lambda.size(); ++r) {
      if (!Answered(poll, r) || r >= polls[i - 1].lambda.size() || Answered(polls[i - 1], r))
        continue;
      const bool answered_before =
          std::any_of(polls.begin(), polls.begin() + static_cast<std::ptrdiff_t>(i),
                      [&](const PricePoll& p) { return r < p.lambda.size() && Answered(p, r); });
      if (!answered_before) continue;  // a replica that was late to start did not rejoin
      for (size_t m = 0; m < poll.lambda[r].size(); ++m) {
        double sum = 0.0;
        int n = 0;
        for (size_t o = 0; o < poll.lambda.size(); ++o) {
          if (o == r || m >= poll.lambda[o].size() || std::isnan(poll.lambda[o][m])) continue;
          sum += poll.lambda[o][m];
          ++n;
        }
        if (n > 0) out.push_back({r, m, poll.sim_s, poll.lambda[r][m], sum / n});
      }
    }
  }
  return out;
}

std::string PricesCsv(const std::vector<PricePoll>& polls,
                      const std::vector<std::string>& modules) {
  std::ostringstream out;
  out.precision(8);
  out << "sim_s,replica,module,lambda\n";
  for (const PricePoll& poll : polls) {
    for (size_t r = 0; r < poll.lambda.size(); ++r) {
      for (size_t m = 0; m < poll.lambda[r].size() && m < modules.size(); ++m) {
        out << poll.sim_s << "," << r << "," << modules[m] << ",";
        if (!std::isnan(poll.lambda[r][m])) out << poll.lambda[r][m];
        out << "\n";
      }
    }
  }
  return out.str();
}

std::string FormatPriceReport(const std::vector<PricePoll>& polls,
                              const std::vector<std::string>& modules, double from_s) {
  std::ostringstream out;
  out.precision(4);
  const bool replicas = !polls.empty() && polls.front().lambda.size() > 1;
  for (size_t m = 0; replicas && m < modules.size(); ++m) {
    const PriceSpread s = SpreadOf(polls, m, from_s);
    out << "price spread " << modules[m] << ": " << s.periods << " periods from " << from_s
        << " s, max/min - 1 median " << 100 * s.median << "%, p90 " << 100 * s.p90 << "%, max "
        << 100 * s.max << "%\n";
  }
  for (const Rejoin& j : FindRejoins(polls)) {
    out << "rejoin: replica " << j.replica << " " << modules[j.module] << " at " << j.sim_s
        << " s with price " << j.lambda << " (the others: " << j.others << ")\n";
  }
  return out.str();
}

}  // namespace allot::sim
