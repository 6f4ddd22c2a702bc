// Ranks by sorting; ties share their average rank so that constant predictions score 0.
#include "models/rank_correlation.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace allot::models {
namespace {

std::vector<double> Ranks(std::span<const double> x) {
  std::vector<size_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t i, size_t j) { return x[i] < x[j]; });
  std::vector<double> r(x.size());
  for (size_t k = 0; k < idx.size();) {
    size_t end = k + 1;
    while (end < idx.size() && x[idx[end]] == x[idx[k]]) ++end;
    const double rank = 0.5 * static_cast<double>(k + end - 1);
    for (size_t t = k; t < end; ++t) r[idx[t]] = rank;
    k = end;
  }
  return r;
}

}  // namespace

double SpearmanCorrelation(std::span<const double> a, std::span<const double> b) {
  const std::vector<double> ra = Ranks(a), rb = Ranks(b);
  const double n = static_cast<double>(a.size());
  const double mean = (n - 1) / 2;
  double cov = 0, va = 0, vb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    cov += (ra[i] - mean) * (rb[i] - mean);
    va += (ra[i] - mean) * (ra[i] - mean);
    vb += (rb[i] - mean) * (rb[i] - mean);
  }
  return va > 0 && vb > 0 ? cov / std::sqrt(va * vb) : 0.0;
}

}  // namespace allot::models
