// Plain-loop inference; see fast_scorer.h for why and how. Layouts follow torch: Linear weights
// are [out, in] row-major; GRU gates are ordered r, z, n.
#include "models/fast_scorer.h"

#include <algorithm>
#include <cmath>

#include "policy/action_space.h"
#include "policy/analytic_scorer.h"

namespace allot::models {
namespace {

using Vec = std::vector<float>;

Vec Copy(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kFloat).contiguous();
  return Vec(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// A linear layer with its weights stored transposed ([in][out]) so that every loop runs over
// contiguous outputs: y += x[i] * W^T[i] vectorises without reassociating any sum.
struct Dense {
  int in = 0, out = 0;
  Vec wt, b;  // [in, out], [out]
  static Dense FromWeights(const torch::Tensor& weight, const torch::Tensor& bias) {
    Dense d;
    d.out = static_cast<int>(weight.size(0));
    d.in = static_cast<int>(weight.size(1));
    d.wt = Copy(weight.t());
    d.b = Copy(bias);
    return d;
  }
  static Dense From(torch::nn::Linear& l) { return FromWeights(l->weight, l->bias); }
  // y = W[:, 0:n] x[0:n] + b
  void ApplyPrefix(const float* x, int n, float* y) const {
    std::copy(b.begin(), b.end(), y);
    for (int i = 0; i < n; ++i) AddScaledRow(i, x[i], y);
  }
  void Apply(const float* x, float* y) const { ApplyPrefix(x, in, y); }
  // y += W[:, col]
  void AddColumn(int col, float* y) const { AddScaledRow(col, 1.0f, y); }
  void AddScaledRow(int i, float scale, float* __restrict y) const {
    const float* __restrict row = wt.data() + static_cast<size_t>(i) * out;
    for (int o = 0; o < out; ++o) y[o] += scale * row[o];
  }
};

std::vector<Dense> Layers(Mlp& mlp) {
  std::vector<Dense> out;
  for (const auto& m : mlp->layers->children()) {
    if (auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(m)) {
      torch::nn::Linear holder(linear);
      out.push_back(Dense::From(holder));
    }
  }
  return out;
}

void Relu(float* x, int n) {
  for (int i = 0; i < n; ++i) x[i] = std::max(0.0f, x[i]);
}

// tanh by Lambert's continued fraction (abs. error < 2e-7 on [-4.97, 4.97], clamped beyond):
// the GRU evaluates thousands of gates per request and std::tanh/std::exp would dominate.
inline float FastTanh(float x) {
  x = std::clamp(x, -4.97f, 4.97f);
  const float x2 = x * x;
  const float p = x * (135135.0f + x2 * (17325.0f + x2 * (378.0f + x2)));
  const float q = 135135.0f + x2 * (62370.0f + x2 * (3150.0f + x2 * 28.0f));
  return std::clamp(p / q, -1.0f, 1.0f);
}

inline float FastSigmoid(float x) { return 0.5f * FastTanh(0.5f * x) + 0.5f; }

// MLP whose first layer's input is given as a pre-activation (already W x + b); runs the rest.
void RunRest(const std::vector<Dense>& layers, Vec& a, Vec& scratch) {
  for (size_t l = 1; l < layers.size(); ++l) {
    Relu(a.data(), layers[l - 1].out);
    scratch.resize(static_cast<size_t>(layers[l].out));
    layers[l].Apply(a.data(), scratch.data());
    a.swap(scratch);
  }
}

struct FastDcn {
  int in = 0;
  std::vector<Vec> cross_w, cross_b;
  std::vector<Dense> deep;
  Dense head;
  static FastDcn From(Dcn& d) {
    FastDcn f;
    for (size_t l = 0; l < d->cross_w.size(); ++l) {
      f.cross_w.push_back(Copy(d->cross_w[l]));
      f.cross_b.push_back(Copy(d->cross_b[l]));
    }
    f.deep = Layers(d->deep);
    f.head = Dense::From(d->head);
    f.in = f.head.in - f.deep.back().out;
    return f;
  }
  // x: full input; deep_pre: the deep tower's first-layer pre-activation for x (overwritten).
  float Run(const float* x, Vec& deep_pre, Vec& scratch) const {
    thread_local Vec xl;
    xl.assign(x, x + in);
    for (size_t l = 0; l < cross_w.size(); ++l) {
      float s = 0;
      for (int i = 0; i < in; ++i) s += cross_w[l][i] * xl[i];
      for (int i = 0; i < in; ++i) xl[i] = x[i] * (s + cross_b[l][i]) + xl[i];
    }
    RunRest(deep, deep_pre, scratch);
    Relu(deep_pre.data(), deep.back().out);
    float out = head.b[0];
    for (int i = 0; i < in; ++i) out += head.wt[i] * xl[i];  // [in + deep, 1]: one weight per input
    for (int i = 0; i < deep.back().out; ++i) out += head.wt[in + i] * deep_pre[i];
    return out;
  }
};

struct FastAgent {
  int width = 0, obs = 0, hidden = 0, max_choices = 0;
  bool recurrent = true;
  std::vector<int> choices;       // per decision
  std::vector<int> offsets;       // per decision: offset of its one-hot in the action encoding
  std::vector<Vec> joint_digits;  // per joint action
  FastDcn value, cost;
  Dense ih, hh;                // GRU (recurrent)
  std::vector<Dense> encoder;  // MLP encoder (not recurrent)
  Vec head_w;                  // mean of the K linear heads
  float head_b = 0;
  double calib_a = 0, calib_b = 1;
};

class FastScorer final : public ActionScorer {
 public:
  FastScorer(std::string version, std::vector<FastAgent> agents, ValueModelConfig value_model)
      : version_(std::move(version)),
        agents_(std::move(agents)),
        value_model_(std::move(value_model)) {}

  const std::string& version() const override { return version_; }

  bool Score(size_t index, std::span<const float> features, AgentScores* out) const override {
    if (index >= agents_.size() || static_cast<int>(features.size()) != agents_[index].width)
      return false;
    const FastAgent& a = agents_[index];
    thread_local Vec scratch, pre, obs;
    // User value and bucket.
    pre.resize(static_cast<size_t>(a.value.deep.front().out));
    a.value.deep.front().Apply(features.data(), pre.data());
    out->user_value =
        std::exp(std::clamp<double>(a.value.Run(features.data(), pre, scratch), -30.0, 30.0));
    out->value_bucket = AnalyticScorer::Bucket(value_model_, out->user_value);
    obs.assign(features.begin(), features.end());
    obs.resize(static_cast<size_t>(a.obs), 0.0f);
    obs[static_cast<size_t>(a.width + out->value_bucket)] = 1.0f;

    const size_t n = a.joint_digits.size();
    out->value.resize(n);
    out->cost.resize(n);
    QValues(a, obs, out->value);
    for (size_t j = 0; j < n; ++j) out->value[j] = a.calib_a + a.calib_b * out->value[j];
    Costs(a, obs, out->cost, scratch);
    return true;
  }

 private:
  void QValues(const FastAgent& a, const Vec& obs, std::vector<double>& q) const {
    const int H = a.hidden;
    const size_t n = a.joint_digits.size();
    if (!a.recurrent) {
      thread_local Vec base, h, scratch;
      base.resize(static_cast<size_t>(a.encoder.front().out));
      a.encoder.front().ApplyPrefix(obs.data(), a.obs, base.data());
      for (size_t j = 0; j < n; ++j) {
        h = base;
        for (size_t d = 0; d < a.choices.size(); ++d) {
          a.encoder.front().AddColumn(a.obs + a.offsets[d] + static_cast<int>(a.joint_digits[j][d]),
                                      h.data());
        }
        RunRest(a.encoder, h, scratch);
        Relu(h.data(), H);
        q[j] = Head(a, h.data());
      }
      return;
    }
    // GRU over decisions, one state per decision prefix, all states in one flat buffer.
    thread_local Vec gi_obs, cur, next, gh, gi;
    gi_obs.resize(static_cast<size_t>(3 * H));
    a.ih.ApplyPrefix(obs.data(), a.obs,
                     gi_obs.data());  // W_ih[:, obs] obs + b_ih, shared by all steps
    gh.resize(static_cast<size_t>(3 * H));
    gi.resize(static_cast<size_t>(3 * H));
    cur.assign(static_cast<size_t>(H), 0.0f);  // the empty prefix
    size_t count = 1;
    for (size_t d = 0; d < a.choices.size(); ++d) {
      const int C = a.choices[d];
      next.resize(count * static_cast<size_t>(C) * H);
      for (size_t p = 0; p < count; ++p) {
        const float* h = cur.data() + p * H;
        a.hh.Apply(h, gh.data());
        for (int c = 0; c < C; ++c) {
          std::copy(gi_obs.begin(), gi_obs.end(), gi.begin());
          a.ih.AddColumn(a.obs + c, gi.data());
          float* h2 = next.data() + (p * C + c) * H;
          for (int i = 0; i < H; ++i) {
            const float r = FastSigmoid(gi[i] + gh[i]);
            const float z = FastSigmoid(gi[H + i] + gh[H + i]);
            const float nn = FastTanh(gi[2 * H + i] + r * gh[2 * H + i]);
            h2[i] = (1 - z) * nn + z * h[i];
          }
        }
      }
      cur.swap(next);
      count *= static_cast<size_t>(C);
    }
    // After the last decision, prefixes are exactly the joint actions in joint-index order.
    for (size_t j = 0; j < n; ++j) q[j] = Head(a, cur.data() + j * H);
  }

  static float Head(const FastAgent& a, const float* h) {
    float s = a.head_b;
    for (int i = 0; i < a.hidden; ++i) s += a.head_w[i] * h[i];
    return s;
  }

  void Costs(const FastAgent& a, const Vec& obs, std::vector<double>& cost, Vec& scratch) const {
    const FastDcn& net = a.cost;
    thread_local Vec base, pre, x;
    base.resize(static_cast<size_t>(net.deep.front().out));
    net.deep.front().ApplyPrefix(obs.data(), a.obs, base.data());
    x.resize(static_cast<size_t>(net.in));
    for (size_t j = 0; j < a.joint_digits.size(); ++j) {
      std::fill(x.begin(), x.end(), 0.0f);
      std::copy(obs.begin(), obs.end(), x.begin());
      pre = base;
      for (size_t d = 0; d < a.choices.size(); ++d) {
        const int col = a.obs + a.offsets[d] + static_cast<int>(a.joint_digits[j][d]);
        x[static_cast<size_t>(col)] = 1.0f;
        net.deep.front().AddColumn(col, pre.data());
      }
      cost[j] = std::max(0.0f, net.Run(x.data(), pre, scratch));
    }
  }

  std::string version_;
  std::vector<FastAgent> agents_;
  ValueModelConfig value_model_;
};

}  // namespace

std::shared_ptr<const ActionScorer> MakeFastScorer(const std::string& version, BundleModels& models,
                                                   const AllotConfig& config,
                                                   const std::vector<double>& calib_a,
                                                   const std::vector<double>& calib_b) {
  torch::NoGradGuard no_grad;
  std::vector<FastAgent> agents;
  for (size_t i = 0; i < config.agents.size(); ++i) {
    AgentQNet& q = models->q[i];
    if (!q->fused_heads) return nullptr;
    FastAgent a;
    a.width = static_cast<int>(models->widths[i]);
    a.obs = static_cast<int>(models->obs_dim(i));
    a.recurrent = q->recurrent;
    a.max_choices = static_cast<int>(q->max_choices);
    int offset = 0;
    for (int64_t c : models->choices[i]) {
      a.choices.push_back(static_cast<int>(c));
      a.offsets.push_back(offset);
      offset += static_cast<int>(c);
    }
    const ActionSpace space(config.agents[i]);
    const torch::Tensor digits = AllJointDigits(space).to(torch::kFloat);
    for (int64_t j = 0; j < digits.size(0); ++j) a.joint_digits.push_back(Copy(digits[j]));
    a.value = FastDcn::From(models->value[i]);
    a.cost = FastDcn::From(models->cost[i]);
    if (a.recurrent) {
      a.hidden = static_cast<int>(q->gru->options.hidden_size());
      auto p = q->gru->named_parameters();
      a.ih = Dense::FromWeights(p["weight_ih_l0"], p["bias_ih_l0"]);
      a.hh = Dense::FromWeights(p["weight_hh_l0"], p["bias_hh_l0"]);
      // Every GRU step's one-hot sits at the same columns, obs .. obs + max_choices.
    } else {
      a.encoder = Layers(q->encoder);
      a.hidden = a.encoder.back().out;
    }
    a.head_w = Copy(q->fused_heads->weight.mean(0));
    a.head_b = q->fused_heads->bias.mean().item<float>();
    a.calib_a = calib_a[i];
    a.calib_b = calib_b[i];
    agents.push_back(std::move(a));
  }
  return std::make_shared<FastScorer>(version, std::move(agents), config.value_model);
}

}  // namespace allot::models
