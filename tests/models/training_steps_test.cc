// The losses the action values train with, apart from any network.
#include "models/training_steps.h"

#include <gtest/gtest.h>

#include <cmath>

namespace allot::models {
namespace {

// One request's share of the central loss: the mixed value 20% above its revenue, for a request
// whose predicted user value (and revenue) is `value`.
double CentralLossOfOne(double value, const std::string& q_weighting) {
  const torch::Tensor q_tot = torch::tensor({1.2 * value}, torch::kDouble);
  const torch::Tensor reward = torch::tensor({value}, torch::kDouble);
  const torch::Tensor log_base = torch::tensor({std::log(value)}, torch::kDouble);
  return CentralLoss(q_tot, reward, torch::ones({1}, torch::kDouble), log_base, q_weighting)
      .item<double>();
}

// The mixer's loss weighs a request as the agents' Poisson losses do: by its relative error under
// --q-weighting relative, by its error over its value (Poisson's variance) under revenue. A plain
// squared error would weigh the ten-times-as-valuable request a hundred times as much.
TEST(CentralLossTest, WeighsARequestAsTheAgentsLossesDo) {
  EXPECT_NEAR(CentralLossOfOne(10.0, "relative"), CentralLossOfOne(1.0, "relative"), 1e-12);
  EXPECT_NEAR(CentralLossOfOne(10.0, "revenue"), 10 * CentralLossOfOne(1.0, "revenue"), 1e-12);
  EXPECT_NEAR(CentralLossOfOne(1.0, "relative"), 0.04, 1e-12);
}

// Only requests whose whole chain ran have a mixed value; the rest count for nothing.
TEST(CentralLossTest, CountsOnlyRequestsOfTheWholeChain) {
  const torch::Tensor q_tot = torch::tensor({2.0, 1.0}, torch::kDouble);
  const torch::Tensor reward = torch::tensor({1.0, 1.0}, torch::kDouble);
  const torch::Tensor log_base = torch::zeros({2}, torch::kDouble);
  const torch::Tensor full_chain = torch::tensor({0.0, 1.0}, torch::kDouble);
  EXPECT_EQ(CentralLoss(q_tot, reward, full_chain, log_base, "relative").item<double>(), 0.0);
}

// A distilled student learns, on every head, the teacher's heads' mean less `pessimism` standard
// deviations across them: lower where the ensemble disagrees, as it is where it agrees.
TEST(DistillationTargetTest, IsTheHeadsLowerBound) {
  const torch::Tensor q = torch::tensor({1.0, 3.0, 2.0, 2.0}, torch::kDouble).reshape({2, 2});
  const torch::Tensor target = DistillationTarget(q, 1.0);
  ASSERT_EQ(target.sizes(), q.sizes());
  for (int64_t head = 0; head < 2; ++head) {
    EXPECT_NEAR(target[0][head].item<double>(), 2.0 - std::sqrt(2.0), 1e-12);
    EXPECT_NEAR(target[1][head].item<double>(), 2.0, 1e-12);
  }
  EXPECT_NEAR(DistillationTarget(q, 2.0)[0][0].item<double>(), 2.0 - 2 * std::sqrt(2.0), 1e-12);
}

// Without pessimism, or with one head (nothing to disagree), the heads are learnt as they are.
TEST(DistillationTargetTest, KeepsTheHeadsWithoutPessimismOrEnsemble) {
  const torch::Tensor q = torch::tensor({1.0, 3.0, 2.0, 2.0}, torch::kDouble).reshape({2, 2});
  EXPECT_TRUE(torch::equal(DistillationTarget(q, 0.0), q));
  const torch::Tensor one_head = torch::tensor({1.0, 3.0}, torch::kDouble).reshape({2, 1});
  EXPECT_TRUE(torch::equal(DistillationTarget(one_head, 1.0), one_head));
}

}  // namespace
}  // namespace allot::models
