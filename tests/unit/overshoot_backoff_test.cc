// The MPC's back-off: how far below target to aim given its recent prediction errors.
#include "policy/overshoot_backoff.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace allot {
namespace {

double EmpiricalExcess(const std::vector<double>& errors, double backoff) {
  double sum = 0;
  for (double e : errors) sum += std::max(e - backoff, 0.0);
  return sum / errors.size();
}

std::vector<double> GaussianErrors(size_t n, double bias, double sigma, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(bias, sigma);
  std::vector<double> out(n);
  for (double& e : out) e = d(rng);
  return out;
}

TEST(OvershootBackoffTest, ExpectedGaussianExcessMatchesClosedForm) {
  EXPECT_NEAR(ExpectedGaussianExcess(0.0, 1.0), 0.398942, 1e-6);              // phi(0)
  EXPECT_NEAR(ExpectedGaussianExcess(-1.0, 1.0), 0.241971 - 0.158655, 1e-6);  // phi(1) - Q(1)
  EXPECT_NEAR(ExpectedGaussianExcess(2.0, 1.0), 2.0 + ExpectedGaussianExcess(-2.0, 1.0), 1e-9);
  EXPECT_DOUBLE_EQ(ExpectedGaussianExcess(0.3, 0.0), 0.3);
  EXPECT_DOUBLE_EQ(ExpectedGaussianExcess(-0.3, 0.0), 0.0);
}

// A controller that has not yet seen how well it predicts assumes the worst.
TEST(OvershootBackoffTest, FullBackoffUntilEnoughErrorsAreKnown) {
  OvershootBackoff b(60, 0.004, 0.1);
  EXPECT_EQ(b.Backoff(), 0.1);
  for (size_t i = 0; i + 1 < OvershootBackoff::kMinErrors; ++i) b.Add(0.0);
  EXPECT_EQ(b.Backoff(), 0.1);
  b.Add(0.0);
  EXPECT_EQ(b.Backoff(), 0.0);
}

// With Gaussian errors the load aimed at target * (1 - b) overshoots by the budget on average.
TEST(OvershootBackoffTest, BackoffLeavesTheBudgetedOvershoot) {
  for (double sigma : {0.02, 0.05}) {
    const std::vector<double> errors = GaussianErrors(2000, 0.0, sigma, 7);
    OvershootBackoff b(errors.size(), 0.004, 0.5);
    for (double e : errors) b.Add(e);
    const double backoff = b.Backoff();
    EXPECT_NEAR(ExpectedGaussianExcess(-backoff, sigma), 0.004, 0.0006) << sigma;
    EXPECT_NEAR(EmpiricalExcess(errors, backoff), 0.004, 0.0008) << sigma;
  }
}

TEST(OvershootBackoffTest, WiderScatterAndUnderPredictionBothBackOffFurther) {
  auto backoff_for = [](double bias, double sigma) {
    OvershootBackoff b(500, 0.004, 0.5);
    for (double e : GaussianErrors(500, bias, sigma, 11)) b.Add(e);
    return b.Backoff();
  };
  EXPECT_LT(backoff_for(0.0, 0.02), backoff_for(0.0, 0.04));
  // Measured load keeps landing 3% above the prediction: the back-off covers that bias too.
  EXPECT_NEAR(backoff_for(0.03, 0.02) - backoff_for(0.0, 0.02), 0.03, 0.004);
  // Predictions that run high (load lands below them) need less back-off, down to none.
  EXPECT_EQ(backoff_for(-0.1, 0.02), 0.0);
}

TEST(OvershootBackoffTest, OneLargeMissDoesNotHoldTheModuleBack) {
  const std::vector<double> calm = GaussianErrors(59, 0.0, 0.03, 5);
  OvershootBackoff with_miss(60, 0.004, 0.1), without(60, 0.004, 0.1);
  for (double e : calm) {
    with_miss.Add(e);
    without.Add(e);
  }
  with_miss.Add(0.4);  // e.g. a lambda jump the cost curve had never seen
  without.Add(0.0);
  EXPECT_LT(with_miss.Backoff(), 0.1);
  EXPECT_NEAR(with_miss.Backoff(), without.Backoff(), 0.004);
}

TEST(OvershootBackoffTest, OldErrorsLeaveTheWindow) {
  OvershootBackoff b(60, 0.004, 0.1);
  for (double e : GaussianErrors(60, 0.0, 0.2, 1)) b.Add(e);
  EXPECT_DOUBLE_EQ(b.Backoff(), 0.1);  // capped at max_backoff
  for (double e : GaussianErrors(60, 0.0, 0.01, 2)) b.Add(e);
  EXPECT_LT(b.Backoff(), 0.02);
  EXPECT_EQ(b.size(), 60u);
}

TEST(OvershootBackoffTest, IgnoresNonFiniteErrorsAndCanBeDisabled) {
  OvershootBackoff b(60, 0.004, 0.1);
  b.Add(std::numeric_limits<double>::quiet_NaN());
  b.Add(std::numeric_limits<double>::infinity());
  EXPECT_EQ(b.size(), 0u);
  OvershootBackoff off(60, 0.004, 0.0);
  for (double e : GaussianErrors(60, 0.0, 0.2, 1)) off.Add(e);
  EXPECT_EQ(off.Backoff(), 0.0);
}

// Laplace errors: heavier tails than the Gaussian their MAD describes.
class LaplaceErrors {
 public:
  LaplaceErrors(double scale, uint64_t seed) : rng_(seed), magnitude_(1.0 / scale) {}
  double operator()() { return (coin_(rng_) ? 1.0 : -1.0) * magnitude_(rng_); }

 private:
  std::mt19937_64 rng_;
  std::exponential_distribution<double> magnitude_;
  std::bernoulli_distribution coin_{0.5};
};

// A module aiming at target * (1 - b) whose load lands `error` from that aim: returns the mean
// overshoot (fraction of the target) over the last half of `periods`.
double ClosedLoopOvershoot(OvershootBackoff& backoff, LaplaceErrors& errors, int periods,
                           bool report_outcomes) {
  double overshoot = 0.0;
  for (int i = 0; i < periods; ++i) {
    const double error = errors();
    const double load = 1.0 - backoff.Backoff() + error;
    backoff.Add(error);
    if (report_outcomes) backoff.AddOutcome(load);
    if (i >= periods / 2) overshoot += std::max(load - 1.0, 0.0);
  }
  return overshoot / (periods - periods / 2);
}

// Laplace(0.03) errors: E[(e - b)+] = 0.015 exp(-b / 0.03), so the Gaussian-only back-off
// (~0.025) leaves about 0.0065 and the budget needs b ~ 0.044.
TEST(OvershootBackoffTest, MeasuredOvershootCorrectsHeavyTails) {
  OvershootBackoff gaussian_only(60, 0.0035, 0.1), corrected(60, 0.0035, 0.1);
  LaplaceErrors a(0.03, 21), b(0.03, 21);
  const double left_alone = ClosedLoopOvershoot(gaussian_only, a, 40000, false);
  const double with_outcomes = ClosedLoopOvershoot(corrected, b, 40000, true);
  EXPECT_GT(left_alone, 0.0055);
  EXPECT_NEAR(with_outcomes, 0.0035, 0.0004);
  EXPECT_GT(corrected.correction(), 0.01);
  EXPECT_EQ(gaussian_only.correction(), 0.0);
}

// Periods the back-off cannot influence (the module far under its target, or far over it) move
// the correction only as far as keeps the total inside [0, max_backoff], so it recovers at once.
TEST(OvershootBackoffTest, CorrectionDoesNotWindUp) {
  OvershootBackoff b(60, 0.0035, 0.1);
  for (double e : GaussianErrors(60, 0.0, 0.03, 3)) b.Add(e);
  const double gaussian = b.Backoff();
  ASSERT_GT(gaussian, 0.0);
  for (int i = 0; i < 5000; ++i) b.AddOutcome(0.5);
  EXPECT_EQ(b.Backoff(), 0.0);
  EXPECT_NEAR(b.correction(), -gaussian, 1e-12);
  for (int i = 0; i < 5000; ++i) b.AddOutcome(2.0);
  EXPECT_DOUBLE_EQ(b.Backoff(), 0.1);
  EXPECT_NEAR(b.correction(), 0.1 - gaussian, 1e-12);
}

TEST(OvershootBackoffTest, OutcomesCountOnlyOnceErrorsAreKnown) {
  OvershootBackoff b(60, 0.0035, 0.1);
  b.AddOutcome(1.5);  // still at full start-up back-off: not the Gaussian's doing
  EXPECT_EQ(b.correction(), 0.0);
  for (double e : GaussianErrors(60, 0.0, 0.03, 3)) b.Add(e);
  b.AddOutcome(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(b.correction(), 0.0);
  b.AddOutcome(1.05);  // 5% over: the back-off grows by gain x (0.05 - budget)
  EXPECT_NEAR(b.correction(), 4.0 / 60 * (0.05 - 0.0035), 1e-12);
}

}  // namespace
}  // namespace allot
