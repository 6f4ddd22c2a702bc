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

}  // namespace
}  // namespace allot
