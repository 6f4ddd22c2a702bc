// The world's statistics match its configuration: repeat pattern, daily profile, value
// distribution; features are computed by name; bad configs name the key at fault.
#include "sim/world.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "sim/features.h"
#include "sim/request_stream.h"
#include "tests/sim/sim_test_util.h"

namespace allot::sim {
namespace {

using testing::MakeWorld;

std::vector<Request> Days(const World& world, int days, uint64_t seed = 7) {
  StreamOptions options;
  options.seed = seed;
  options.name = "test";
  const RequestStream stream(world, options);
  std::vector<Request> out;
  for (int d = 0; d < days; ++d) {
    const std::vector<Request> day = stream.Day(d);
    out.insert(out.end(), day.begin(), day.end());
  }
  return out;
}

TEST(WorldStatisticsTest, RepeatsFollowThePublishedPattern) {
  const auto world = MakeWorld();
  const std::vector<Request> requests = Days(*world, 3);
  ASSERT_GT(requests.size(), 30000u);
  double repeats = 0, within_10s = 0, within_2min = 0;
  for (const Request& r : requests) {
    if (!r.repeat) continue;
    ++repeats;
    within_10s += r.gap_s <= 10.0;
    within_2min += r.gap_s <= 120.0;
  }
  // Tolerances: the repeat share loses a little to chains cut at midnight (same-day repeats only).
  EXPECT_NEAR(repeats / static_cast<double>(requests.size()), 0.74, 0.02);
  EXPECT_NEAR(within_10s / repeats, 0.46, 0.03);
  EXPECT_NEAR(within_2min / repeats, 0.75, 0.03);
}

TEST(WorldStatisticsTest, HourlyTrafficFollowsTheDailyProfile) {
  const auto world = MakeWorld([](WorldConfig& w) { w.traffic.spikes.clear(); });
  const int days = 4;
  const std::vector<Request> requests = Days(*world, days);
  std::vector<double> all(24, 0.0), heads(24, 0.0);
  for (const Request& r : requests) {
    all[static_cast<size_t>(r.hour)] += 1;
    if (!r.repeat) heads[static_cast<size_t>(r.hour)] += 1;
  }
  std::vector<double> expected(24, 0.0);
  for (int h = 0; h < 24; ++h) {
    for (int k = 0; k < 60; ++k)
      expected[h] += world->traffic().Profile(h + (k + 0.5) / 60.0) / 60.0;
  }
  const auto share = [](const std::vector<double>& v, int h) {
    return v[h] / std::accumulate(v.begin(), v.end(), 0.0);
  };
  // Session heads follow the profile (each hour within 10%); repeats then shift traffic later
  // (same-day chains, gaps up to three hours), so all traffic only has to keep the profile's
  // shape.
  for (int h = 0; h < 24; ++h) {
    EXPECT_NEAR(share(heads, h), share(expected, h), 0.10 * share(expected, h)) << "hour " << h;
  }
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  for (int h = 0; h < 24; ++h) {
    const double x = share(expected, h), y = share(all, h);
    sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
  }
  const double correlation =
      (24 * sxy - sx * sy) / std::sqrt((24 * sxx - sx * sx) * (24 * syy - sy * sy));
  EXPECT_GT(correlation, 0.97);
  // Daily volume matches mean_qps over the simulated day (day-level noise: 5%).
  const double per_day = std::accumulate(all.begin(), all.end(), 0.0) / days;
  const double configured = world->world().traffic.mean_qps * world->world().time.day_length_s;
  EXPECT_NEAR(per_day, configured, 0.08 * configured);
}

TEST(WorldStatisticsTest, PromotionSpikesRaiseTraffic) {
  const auto world = MakeWorld([](WorldConfig& w) {
    w.traffic.spikes = {{15.0, 60.0, 2.0, -1}};
    w.repeats.fraction = 0.0;  // heads only: no smoothing by repeat gaps
  });
  const std::vector<Request> requests = Days(*world, 3);
  double in_spike = 0, before = 0;
  for (const Request& r : requests) {
    in_spike += r.hour >= 15.0 && r.hour < 16.0;
    before += r.hour >= 14.0 && r.hour < 15.0;
  }
  const double expected = 2.0 * world->traffic().Profile(15.5) / world->traffic().Profile(14.5);
  EXPECT_NEAR(in_spike / before, expected, 0.12 * expected);
}

TEST(WorldStatisticsTest, LatentValueIsLognormalAsConfigured) {
  const auto world = MakeWorld();
  const std::vector<Request> requests = Days(*world, 2);
  std::vector<double> values;
  for (const Request& r : requests) {
    if (!r.repeat) values.push_back(r.user_value);  // one draw per user
  }
  ASSERT_GT(values.size(), 5000u);
  std::sort(values.begin(), values.end());
  const auto quantile = [&](double q) {
    return values[static_cast<size_t>(q * (values.size() - 1))];
  };
  const UserConfig& u = world->world().users;
  EXPECT_NEAR(quantile(0.5), std::exp(u.value_log_mean), 0.05 * std::exp(u.value_log_mean));
  const double p90 = std::exp(u.value_log_mean + 1.2816 * u.value_log_sigma);
  const double p10 = std::exp(u.value_log_mean - 1.2816 * u.value_log_sigma);
  EXPECT_NEAR(quantile(0.9), p90, 0.08 * p90);
  EXPECT_NEAR(quantile(0.1), p10, 0.08 * p10);
}

TEST(WorldStatisticsTest, StreamsAreDeterministicBySeedAndName) {
  const auto world = MakeWorld();
  StreamOptions a;
  a.seed = 3;
  a.name = "evaluate";
  StreamOptions b = a;
  b.name = "generate";
  const auto first = RequestStream(*world, a).Take(500);
  const auto again = RequestStream(*world, a).Take(500);
  const auto other = RequestStream(*world, b).Take(500);
  ASSERT_EQ(first.size(), 500u);
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].real_s, again[i].real_s);
    EXPECT_EQ(first[i].value, again[i].value);
  }
  EXPECT_NE(first[10].value, other[10].value);
}

TEST(WorldStatisticsTest, RepeatsWithinTheTtlCarryADecayedCache) {
  const auto world = MakeWorld();
  const std::vector<Request> requests = Days(*world, 1);
  int with_cache = 0;
  for (const Request& r : requests) {
    if (!r.cache.present) continue;
    ++with_cache;
    EXPECT_TRUE(r.repeat);
    EXPECT_LE(r.cache.age_s, world->world().cache.ttl_s);
    const StageOutput fresh = r.cache.stored[kRank];
    const StageOutput usable = world->model().Cached(r, kRank);
    EXPECT_LE(usable.mass, fresh.mass);
  }
  EXPECT_GT(with_cache, 1000);
}

TEST(FeatureTest, EveryConfiguredFeatureIsComputedByName) {
  const auto world = MakeWorld();
  const std::vector<Request> requests = Days(*world, 1);
  const Request& r = requests[100];
  Upstream up;
  up.recall = {0.5, 700.0};
  up.prerank = {0.4, 200.0};
  for (const AgentLayout& agent : world->layout().chain()) {
    std::vector<float> out(agent.features.size(), -99.0f);
    ComputeFeatures(agent.features, r, up, out);
    for (size_t i = 0; i < out.size(); ++i) {
      EXPECT_TRUE(std::isfinite(out[i]));
      EXPECT_NE(out[i], -99.0f) << world->config().agents[agent.agent].features[i];
    }
  }
  std::vector<float> one(1);
  const Feature candidates = ParseFeature("recall_candidates_log", kPrerank, "x");
  ComputeFeatures({&candidates, 1}, r, up, one);
  EXPECT_FLOAT_EQ(one[0], std::log1p(700.0f));
}

TEST(FeatureTest, UnknownOrUnobservableFeaturesAreConfigErrors) {
  try {
    ParseFeature("user_shoe_size", kRecall, "agents[0].features[3]");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("agents[0].features[3]: unknown feature 'user_shoe_size'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ParseFeature("prerank_top_score", kRecall, "agents[0].features[0]"), ConfigError);
  AllotConfig config = LoadEmbeddedDefaultConfig();
  config.agents[0].features.push_back("user_shoe_size");
  try {
    World world(config, LoadEmbeddedWorldConfig());
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("agents[0].features[8]"), std::string::npos) << e.what();
  }
}

TEST(WorldConfigTest, ErrorsNameTheKey) {
  const auto error_of = [](const std::string& yaml) {
    try {
      LoadWorldConfigFromString(yaml, "test");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of("traffic: {mean_qps: -1}").rfind("traffic.mean_qps:", 0), 0u);
  EXPECT_EQ(error_of("traffic: {hourly_profile: [1, 2]}").rfind("traffic.hourly_profile:", 0), 0u);
  EXPECT_EQ(
      error_of("repeats: {gaps: [{weight: 0.5, min_s: 1, max_s: 10}]}").rfind("repeats.gaps:", 0),
      0u);
  EXPECT_EQ(
      error_of("recall: {channels: [{name: a, yeld: 3}]}").rfind("recall.channels[0].yeld:", 0),
      0u);
  std::string yaml = EmbeddedWorldYaml();
  yaml.replace(yaml.find("effect: heavy_rank"), 18, "effect: turbo");
  EXPECT_EQ(error_of(yaml).rfind("switches[1].effect:", 0), 0u) << error_of(yaml);
  EXPECT_EQ(error_of("typo: 1").rfind("typo:", 0), 0u);
  EXPECT_NO_THROW(LoadEmbeddedWorldConfig());
  // The config must not name channels the world does not model.
  AllotConfig config = LoadEmbeddedDefaultConfig();
  config.agents[0].decisions[0].options[0].label = "telepathy";
  EXPECT_THROW(World(config, LoadEmbeddedWorldConfig()), ConfigError);
}

// The held-out third chain (config/sim/world-c.yaml, measured only) fits its Allot config: three
// agents with other module names, recall and pre-rank outputs reusable and rank's not, and the
// gather agent's switch is the world's recall expansion.
TEST(HeldOutWorldTest, TheThirdChainFitsItsConfig) {
  const std::string dir = ALLOT_SOURCE_DIR;
  const World c(LoadConfigFromFile(dir + "/config/allot-c.yaml"),
                LoadWorldConfigFromFile(dir + "/config/sim/world-c.yaml"));
  ASSERT_EQ(c.layout().chain().size(), 3u);
  EXPECT_EQ(c.config().modules[static_cast<size_t>(c.layout().stage_module(kRank))].name, "score");
  EXPECT_TRUE(c.layout().reusable(kRecall));
  EXPECT_TRUE(c.layout().reusable(kPrerank));
  EXPECT_FALSE(c.layout().reusable(kRank));

  const AgentLayout& gather = c.layout().at_stage(kRecall);
  const Request r = Days(c, 1).front();
  int compared = 0;
  for (size_t off = 0; off < gather.space.size(); ++off) {
    for (size_t on = 0; on < gather.space.size(); ++on) {
      const StageSetting a = gather.Setting(off), b = gather.Setting(on);
      if (a.channels != b.channels || a.switches != 0 || b.switches == 0) continue;
      const StageResult without = c.model().Recall(r, a), with = c.model().Recall(r, b);
      EXPECT_GT(with.out.count, without.out.count);
      EXPECT_GT(with.cost, without.cost);
      ++compared;
    }
  }
  EXPECT_EQ(compared, 15);  // every non-empty set of the four channels
}

}  // namespace
}  // namespace allot::sim

namespace allot::sim {
namespace {

// The shipped continuous-queue configs fit their worlds, and overload degradation halves a
// continuous queue per step (the shipped discrete queues double from option to option).
TEST(ContinuousQueueTest, ShippedConfigsFitTheirWorldsAndDegradeByHalving) {
  const std::string dir = ALLOT_SOURCE_DIR;
  World b(LoadConfigFromFile(dir + "/config/allot-b-continuous.yaml"),
          LoadWorldConfigFromFile(dir + "/config/sim/world-b.yaml"));
  World world(LoadConfigFromFile(dir + "/config/allot-continuous.yaml"),
              LoadWorldConfigFromFile(dir + "/config/sim/world.yaml"));
  const AgentLayout& rank = world.layout().at_stage(kRank);
  const size_t position = world.layout().chain_position(kRank);
  ASSERT_EQ(world.layout().num_levels(), 3);
  auto joint = [&](int length, bool heavy) {
    for (size_t j = 0; j < rank.space.size(); ++j) {
      const StageSetting s = rank.Setting(j);
      if (s.queue_len == length && (s.switches != 0) == heavy) return static_cast<uint32_t>(j);
    }
    ADD_FAILURE() << "no joint action with queue " << length;
    return 0u;
  };
  auto degraded_length = [&](int length, int level) {
    return rank.Setting(world.layout().Degrade(position, joint(length, true), level)).queue_len;
  };
  EXPECT_EQ(degraded_length(400, 0), 400);
  EXPECT_EQ(degraded_length(400, 1), 400);  // level 1 only turns switches off
  EXPECT_EQ(rank.Setting(world.layout().Degrade(position, joint(400, true), 1)).switches, 0u);
  EXPECT_EQ(degraded_length(400, 2), 200);
  EXPECT_EQ(degraded_length(400, 3), 100);
  EXPECT_EQ(degraded_length(375, 2), 200);  // 187.5 snaps to the nearest length, 200
  EXPECT_EQ(degraded_length(75, 3), 50);    // never below the range's minimum
}

}  // namespace
}  // namespace allot::sim
