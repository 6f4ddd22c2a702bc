// Conjugate updates of a standard normal prior: each view y = a z + e, e ~ N(0, v), adds a^2 / v
// to the precision and a y / v to the precision-weighted mean.
#include "sim/user_posterior.h"

#include <algorithm>
#include <cmath>

namespace allot::sim {
namespace {

struct Precision {
  double precision = 1.0;  // the prior's
  double weighted = 0.0;

  void Observe(double y, double a, double variance) {
    if (a == 0.0) return;
    const double v = std::max(variance, 1e-12);  // a weight of 1 makes the view exact
    precision += a * a / v;
    weighted += a * y / v;
  }
};

}  // namespace

UserPosterior PosteriorOfUser(const UserConfig& u, const ObservedUser& o) {
  Precision p;
  const double log_ratio = std::log(u.hist_value_ratio);
  const double s_v = u.value_log_sigma;
  if (o.is_new) {
    // hist = log_ratio + (1 - k) (mu + s_v z + s_n e) + k mu
    const double k = u.new_user_hist_shrink;
    if (k < 1.0) {
      const double y = (o.hist_log - log_ratio - u.value_log_mean) / (1.0 - k);
      p.Observe(y, s_v, u.new_user_hist_noise_sigma * u.new_user_hist_noise_sigma);
    }
  } else {
    p.Observe(o.hist_log - log_ratio - u.value_log_mean, s_v,
              u.hist_noise_sigma * u.hist_noise_sigma);
  }
  // activity = sigmoid(1.2 z_act), z_act = w z + sqrt(1 - w^2) n
  const double activity = std::clamp(o.activity, 1e-12, 1.0 - 1e-12);
  const double w_act = u.activity_weight;
  p.Observe(std::log(activity / (1.0 - activity)) / 1.2, w_act, 1.0 - w_act * w_act);

  UserPosterior out;
  // ctr = min(1, median exp(0.5 z_ctr)), z_ctr = w z + sqrt(1 - w^2) n
  const double w_ctr = u.ctr_weight;
  const double cut = 2.0 * std::log(1.0 / u.ctr_median);
  if (o.ctr < 1.0) {
    p.Observe(2.0 * std::log(std::max(o.ctr, 1e-300) / u.ctr_median), w_ctr, 1.0 - w_ctr * w_ctr);
  } else {
    out.ctr_censored = w_ctr != 0.0;
    out.ctr_cut = cut;
  }
  out.mean = p.weighted / p.precision;
  out.sd = 1.0 / std::sqrt(p.precision);
  return out;
}

namespace {

// x ~ N(0, 1) conditioned on x >= alpha: plain rejection near the centre, Robert's (1995)
// exponential proposal in the tail (where plain rejection would almost never accept).
double StandardNormalTail(double alpha, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  if (alpha < 0.5) {
    for (;;) {
      const double x = normal(rng);
      if (x >= alpha) return x;
    }
  }
  const double rate = 0.5 * (alpha + std::sqrt(alpha * alpha + 4.0));
  std::exponential_distribution<double> exponential(rate);
  for (;;) {
    const double x = alpha + exponential(rng);
    if (uniform(rng) <= std::exp(-0.5 * (x - rate) * (x - rate))) return x;
  }
}

}  // namespace

double SampleLogValue(const UserConfig& u, const UserPosterior& posterior, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0.0, 1.0);
  double z = posterior.mean + posterior.sd * normal(rng);
  if (posterior.ctr_censored) {
    // Jointly Gaussian: z and v = w z + s n (the click rate's driver). Draw v from its law
    // truncated to v >= cut, then z given v.
    const double w = u.ctr_weight;
    const double s_sq = std::max(1.0 - w * w, 0.0);
    const double var_z = posterior.sd * posterior.sd;
    const double mean_v = w * posterior.mean;
    const double sd_v = std::sqrt(w * w * var_z + s_sq);
    const double v = mean_v + sd_v * StandardNormalTail((posterior.ctr_cut - mean_v) / sd_v, rng);
    const double gain = w * var_z / (sd_v * sd_v);
    const double sd_given_v = std::sqrt(std::max(var_z * (1.0 - gain * w), 0.0));
    z = posterior.mean + gain * (v - mean_v) + sd_given_v * normal(rng);
  }
  return u.value_log_mean + u.value_log_sigma * z;
}

ScoreEvidence UpdateOnScores(double request_noise_sigma, const std::array<double, 2>& residual,
                             const std::array<double, 2>& score_sd) {
  // r_j = xi - s^2 / 2 + e_j (as residuals are taken against value factor 1); shift to
  // r_j' = xi + e_j, then xi ~ N(0, s^2) and e_j ~ N(0, v_j) independent.
  const double s_sq = request_noise_sigma * request_noise_sigma;
  const std::array<double, 2> r = {residual[0] + 0.5 * s_sq, residual[1] + 0.5 * s_sq};
  const std::array<double, 2> v = {std::max(score_sd[0] * score_sd[0], 1e-12),
                                   std::max(score_sd[1] * score_sd[1], 1e-12)};
  // Marginal of (r_0, r_1): covariance [[s^2 + v0, s^2], [s^2, s^2 + v1]].
  const double a = s_sq + v[0], b = s_sq + v[1], c = s_sq;
  const double det = a * b - c * c;
  const double quad = (b * r[0] * r[0] - 2.0 * c * r[0] * r[1] + a * r[1] * r[1]) / det;
  ScoreEvidence out;
  out.log_likelihood = -0.5 * (quad + std::log(det));
  if (s_sq > 0.0) {
    const double precision = 1.0 / s_sq + 1.0 / v[0] + 1.0 / v[1];
    const double mean = (r[0] / v[0] + r[1] / v[1]) / precision;
    out.value_factor = std::exp(mean + 0.5 / precision - 0.5 * s_sq);
  }
  return out;
}

}  // namespace allot::sim
