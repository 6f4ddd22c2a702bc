// See overshoot_backoff.h.
#include "policy/overshoot_backoff.h"

#include <algorithm>
#include <cmath>

namespace allot {
namespace {

double Median(std::vector<double> x) {
  const size_t mid = x.size() / 2;
  std::nth_element(x.begin(), x.begin() + static_cast<long>(mid), x.end());
  const double upper = x[mid];
  if (x.size() % 2 == 1) return upper;
  return 0.5 * (upper + *std::max_element(x.begin(), x.begin() + static_cast<long>(mid)));
}

}  // namespace

double ExpectedGaussianExcess(double mean, double sigma) {
  if (!(sigma > 0)) return std::max(mean, 0.0);
  const double u = mean / sigma;
  const double density = std::exp(-0.5 * u * u) / std::sqrt(2 * M_PI);
  const double above = 0.5 * std::erfc(-u / std::sqrt(2.0));  // P(X > 0)
  return sigma * density + mean * above;
}

OvershootBackoff::OvershootBackoff(size_t window, double budget, double max_backoff)
    : window_(std::max<size_t>(window, 1)),
      budget_(budget),
      max_backoff_(max_backoff),
      gain_(4.0 / static_cast<double>(window_)) {
  errors_.reserve(window_);
}

void OvershootBackoff::Add(double relative_error) {
  if (!std::isfinite(relative_error)) return;
  if (errors_.size() < window_) {
    errors_.push_back(relative_error);
  } else {
    errors_[next_] = relative_error;
    next_ = (next_ + 1) % window_;
  }
  if (errors_.size() < kMinErrors) return;
  bias_ = Median(errors_);
  std::vector<double> deviation(errors_.size());
  std::transform(errors_.begin(), errors_.end(), deviation.begin(),
                 [&](double e) { return std::abs(e - bias_); });
  sigma_ = 1.4826 * Median(std::move(deviation));
  gaussian_ = GaussianBackoff();
}

void OvershootBackoff::AddOutcome(double load_over_target) {
  if (max_backoff_ <= 0 || !std::isfinite(load_over_target) || errors_.size() < kMinErrors) return;
  // An overshoot larger than the whole back-off range is a model failure (the MPC hands such a
  // module to PID), not scatter that aiming lower would have covered: it counts as max_backoff.
  const double overshoot = std::clamp(load_over_target - 1.0, 0.0, max_backoff_);
  // Kept where the total back-off stays inside [0, max_backoff], so that a long run of periods the
  // correction cannot change (the back-off already 0 or at its maximum) does not wind it up.
  correction_ =
      std::clamp(correction_ + gain_ * (overshoot - budget_), -gaussian_, max_backoff_ - gaussian_);
}

double OvershootBackoff::Backoff() const {
  if (max_backoff_ <= 0) return 0.0;
  if (errors_.size() < kMinErrors) return max_backoff_;
  return std::clamp(gaussian_ + correction_, 0.0, max_backoff_);
}

double OvershootBackoff::GaussianBackoff() const {
  auto excess = [&](double b) { return ExpectedGaussianExcess(bias_ - b, sigma_); };
  if (excess(0.0) <= budget_) return 0.0;
  if (excess(max_backoff_) >= budget_) return max_backoff_;
  // The expected excess falls monotonically with the back-off: bisect to 1e-5 of the target.
  double lo = 0.0, hi = max_backoff_;
  while (hi - lo > 1e-5) {
    const double mid = 0.5 * (lo + hi);
    (excess(mid) > budget_ ? lo : hi) = mid;
  }
  return hi;
}

}  // namespace allot
