// The LibTorch modules: output shapes, gradients reaching every parameter, and the mixer's
// monotonicity.
#include "models/nets.h"

#include <gtest/gtest.h>

namespace allot::models {
namespace {

// One-hot codes: choice c of a decision with n choices is row c of the n x n identity.
ChoiceCodes OneHotCodes(const std::vector<int64_t>& choices) {
  ChoiceCodes codes;
  for (int64_t n : choices) codes.push_back(torch::eye(n));
  return codes;
}

void ExpectAllParametersGetGradients(torch::nn::Module& module, torch::Tensor loss) {
  loss.backward();
  for (const auto& p : module.named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
}

TEST(NetsTest, DcnShapesAndGradients) {
  torch::manual_seed(1);
  Dcn dcn(6, 3, std::vector<int64_t>{16, 8}, 2);
  const torch::Tensor y = dcn->forward(torch::randn({5, 6}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{5, 2}));
  ExpectAllParametersGetGradients(*dcn, y.pow(2).sum());
}

TEST(NetsTest, MmoeGivesOneOutputPerTask) {
  torch::manual_seed(2);
  Mmoe mmoe(6, 4, 8, 3, std::vector<int64_t>{4}, 2);
  const auto outs = mmoe->forward(torch::randn({7, 6}));
  ASSERT_EQ(outs.size(), 3u);
  torch::Tensor loss = torch::zeros({});
  for (const auto& o : outs) {
    EXPECT_EQ(o.sizes(), (std::vector<int64_t>{7, 2}));
    loss = loss + o.pow(2).sum();
  }
  ExpectAllParametersGetGradients(*mmoe, loss);
}

TEST(NetsTest, AgentQNetScoresEveryHeadRecurrentOrNot) {
  torch::manual_seed(3);
  for (bool recurrent : {true, false}) {
    for (const std::vector<int64_t>& head_hidden :
         {std::vector<int64_t>{}, std::vector<int64_t>{8}}) {
      AgentQNet q(5, OneHotCodes({31, 2}), 12, head_hidden, 4, recurrent, 0.0);
      const torch::Tensor choices =
          torch::stack({torch::randint(0, 31, {9}), torch::randint(0, 2, {9})}, 1);
      const torch::Tensor y = q->forward(torch::randn({9, 5}), choices);
      EXPECT_EQ(y.sizes(), (std::vector<int64_t>{9, 4}));
      ExpectAllParametersGetGradients(*q, y.pow(2).sum());
    }
  }
}

TEST(NetsTest, RecurrentQDependsOnEveryDecision) {
  torch::manual_seed(4);
  AgentQNet q(3, OneHotCodes({4, 2}), 8, std::vector<int64_t>{}, 1, true, 0.0);
  const torch::Tensor obs = torch::randn({1, 3}).expand({2, 3});
  const torch::Tensor y = q->forward(obs, torch::tensor({{1, 0}, {1, 1}}, torch::kInt64));
  EXPECT_GT((y[0] - y[1]).abs().item<double>(), 1e-6);
  const torch::Tensor z = q->forward(obs, torch::tensor({{0, 1}, {3, 1}}, torch::kInt64));
  EXPECT_GT((z[0] - z[1]).abs().item<double>(), 1e-6);
}

// Options that share channels or lengths share code bits: a channel set is the multi-hot of its
// channels, a queue a thermometer over the lengths (whatever order the config lists them in), a
// switch one bit.
TEST(NetsTest, ChoiceCodesShareStructureBetweenOptions) {
  const AllotConfig config = LoadConfigFromString(R"(
modules: [{name: m, cpu_target: 0.5, cpu_hard_limit: 0.9, initial_lambda: 0.0}]
value_model: {bias: 0.0, bucket_bounds: [1.0], weights: {}}
agents:
  - name: a
    module: m
    features: [f]
    decisions:
      - {name: ch, kind: link, min_selected: 1, safe_default: [x],
         options: [{name: x, gain: [0, 0], cost_ms: 1}, {name: y, gain: [0, 0], cost_ms: 1}]}
      - {name: q, kind: queue, safe_default: "10",
         options: [{length: 30, gain: [0, 0], cost_ms: 3}, {length: 10, gain: [0, 0], cost_ms: 1},
                   {length: 20, gain: [0, 0], cost_ms: 2}]}
      - {name: s, kind: switch, safe_default: "off",
         options: [{name: "off", gain: [0, 0], cost_ms: 0}, {name: "on", gain: [0, 0], cost_ms: 1}]}
cache_reuse: {enabled: false}
)",
                                                  "codes");
  const ChoiceCodes codes = MakeChoiceCodes(config.agents[0]);
  ASSERT_EQ(codes.size(), 3u);
  // Channel sets {x}, {y}, {x, y} in mask order.
  EXPECT_TRUE(torch::equal(codes[0], torch::tensor({{1.f, 0.f}, {0.f, 1.f}, {1.f, 1.f}})));
  // Lengths 30, 10, 20: the number of shorter lengths, as a thermometer of width 2.
  EXPECT_TRUE(torch::equal(codes[1], torch::tensor({{1.f, 1.f}, {0.f, 0.f}, {1.f, 0.f}})));
  EXPECT_TRUE(torch::equal(codes[2], torch::tensor({{0.f}, {1.f}})));
}

TEST(NetsTest, MixerIsMonotoneInEveryAgentsQ) {
  torch::manual_seed(5);
  MonotoneMixer mixer(3, 10, 16);
  for (int trial = 0; trial < 20; ++trial) {
    const torch::Tensor q = (torch::randn({64, 3}) * 5).requires_grad_(true);
    const torch::Tensor state = torch::randn({64, 10}) * 3;
    const torch::Tensor total = mixer->forward(q, state);
    EXPECT_EQ(total.sizes(), (std::vector<int64_t>{64}));
    const torch::Tensor grad = torch::autograd::grad({total.sum()}, {q})[0];
    EXPECT_GE(grad.min().item<double>(), 0.0) << "trial " << trial;
  }
}

TEST(NetsTest, UpliftModelGivesBaseAndThreeTreatmentLogits) {
  torch::manual_seed(6);
  UpliftModel model(4, 100, 8, 16);
  const torch::Tensor logits =
      model->forward(torch::randn({3, 4}), torch::randint(0, 100, {3, 12}));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, 4}));
  ExpectAllParametersGetGradients(*model, logits.pow(2).sum());
}

}  // namespace
}  // namespace allot::models
