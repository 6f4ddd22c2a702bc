// What replicas that share one Prometheus agree on: the compute price each replica used per
// period, how far apart they were (max/min - 1), and where a restarted replica came back in.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace allot::sim {

// One poll of every replica's control state.
struct PricePoll {
  double sim_s = 0.0;
  // [replica][module]: the replica's compute price, NaN when it did not answer.
  std::vector<std::vector<double>> lambda;
};

struct PriceSpread {
  size_t periods = 0;  // polls from `from_s` on where at least two replicas answered
  double median = 0.0;
  double p90 = 0.0;
  double max = 0.0;
};

// max/min - 1 across the replicas that answered, per poll from `from_s` on, for one module.
PriceSpread SpreadOf(const std::vector<PricePoll>& polls, size_t module, double from_s);

// A replica answering again after at least one poll without an answer (it was restarted).
struct Rejoin {
  size_t replica = 0;
  size_t module = 0;
  double sim_s = 0.0;   // the first poll it answered again
  double lambda = 0.0;  // its price then
  double others = 0.0;  // the mean price of the replicas that stayed up, at the same poll
};

std::vector<Rejoin> FindRejoins(const std::vector<PricePoll>& polls);

// One row per poll, replica and module: sim_s,replica,module,lambda (empty when it did not answer).
std::string PricesCsv(const std::vector<PricePoll>& polls, const std::vector<std::string>& modules);

// The spread per module and the rejoins, as lines for a person.
std::string FormatPriceReport(const std::vector<PricePoll>& polls,
                              const std::vector<std::string>& modules, double from_s);

}  // namespace allot::sim
