// Two weighted least-squares passes over small normal equations (one unknown per channel, plus
// the fixed part in the first): the first finds the fixed part, the second the increments with it
// held, so a clamped fixed part is absorbed by the increments instead of skewing the reference.
#include "models/link_cost_fit.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace allot::models {
namespace {

// Solves a x = b (a symmetric, m x m) by Gaussian elimination with partial pivoting. An unknown
// whose pivot vanishes (the data cannot tell it from the earlier ones) is 0, so the unknowns the
// caller puts last are the ones given up first.
std::vector<double> Solve(std::vector<std::vector<double>> a, std::vector<double> b) {
  const size_t m = b.size();
  double largest = 0.0;
  for (size_t i = 0; i < m; ++i) largest = std::max(largest, std::abs(a[i][i]));
  const double tiny = 1e-12 * largest;
  std::vector<bool> free(m, false);
  size_t row = 0;
  std::vector<size_t> pivot_row(m, m);
  for (size_t col = 0; col < m && row < m; ++col) {
    size_t pivot = row;
    for (size_t r = row + 1; r < m; ++r) {
      if (std::abs(a[r][col]) > std::abs(a[pivot][col])) pivot = r;
    }
    if (std::abs(a[pivot][col]) <= tiny) {
      free[col] = true;
      continue;
    }
    std::swap(a[row], a[pivot]);
    std::swap(b[row], b[pivot]);
    for (size_t r = row + 1; r < m; ++r) {
      const double f = a[r][col] / a[row][col];
      for (size_t k = col; k < m; ++k) a[r][k] -= f * a[row][k];
      b[r] -= f * b[row];
    }
    pivot_row[col] = row++;
  }
  std::vector<double> x(m, 0.0);
  for (size_t col = m; col-- > 0;) {
    if (free[col] || pivot_row[col] == m) continue;
    const size_t r = pivot_row[col];
    double s = b[r];
    for (size_t k = col + 1; k < m; ++k) s -= a[r][k] * x[k];
    x[col] = s / a[r][col];
  }
  return x;
}

// Least squares of cost = [fixed if with_fixed] + sum of increments over `rows`. Unknowns are
// ordered increment 0..n-1, then the fixed part, which is 0 where the rows cannot tell it.
std::vector<double> LeastSquares(size_t n, bool with_fixed, std::span<const ChannelSetCost> rows,
                                 double held_fixed) {
  const size_t m = n + (with_fixed ? 1 : 0);
  std::vector<std::vector<double>> a(m, std::vector<double>(m, 0.0));
  std::vector<double> b(m, 0.0);
  std::vector<size_t> in;
  for (const ChannelSetCost& row : rows) {
    in.clear();
    for (size_t c = 0; c < n; ++c) {
      if (row.set & (1u << c)) in.push_back(c);
    }
    if (with_fixed) in.push_back(n);
    const double target = row.cost - (with_fixed ? 0.0 : held_fixed);
    for (size_t i : in) {
      b[i] += row.weight * target;
      for (size_t j : in) a[i][j] += row.weight;
    }
  }
  return Solve(std::move(a), std::move(b));
}

}  // namespace

double LinkCostFit::Cost(uint32_t set) const {
  double cost = fixed;
  for (size_t c = 0; c < increment.size(); ++c) {
    if (set & (1u << c)) cost += increment[c];
  }
  return cost;
}

LinkCostFit FitLinkCost(size_t channels, std::span<const ChannelSetCost> sets,
                        std::optional<ChannelSetCost> reference) {
  std::vector<ChannelSetCost> rows(sets.begin(), sets.end());
  if (reference) rows.push_back(*reference);
  LinkCostFit fit;
  fit.fixed = std::max(0.0, LeastSquares(channels, true, rows, 0.0)[channels]);
  // A channel measured alone costs the fixed part plus its increment (>= 0): no more fixed part.
  for (const ChannelSetCost& r : sets) {
    if (std::has_single_bit(r.set)) fit.fixed = std::min(fit.fixed, r.cost);
  }
  // The increments with the fixed part held, from the sets themselves.
  fit.increment = LeastSquares(channels, false, sets, fit.fixed);
  for (double& inc : fit.increment) inc = std::max(0.0, inc);
  return fit;
}

}  // namespace allot::models
