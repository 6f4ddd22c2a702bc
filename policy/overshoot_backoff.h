// How far below its CPU target the MPC should aim so that load it cannot predict overshoots the
// target by no more than a budget on average.
#pragma once

#include <cstddef>
#include <vector>

namespace allot {

// E[max(X, 0)] for X ~ Normal(mean, sigma^2): the expected overshoot of a load that lands `mean`
// above the target with Gaussian scatter sigma (all as fractions of the target).
double ExpectedGaussianExcess(double mean, double sigma);

// Keeps the last `window` one-period prediction errors (measured - predicted) / target and turns
// them into a back-off b: aiming at target * (1 - b), the load's expected overshoot is `budget`
// (a fraction of the target), under a Gaussian with the errors' median as bias and 1.4826 x their
// median absolute deviation as sigma. Medians rather than means: one large miss (a model error at a
// lambda the reservoir had not seen, a telemetry glitch) should not hold the module below target
// for a whole window, while a steady bias or a wider scatter should.
//
// Real errors are not Gaussian: their tails are heavier than the MAD's core suggests, so the
// Gaussian back-off alone overshoots by more than the budget. The overshoot actually left is
// measured after every period the controller planned at its aim (AddOutcome), and a Robbins-Monro
// correction moves the back-off until that overshoot averages the budget: up by `gain` times what
// a period overshot beyond the budget, down by `gain` times the budget after a period that did not
// overshoot. The Gaussian part follows changes of scatter at once; the correction removes what
// its shape gets wrong, whatever the error distribution.
class OvershootBackoff {
 public:
  OvershootBackoff(size_t window, double budget, double max_backoff);

  void Add(double relative_error);
  // load_over_target: measured load / target in a period whose planned load was the aim.
  void AddOutcome(double load_over_target);
  // max_backoff until `kMinErrors` errors are known (a restarted controller does not yet know
  // how well it predicts); then in [0, max_backoff].
  double Backoff() const;
  size_t size() const { return errors_.size(); }
  // The errors' scatter, 1.4826 x their median absolute deviation (a fraction of the target): the
  // load the model cannot predict. 0 until kMinErrors errors are known.
  double scatter() const { return sigma_; }
  double correction() const { return correction_; }

  static constexpr size_t kMinErrors = 8;

 private:
  // The back-off the Gaussian alone asks for, from bias_ and sigma_; recomputed in Add, the only
  // place errors change.
  double GaussianBackoff() const;

  size_t window_;
  double budget_;
  double max_backoff_;
  // About 1 in 5 periods overshoots when aiming right, so 4 / window gives the correction a time
  // constant of roughly one error window.
  double gain_;
  std::vector<double> errors_;  // ring buffer of the last window_ errors
  size_t next_ = 0;
  double bias_ = 0.0;      // median error
  double sigma_ = 0.0;     // scatter()
  double gaussian_ = 0.0;  // GaussianBackoff() of the current errors
  double correction_ = 0.0;
};

}  // namespace allot
