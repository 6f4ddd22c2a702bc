// Generates a day at a time: heads per real minute (Poisson with profile, spikes and noise), then
// each head's chain, then a sort by time. All draws come from the day's own seeded stream.
#include "sim/request_stream.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "sim/seeds.h"
#include "sim/user_posterior.h"

namespace allot::sim {
namespace {

constexpr double kDaySeconds = 86400.0;
constexpr int kMaxDays = 100000;  // a stream too thin to fill a request count still ends

// Multiplicative noise with mean 1.
double LogNormal1(std::mt19937_64& rng, double sigma) {
  if (sigma <= 0) return 1.0;
  std::normal_distribution<double> z(0.0, 1.0);
  return std::exp(sigma * z(rng) - 0.5 * sigma * sigma);
}

double Normal(std::mt19937_64& rng) { return std::normal_distribution<double>(0.0, 1.0)(rng); }
double Uniform(std::mt19937_64& rng) {
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

struct UserDraw {
  double log_value = 0.0;
  double activity = 0.0;
  double ctr = 0.0;
  bool is_new = false;
  double hist_log = 0.0;
  double drift_time_s = 1.0;
  bool search = false;
};

UserDraw DrawUser(const UserConfig& u, const RepeatConfig& rp, std::mt19937_64& rng) {
  UserDraw d;
  const double z = Normal(rng);
  d.log_value = u.value_log_mean + u.value_log_sigma * z;
  const double z_act =
      u.activity_weight * z + std::sqrt(1 - u.activity_weight * u.activity_weight) * Normal(rng);
  d.activity = 1.0 / (1.0 + std::exp(-1.2 * z_act));
  const double z_ctr = u.ctr_weight * z + std::sqrt(1 - u.ctr_weight * u.ctr_weight) * Normal(rng);
  d.ctr = std::min(1.0, u.ctr_median * std::exp(0.5 * z_ctr));
  d.is_new = Uniform(rng) < u.new_user_fraction;
  const double hist_noise = Normal(rng);
  const double log_ratio = std::log(u.hist_value_ratio);
  if (d.is_new) {
    // Little history: a noisy observation pulled toward the population's typical value.
    const double observed = d.log_value + u.new_user_hist_noise_sigma * hist_noise;
    d.hist_log = log_ratio + (1 - u.new_user_hist_shrink) * observed +
                 u.new_user_hist_shrink * u.value_log_mean;
  } else {
    d.hist_log = log_ratio + d.log_value + u.hist_noise_sigma * hist_noise;
  }
  d.drift_time_s = rp.drift_time_median_s * std::exp(rp.drift_time_sigma * Normal(rng));
  d.search = Uniform(rng) < u.query_fraction;
  return d;
}

int DrawQueryLen(const UserConfig& u, std::mt19937_64& rng) {
  const double extra = std::max(0.0, u.query_len_mean - 1.0);
  return 1 + (extra > 0 ? static_cast<int>(std::poisson_distribution<int>(extra)(rng)) : 0);
}

}  // namespace

RequestStream::RequestStream(const World& world, StreamOptions options)
    : world_(world), options_(std::move(options)) {
  const WorldConfig& w = world_.world();
  compression_ = w.compression();
  mean_qps_ = options_.mean_qps > 0 ? options_.mean_qps : w.traffic.mean_qps;
  // Keep the represented real traffic (and so the CPU load) the same at any simulated rate.
  scale_ = w.traffic.scale * w.traffic.mean_qps / mean_qps_;
  const double start_hour = options_.start_hour >= 0 ? options_.start_hour : w.time.start_hour;
  start_real_s_ = start_hour * 3600.0;
}

double RequestStream::SampleGap(std::mt19937_64& rng) const {
  const auto& bands = world_.world().repeats.gaps;
  double u = Uniform(rng);
  const GapBand* band = &bands.back();
  for (const GapBand& b : bands) {
    if (u < b.weight) {
      band = &b;
      break;
    }
    u -= b.weight;
  }
  // Log-uniform within the band: scale-free inside it, exact band shares across bands.
  const double lo = std::log(band->min_s);
  const double hi = std::log(band->max_s);
  return std::exp(lo + (hi - lo) * Uniform(rng));
}

void RequestStream::Chain(int day, uint64_t chain, double head_s, std::mt19937_64& rng,
                          std::vector<Request>& out) const {
  const WorldConfig& w = world_.world();
  const UserConfig& u = w.users;
  const RepeatConfig& rp = w.repeats;
  const ChainModel& model = world_.model();
  const uint64_t user_id = (static_cast<uint64_t>(day) << 32) | chain;
  UserDraw user = DrawUser(u, rp, rng);
  if (options_.posterior_sample > 0) {
    const UserPosterior posterior = PosteriorOfUser(u, {.hist_log = user.hist_log,
                                                        .activity = user.activity,
                                                        .ctr = user.ctr,
                                                        .is_new = user.is_new});
    std::mt19937_64 draw = MakeRng(options_.seed, options_.name + "/posterior",
                                   SplitMix64(user_id) + options_.posterior_sample);
    user.log_value = SampleLogValue(u, posterior, draw);
  }
  const size_t num_channels = w.recall.channels.size();

  double t = head_s;
  double gap = 0.0;
  double xi = 0.0;
  int page = 0;
  int query = 0;
  int exposed_before = 0;
  std::array<StageOutput, kNumStages> stored_before{};
  for (int k = 0;; ++k) {
    Request r;
    r.user = user_id;
    r.day = day;
    r.real_s = day * kDaySeconds + t;
    r.hour = t / 3600.0;
    r.repeat = k > 0;
    r.gap_s = gap;
    r.user_value = std::exp(user.log_value);
    r.is_new = user.is_new;
    r.activity = static_cast<float>(user.activity);
    r.ctr_7d = static_cast<float>(user.ctr);
    r.hist_value_log = static_cast<float>(user.hist_log);

    const bool new_session = k == 0 || gap > rp.session_gap_s;
    page = new_session ? 0 : std::min(page + 1, rp.max_page_index);
    if (user.search && new_session) query = DrawQueryLen(u, rng);
    r.page_index = page;
    r.query_len = user.search ? query : 0;

    // Interest drift: the unobserved part of the value follows an AR(1) in real time.
    r.drift = k == 0 ? 0.0 : -std::expm1(-gap / user.drift_time_s);
    const double z = Normal(rng);
    xi = k == 0 ? u.request_noise_sigma * z
                : std::sqrt(1 - r.drift) * xi + std::sqrt(r.drift) * u.request_noise_sigma * z;
    const double hour_factor =
        1.0 + u.hour_value_amplitude *
                  std::cos(2.0 * std::numbers::pi * (r.hour - u.hour_value_peak) / 24.0);
    r.value = r.user_value * std::pow(u.page_decay, page) * hour_factor *
              (1.0 + u.query_value_bonus * std::min(r.query_len, 5)) *
              std::exp(xi - 0.5 * u.request_noise_sigma * u.request_noise_sigma);

    const double value_tilt = std::tanh(user.log_value);
    for (size_t c = 0; c < num_channels; ++c) {
      const ChannelConfig& ch = w.recall.channels[c];
      double cov = ch.coverage + ch.activity * (user.activity - 0.5) + ch.value * value_tilt +
                   (user.is_new ? ch.new_user : 0.0) + (r.query_len > 0 ? ch.query : 0.0);
      cov = std::clamp(cov, 0.01, w.recall.max_coverage);
      cov = std::clamp(cov * LogNormal1(rng, w.recall.coverage_noise_sigma), 0.001,
                       w.recall.max_coverage);
      const double ratio = LogNormal1(rng, w.recall.yield_noise_sigma);
      r.coverage[c] = static_cast<float>(cov);
      r.yield[c] = static_cast<float>(ch.yield * ratio);
      r.yield_ratio[c] = static_cast<float>(ratio);
    }
    for (int s = 0; s < kNumStages; ++s)
      r.cost_noise[s] = static_cast<float>(LogNormal1(rng, w.revenue.cost_noise_sigma));
    r.score_noise[kRecall] = static_cast<float>(w.recall.score_noise_sigma * Normal(rng));
    r.score_noise[kPrerank] = static_cast<float>(w.prerank.score_noise_sigma * Normal(rng));
    r.depth[kRecall] = 1.0f;
    r.depth[kPrerank] = static_cast<float>(1.0 + w.prerank.scale_activity * (user.activity - 0.5));
    r.depth[kRank] = static_cast<float>(1.0 + w.rank.scale_activity * (user.activity - 0.5));
    r.revenue_noise = static_cast<float>(LogNormal1(rng, w.revenue.noise_sigma));
    r.timeout_u = static_cast<float>(Uniform(rng));

    if (k > 0 && gap <= w.cache.ttl_s) {
      r.cache.present = true;
      r.cache.age_s = gap;
      r.cache.exposed = exposed_before;
      r.cache.stored = stored_before;
    }
    // What this request leaves behind for the user's next one.
    stored_before = model.Reference(r, world_.layout().reference());
    exposed_before = Uniform(rng) < w.cache.no_exposure_fraction
                         ? 0
                         : std::uniform_int_distribution<int>(1, w.cache.exposure_slots)(rng);
    out.push_back(r);

    if (Uniform(rng) >= rp.fraction) break;
    gap = SampleGap(rng);
    t += gap;
    if (t >= kDaySeconds) break;  // repeats are same-day by definition
  }
}

std::vector<Request> RequestStream::Day(int day) const {
  const WorldConfig& w = world_.world();
  std::mt19937_64 rng = MakeRng(options_.seed, options_.name + "/day", static_cast<uint64_t>(day));
  const double day_factor = LogNormal1(rng, w.traffic.day_noise_sigma);
  // Each head brings 1 / (1 - fraction) requests on average.
  const double heads_per_real_s = mean_qps_ / compression_ * (1.0 - w.repeats.fraction);
  std::vector<double> heads;
  for (int minute = 0; minute < 1440; ++minute) {
    const double hour = (minute + 0.5) / 60.0;
    const double rate = heads_per_real_s * 60.0 * world_.traffic().At(day, hour) * day_factor *
                        LogNormal1(rng, w.traffic.minute_noise_sigma);
    const int n = std::poisson_distribution<int>(rate)(rng);
    for (int i = 0; i < n; ++i) heads.push_back(minute * 60.0 + 60.0 * Uniform(rng));
  }
  std::sort(heads.begin(), heads.end());
  std::vector<Request> out;
  out.reserve(static_cast<size_t>(static_cast<double>(heads.size()) / (1.0 - w.repeats.fraction)) +
              16);
  for (size_t c = 0; c < heads.size(); ++c) Chain(day, c, heads[c], rng, out);
  std::stable_sort(out.begin(), out.end(),
                   [](const Request& a, const Request& b) { return a.real_s < b.real_s; });
  if (day == 0) {
    out.erase(out.begin(), std::find_if(out.begin(), out.end(), [&](const Request& r) {
                return r.real_s >= start_real_s_;
              }));
  }
  for (Request& r : out) r.sim_s = (r.real_s - start_real_s_) / compression_;
  return out;
}

std::vector<Request> RequestStream::Take(size_t n) const {
  std::vector<Request> out;
  for (int day = 0; out.size() < n && day < kMaxDays; ++day) {
    std::vector<Request> requests = Day(day);
    const size_t take = std::min(n - out.size(), requests.size());
    out.insert(out.end(), requests.begin(), requests.begin() + static_cast<long>(take));
  }
  for (size_t i = 0; i < out.size(); ++i) out[i].index = i;
  return out;
}

std::vector<Request> RequestStream::TakeSeconds(double sim_seconds) const {
  std::vector<Request> out;
  const double day_sim_s = kDaySeconds / compression_;
  for (int day = 0; day < kMaxDays && day * day_sim_s < sim_seconds + start_real_s_ / compression_;
       ++day) {
    for (Request& r : Day(day)) {
      if (r.sim_s >= sim_seconds) break;
      out.push_back(r);
    }
  }
  for (size_t i = 0; i < out.size(); ++i) out[i].index = i;
  return out;
}

}  // namespace allot::sim
