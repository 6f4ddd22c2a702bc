// Request validation: every kind of bad input is INVALID_ARGUMENT naming its field.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "policy/analytic_scorer.h"
#include "server/request_validation.h"

namespace allot {
namespace {

class ValidationTest : public ::testing::Test {
 protected:
  ValidationResult Check(const v1::AllocateRequest& r) {
    return ValidateAllocateRequest(r, *policy_, limits_, &agent_, &caches_);
  }

  v1::AllocateRequest Valid() {
    v1::AllocateRequest r;
    r.set_request_id("r1");
    r.set_agent("rank");
    for (int i = 0; i < 8; ++i) r.add_features(0.5f);
    return r;
  }

  std::shared_ptr<const AllotConfig> config_ =
      std::make_shared<const AllotConfig>(LoadEmbeddedDefaultConfig());
  std::shared_ptr<const PolicySnapshot> policy_ =
      MakePolicySnapshot(config_, std::make_shared<const AnalyticScorer>(*config_));
  ServerConfig limits_ = LoadEmbeddedServerConfig().server;
  size_t agent_ = 99;
  std::vector<CachedStage> caches_;
};

TEST_F(ValidationTest, AcceptsAValidRequestAndResolvesTheAgent) {
  v1::AllocateRequest r = Valid();
  v1::StageCache* c = r.add_cache();
  c->set_stage(v1::STAGE_PRERANK);
  c->set_present(true);
  c->set_age_seconds(3);
  c->set_size(7);
  ASSERT_TRUE(Check(r).ok());
  EXPECT_EQ(agent_, 2u);
  ASSERT_EQ(caches_.size(), 1u);
  EXPECT_EQ(caches_[0].stage, 2);
}

TEST_F(ValidationTest, EachBadFieldIsNamed) {
  struct Case {
    std::function<void(v1::AllocateRequest&)> mutate;
    std::string field;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {[](auto& r) { r.clear_agent(); }, "agent", "is required"},
      {[](auto& r) { r.set_agent("ranker"); }, "agent", "unknown agent 'ranker'"},
      {[](auto& r) { r.add_features(1); }, "features", "expects 8 features, got 9"},
      {[](auto& r) { r.clear_features(); }, "features", "got 0"},
      {[](auto& r) { r.set_features(3, std::nanf("")); }, "features",
       "features[3] (is_new_user) is not finite"},
      {[](auto& r) { r.set_features(0, std::numeric_limits<float>::infinity()); }, "features",
       "not finite"},
      {[](auto& r) { r.set_request_id(std::string(300, 'x')); }, "request_id", "longer than 256"},
      {[](auto& r) { r.set_user_id(std::string(300, 'u')); }, "user_id", "longer than 256"},
      {[](auto& r) {
         for (int i = 0; i < 513; ++i) r.add_behavior_ids(i);
       },
       "behavior_ids", "more than 512"},
      {[](auto& r) {
         for (int i = 0; i < 9; ++i) r.add_cache()->set_stage(v1::STAGE_RANK);
       },
       "cache", "more than 8"},
      {[](auto& r) { r.add_cache()->set_stage(v1::STAGE_UNSPECIFIED); }, "cache", "cache[0].stage"},
      {[](auto& r) {
         auto* c = r.add_cache();
         c->set_stage(v1::STAGE_RANK);
         c->set_age_seconds(-1);
       },
       "cache", "age_seconds"},
      {[](auto& r) {
         r.add_cache()->set_stage(v1::STAGE_PRERANK);
         r.add_cache()->set_stage(v1::STAGE_RECALL);
         r.add_cache()->set_stage(v1::STAGE_PRERANK);
       },
       "cache", "cache[2].stage repeats"},
  };
  for (const Case& c : cases) {
    v1::AllocateRequest r = Valid();
    c.mutate(r);
    const ValidationResult v = Check(r);
    EXPECT_EQ(v.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_EQ(v.field, c.field);
    EXPECT_EQ(v.status.error_message().rfind(c.field + ": ", 0), 0u) << v.status.error_message();
    EXPECT_NE(v.status.error_message().find(c.message_part), std::string::npos)
        << v.status.error_message();
  }
}

TEST_F(ValidationTest, RejectBoundsRefuseOutOfRangeFeaturesByName) {
  AllotConfig bounded = *config_;
  FeatureBoundConfig bound;
  bound.feature = bounded.agents[2].features[1];
  bound.min = 0;
  bound.max = 1;
  bound.action = FeatureBoundConfig::Action::kReject;
  bounded.agents[2].feature_bounds.push_back(bound);
  auto config = std::make_shared<const AllotConfig>(bounded);
  policy_ = MakePolicySnapshot(config, std::make_shared<const AnalyticScorer>(*config));
  v1::AllocateRequest r = Valid();
  EXPECT_TRUE(Check(r).ok());
  r.set_features(1, 1e4f);
  const ValidationResult v = Check(r);
  EXPECT_EQ(v.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(v.field, "features");
  EXPECT_NE(v.status.error_message().find("features[1] (" + bound.feature + ") is outside"),
            std::string::npos)
      << v.status.error_message();
}

TEST_F(ValidationTest, LoadReportChecks) {
  const int64_t now = 1'700'000'000'000;
  v1::LoadReport r;
  r.set_module("rank");
  r.set_cpu_utilization(0.5);
  r.set_qps(100);
  EXPECT_TRUE(ValidateLoadReport(r, *config_, limits_, now).ok());
  auto field_of = [&](auto mutate) {
    v1::LoadReport bad = r;
    mutate(bad);
    const ValidationResult v = ValidateLoadReport(bad, *config_, limits_, now);
    EXPECT_EQ(v.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    return v.field;
  };
  EXPECT_EQ(field_of([](auto& b) { b.set_module("gpu"); }), "module");
  EXPECT_EQ(field_of([](auto& b) { b.clear_module(); }), "module");
  EXPECT_EQ(field_of([](auto& b) { b.set_cpu_utilization(std::nan("")); }), "cpu_utilization");
  EXPECT_EQ(field_of([](auto& b) { b.set_cpu_utilization(1.5); }), "cpu_utilization");
  EXPECT_EQ(field_of([](auto& b) { b.set_cpu_utilization(-0.1); }), "cpu_utilization");
  EXPECT_EQ(field_of([](auto& b) { b.set_qps(-1); }), "qps");
  EXPECT_EQ(field_of([](auto& b) { b.set_qps(INFINITY); }), "qps");
  EXPECT_EQ(field_of([&](auto& b) { b.set_timestamp_ms(now + 3'000); }), "timestamp_ms");
  EXPECT_EQ(field_of([&](auto& b) { b.set_timestamp_ms(now - 11'000); }), "timestamp_ms");
  EXPECT_EQ(field_of([](auto& b) { b.set_timestamp_ms(86'400'000); }), "timestamp_ms");  // 1970
  EXPECT_EQ(field_of([](auto& b) { b.set_qps(1e300); }), "qps");
  r.set_timestamp_ms(now + 1'000);
  EXPECT_TRUE(ValidateLoadReport(r, *config_, limits_, now).ok()) << "within max_future_skew_s";
  EXPECT_EQ(field_of([](auto& b) { b.set_timestamp_ms(-5); }), "timestamp_ms");
  EXPECT_EQ(field_of([](auto& b) { b.set_reporter(std::string(400, 'r')); }), "reporter");
}

}  // namespace
}  // namespace allot
