// The user posterior is the exact posterior of the simulator's user model: the users' true values,
// standardised by it, are standard normal; and a stream with posterior draws is the same stream
// (users, times, features) with only the latent values redrawn around the posterior.
#include "sim/user_posterior.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "sim/request_stream.h"
#include "tests/sim/sim_test_util.h"

namespace allot::sim {
namespace {

ObservedUser Observed(const Request& r) {
  return {
      .hist_log = r.hist_value_log, .activity = r.activity, .ctr = r.ctr_7d, .is_new = r.is_new};
}

// The first request of every user in the first `n` requests of the stream.
std::vector<Request> FirstOfEachUser(const World& world, StreamOptions options, size_t n) {
  std::map<uint64_t, Request> first;
  for (const Request& r : RequestStream(world, options).Take(n)) first.emplace(r.user, r);
  std::vector<Request> out;
  for (const auto& [user, r] : first) out.push_back(r);
  return out;
}

TEST(UserPosteriorTest, TheTrueValuesStandardisedByThePosteriorAreStandardNormal) {
  const auto world = testing::MakeWorld();
  const UserConfig& u = world->world().users;
  const std::vector<Request> users =
      FirstOfEachUser(*world, {.seed = 5, .name = "posterior"}, 40000);
  ASSERT_GT(users.size(), 5000u);
  double sum = 0.0, sum_sq = 0.0, prior_sq = 0.0;
  size_t n = 0, censored = 0;
  for (const Request& r : users) {
    const UserPosterior p = PosteriorOfUser(u, Observed(r));
    censored += p.ctr_censored;
    if (p.ctr_censored) continue;  // not Gaussian: checked by sampling below
    const double z = (std::log(r.user_value) - u.value_log_mean) / u.value_log_sigma;
    const double t = (z - p.mean) / p.sd;
    sum += t;
    sum_sq += t * t;
    prior_sq += z * z;
    EXPECT_LT(p.sd, 1.0);  // every user feature tells something
    ++n;
  }
  const double mean = sum / n;
  const double sd = std::sqrt(sum_sq / n - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.05);
  EXPECT_NEAR(sd, 1.0, 0.05);
  EXPECT_NEAR(std::sqrt(prior_sq / n), 1.0, 0.05);  // the prior, for scale
  EXPECT_LT(censored, n / 10);
}

TEST(UserPosteriorTest, DrawsCentreOnThePosterior) {
  const auto world = testing::MakeWorld();
  const UserConfig& u = world->world().users;
  const UserPosterior p = PosteriorOfUser(u, {.hist_log = 0.0, .activity = 0.5, .ctr = 0.02});
  std::mt19937_64 rng(7);
  double sum = 0.0, sum_sq = 0.0;
  constexpr int kDraws = 20000;
  for (int i = 0; i < kDraws; ++i) {
    const double z = (SampleLogValue(u, p, rng) - u.value_log_mean) / u.value_log_sigma;
    sum += z;
    sum_sq += z * z;
  }
  EXPECT_NEAR(sum / kDraws, p.mean, 0.03);
  EXPECT_NEAR(std::sqrt(sum_sq / kDraws - (sum / kDraws) * (sum / kDraws)), p.sd, 0.03);
}

// A click rate clipped at 1 says z_ctr >= cut. With a median click rate of 0.5 the cut is low
// enough for brute force (draw z and the click rate's noise, keep the clipped ones) to check the
// sampler's mean and spread; with the default median it is far in the tail, where the sampler
// must still return quickly and pull the value up.
TEST(UserPosteriorTest, ACensoredClickRateConditionsTheDrawsExactly) {
  UserConfig u = testing::MakeWorld()->world().users;
  u.ctr_median = 0.5;
  const UserPosterior p = PosteriorOfUser(u, {.hist_log = 0.3, .activity = 0.6, .ctr = 1.0});
  ASSERT_TRUE(p.ctr_censored);
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal(0.0, 1.0);
  constexpr int kDraws = 40000;
  double brute = 0.0, brute_sq = 0.0;
  int kept = 0;
  while (kept < kDraws) {
    const double z = p.mean + p.sd * normal(rng);
    const double v = u.ctr_weight * z + std::sqrt(1 - u.ctr_weight * u.ctr_weight) * normal(rng);
    if (v < p.ctr_cut) continue;
    brute += z;
    brute_sq += z * z;
    ++kept;
  }
  double sum = 0.0, sum_sq = 0.0;
  for (int i = 0; i < kDraws; ++i) {
    const double z = (SampleLogValue(u, p, rng) - u.value_log_mean) / u.value_log_sigma;
    sum += z;
    sum_sq += z * z;
  }
  const double brute_mean = brute / kDraws;
  EXPECT_GT(brute_mean, p.mean + 0.05);  // the clipping does say something
  EXPECT_NEAR(sum / kDraws, brute_mean, 0.02);
  EXPECT_NEAR(sum_sq / kDraws, brute_sq / kDraws, 0.04);

  const UserConfig defaults = testing::MakeWorld()->world().users;
  const UserPosterior far =
      PosteriorOfUser(defaults, {.hist_log = 0.0, .activity = 0.5, .ctr = 1.0});
  double far_sum = 0.0;
  for (int i = 0; i < 1000; ++i) far_sum += SampleLogValue(defaults, far, rng);
  EXPECT_GT(far_sum / 1000, defaults.value_log_mean + defaults.value_log_sigma * (far.mean + 0.15));
}

TEST(UserPosteriorTest, APosteriorStreamRedrawsOnlyTheLatentValues) {
  const auto world = testing::MakeWorld();
  const std::vector<Request> truth = RequestStream(*world, {.seed = 3, .name = "p"}).Take(3000);
  const std::vector<Request> first =
      RequestStream(*world, {.seed = 3, .name = "p", .posterior_sample = 1}).Take(3000);
  const std::vector<Request> again =
      RequestStream(*world, {.seed = 3, .name = "p", .posterior_sample = 1}).Take(3000);
  const std::vector<Request> second =
      RequestStream(*world, {.seed = 3, .name = "p", .posterior_sample = 2}).Take(3000);
  ASSERT_EQ(first.size(), truth.size());
  size_t differs = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    ASSERT_EQ(first[i].user, truth[i].user);
    ASSERT_EQ(first[i].real_s, truth[i].real_s);
    ASSERT_EQ(first[i].hist_value_log, truth[i].hist_value_log);
    ASSERT_EQ(first[i].activity, truth[i].activity);
    ASSERT_EQ(first[i].ctr_7d, truth[i].ctr_7d);
    ASSERT_EQ(first[i].page_index, truth[i].page_index);
    EXPECT_EQ(first[i].user_value, again[i].user_value);  // deterministic
    EXPECT_NE(first[i].user_value, truth[i].user_value);
    differs += first[i].user_value != second[i].user_value;
  }
  EXPECT_EQ(differs, truth.size());
}

}  // namespace
}  // namespace allot::sim

namespace allot::sim {
namespace {

// The score update against numerical integration over the value noise xi: the expected value
// factor, and the likelihood ratio of two residual pairs.
TEST(UserPosteriorTest, TheScoreUpdateMatchesIntegrationOverTheValueNoise) {
  const double s = 0.25;
  const std::array<double, 2> sd = {0.6, 0.43};
  auto normal = [](double x, double sigma) {
    return std::exp(-0.5 * x * x / (sigma * sigma)) / sigma;
  };
  // Integrals over xi of prior x likelihood (and x exp(xi - s^2 / 2)).
  auto integrate = [&](const std::array<double, 2>& residual, double* factor) {
    double mass = 0.0, weighted = 0.0;
    for (double xi = -3.0; xi <= 3.0; xi += 1e-4) {
      const double shift = xi - 0.5 * s * s;  // residuals are against value factor 1
      const double p =
          normal(xi, s) * normal(residual[0] - shift, sd[0]) * normal(residual[1] - shift, sd[1]);
      mass += p;
      weighted += p * std::exp(shift);
    }
    *factor = weighted / mass;
    return mass;
  };
  const std::array<double, 2> a = {0.3, 0.1}, b = {-0.4, 0.5};
  double factor_a = 0.0, factor_b = 0.0;
  const double mass_a = integrate(a, &factor_a);
  const double mass_b = integrate(b, &factor_b);
  const ScoreEvidence ea = UpdateOnScores(s, a, sd);
  const ScoreEvidence eb = UpdateOnScores(s, b, sd);
  EXPECT_NEAR(ea.value_factor, factor_a, 1e-6);
  EXPECT_NEAR(eb.value_factor, factor_b, 1e-6);
  EXPECT_GT(ea.value_factor, 1.0);  // scores above what the draw implies raise the value
  EXPECT_NEAR(ea.log_likelihood - eb.log_likelihood, std::log(mass_a / mass_b), 1e-6);
  // Without value noise the scores say nothing about the value beyond the draw itself.
  EXPECT_EQ(UpdateOnScores(0.0, a, sd).value_factor, 1.0);
}

}  // namespace
}  // namespace allot::sim
