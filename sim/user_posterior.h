// What the user features tell about a user's latent value: the exact posterior of the simulator's
// user model (sim/request_stream.cc draws one standard normal z per user; the log value, the
// history, the activity and the click rate are each a linear-Gaussian view of it). A policy that
// sees only the features can know no more than this about the user.
#pragma once

#include <array>
#include <random>

#include "sim/world_config.h"

namespace allot::sim {

// The features of a user as the stream drew them (before any rounding to float).
struct ObservedUser {
  double hist_log = 0.0;  // user_hist_value_log
  double activity = 0.5;  // user_activity, in (0, 1)
  double ctr = 0.0;       // ctr_7d, clipped at 1
  bool is_new = false;
};

// The Gaussian part of the posterior of z: every observation except a click rate clipped at 1.
struct UserPosterior {
  double mean = 0.0;
  double sd = 1.0;
  // A click rate of exactly 1 says only that z_ctr >= ctr_cut (a censored view of z).
  bool ctr_censored = false;
  double ctr_cut = 0.0;
};
UserPosterior PosteriorOfUser(const UserConfig& users, const ObservedUser& observed);

// A draw of the user's log value from its posterior (exact, also with a censored click rate).
double SampleLogValue(const UserConfig& users, const UserPosterior& posterior,
                      std::mt19937_64& rng);

// What the upstream top scores add about one request, given a draw of its user's value. Each
// score shows log(value) plus its noise (scaled by the score's value weight); log(value) carries
// the per-request value noise xi ~ N(0, s^2), common to both scores. `residual` is, per score,
// what it shows minus log of the value the draw implies with xi at its mean (value factor 1).
struct ScoreEvidence {
  double log_likelihood = 0.0;  // of both residuals given the draw, xi integrated out
  double value_factor = 1.0;    // E[exp(xi - s^2 / 2) | residuals]: the value's update
};
ScoreEvidence UpdateOnScores(double request_noise_sigma, const std::array<double, 2>& residual,
                             const std::array<double, 2>& score_sd);

}  // namespace allot::sim
