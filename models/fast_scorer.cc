// Plain-loop inference; see fast_scorer.h for why and how. Layouts follow torch: Linear weights
// are [out, in] row-major; GRU gates are ordered r, z, n.
#include "models/fast_scorer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "models/kernels.h"
#include "models/served_scores.h"
#include "policy/action_space.h"
#include "policy/analytic_scorer.h"

namespace allot::models {
namespace {

using kernels::Dot;
using kernels::GruStep;
using kernels::MatMulRows;
using kernels::Relu;
using Vec = std::vector<float>;

template <class V = Vec>
V Copy(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kFloat).contiguous();
  return V(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// A linear layer with its weights stored transposed ([in][out]) so that every loop runs over
// contiguous outputs, each row padded with zeros to the kernels' width (kernels::PaddedWidth).
struct Dense {
  int in = 0, out = 0;
  kernels::AlignedFloats wt, b;  // [in, padded out], [padded out]
  static Dense FromWeights(const torch::Tensor& weight, const torch::Tensor& bias) {
    Dense d;
    d.out = static_cast<int>(weight.size(0));
    d.in = static_cast<int>(weight.size(1));
    const int64_t pad = kernels::PaddedWidth(d.out) - d.out;
    namespace F = torch::nn::functional;
    d.wt = Copy<kernels::AlignedFloats>(F::pad(weight.t(), F::PadFuncOptions({0, pad})));
    d.b = Copy<kernels::AlignedFloats>(F::pad(bias, F::PadFuncOptions({0, pad})));
    return d;
  }
  static Dense From(torch::nn::Linear& l) { return FromWeights(l->weight, l->bias); }
  // Y[r] = W[:, 0:n] X[r, 0:n] + b for rows r < rows; X rows are ldx apart, Y rows out apart.
  void ApplyRows(const float* x, int ldx, int n, int rows, float* y) const {
    MatMulRows(wt.data(), b.data(), n, out, x, ldx, rows, y);
  }
  // y = W[:, 0:n] x[0:n] + b
  void ApplyPrefix(const float* x, int n, float* y) const { ApplyRows(x, n, n, 1, y); }
  void Apply(const float* x, float* y) const { ApplyPrefix(x, in, y); }
  // y += W[:, col]
  void AddColumn(int col, float* __restrict y) const {
    const float* __restrict row =
        wt.data() + static_cast<size_t>(col) * static_cast<size_t>(kernels::PaddedWidth(out));
    for (int o = 0; o < out; ++o) y[o] += row[o];
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

// MLP over `rows` inputs whose first layer is given as pre-activations [rows, out of layer 0]
// (already W x + b); runs the rest and leaves the last layer's pre-activations in a.
// The two buffers swap at every layer, so the callers' per-thread buffers trade places; both are
// kept at the larger capacity, or a buffer that came from a small agent's call would grow again
// (allocate) on the request path after a large agent's.
void RunRestRows(const std::vector<Dense>& layers, int rows, Vec& a, Vec& scratch) {
  if (layers.size() > 1) {
    const size_t capacity = std::max(a.capacity(), scratch.capacity());
    a.reserve(capacity);
    scratch.reserve(capacity);
  }
  for (size_t l = 1; l < layers.size(); ++l) {
    const int in = layers[l - 1].out;
    Relu(a.data(), static_cast<size_t>(rows) * in);
    scratch.resize(static_cast<size_t>(rows) * layers[l].out);
    layers[l].ApplyRows(a.data(), in, in, rows, scratch.data());
    a.swap(scratch);
  }
}

struct FastDcn {
  int in = 0;
  std::vector<Vec> cross_w, cross_b;
  std::vector<Dense> deep;
  Dense head;
  Vec head_rows;  // the head's weights untransposed: one contiguous row per output
  static FastDcn From(Dcn& d) {
    FastDcn f;
    for (size_t l = 0; l < d->cross_w.size(); ++l) {
      f.cross_w.push_back(Copy(d->cross_w[l]));
      f.cross_b.push_back(Copy(d->cross_b[l]));
    }
    f.deep = Layers(d->deep);
    f.head = Dense::From(d->head);
    f.head_rows = Copy(d->head->weight);  // [out, in + deep], row-major
    f.in = f.head.in - f.deep.back().out;
    return f;
  }
  // x: [rows, in] inputs; deep_pre: the deep tower's first-layer pre-activations for them
  // [rows, deep.front().out] (overwritten). Writes head.out outputs per row, output-major:
  // out[o * rows + r].
  void RunRows(const float* x, int rows, Vec& deep_pre, Vec& scratch, float* out) const {
    RunRestRows(deep, rows, deep_pre, scratch);
    const int last = deep.back().out;
    Relu(deep_pre.data(), static_cast<size_t>(rows) * last);
    for (int r = 0; r < rows; ++r) {
      const float* deep_out = deep_pre.data() + static_cast<size_t>(r) * last;
      CrossAndHead(x + static_cast<size_t>(r) * in, deep_out, last, out + r, rows);
    }
  }

 private:
  // The cross network x_{l+1} = x0 (w_l . x_l + b_l) + x_l on one input, then the head over the
  // cross output and the deep tower's output; output o goes to out[o * stride].
  void CrossAndHead(const float* x0, const float* deep_out, int last, float* out,
                    int stride) const {
    thread_local Vec xl;
    xl.assign(x0, x0 + in);
    for (size_t l = 0; l < cross_w.size(); ++l) {
      const float s = Dot(cross_w[l].data(), xl.data(), in);
      for (int i = 0; i < in; ++i) xl[i] = x0[i] * (s + cross_b[l][i]) + xl[i];
    }
    // Each output's head row is [in + deep]: one weight per cross output, then one per deep
    // output.
    for (int o = 0; o < head.out; ++o) {
      const float* row = head_rows.data() + static_cast<size_t>(o) * (in + last);
      out[static_cast<size_t>(o) * stride] =
          head.b[static_cast<size_t>(o)] + Dot(row, xl.data(), in) + Dot(row + in, deep_out, last);
    }
  }
};

// A TwoTower (nets.h) with its action tower evaluated at load for every joint action: output o of
// joint action j is b_o + (w_o * phi(s)) . psi(a_j), so a request costs the state tower, one
// scaled copy of phi(s) per output and one product over the joint actions' embeddings, which
// every output shares (recall's two cost outputs read 8 KB of embeddings instead of 16 KB of
// per-output products: the decision's weights are read from L2, or further in a server, at every
// call).
struct FastTwoTower {
  std::vector<Dense> state;  // the state tower's layers
  // [width + 1][joint actions]: psi(a_j) and a 1, whose weight in an output's input row is b_o.
  Dense embeddings;
  Vec head_w, head_b;  // [outputs][width], [outputs]: the outputs computed (skipped ones left out)
  size_t skipped = 0;  // leading outputs left out
  size_t joint_actions = 0;
  // skip: leading outputs that nothing reads (the own-module cost where a cost map serves it).
  static FastTwoTower From(TwoTower& t, const torch::Tensor& codes, const torch::Tensor& weight,
                           const torch::Tensor& bias, int64_t skip = 0) {
    FastTwoTower f;
    f.state = Layers(t->state_tower);
    const torch::Tensor psi = t->action_tower->forward(codes);  // [n, width]
    f.skipped = static_cast<size_t>(skip);
    f.joint_actions = static_cast<size_t>(psi.size(0));
    const torch::Tensor ones = torch::ones({psi.size(0), 1}, psi.options());
    f.embeddings = Dense::FromWeights(torch::cat({psi, ones}, 1), torch::zeros({psi.size(0)}));
    f.head_w = Copy(weight.slice(0, skip));
    f.head_b = Copy(bias.slice(0, skip));
    return f;
  }
  size_t computed() const { return head_b.size(); }
  size_t outputs() const { return skipped + computed(); }
  // out[o * n + j] for every output o and joint action j; skipped outputs are left as they are.
  void Run(const Vec& obs, int obs_dim, Vec& phi, Vec& scratch, float* out) const {
    phi.resize(static_cast<size_t>(state.front().out));
    state.front().ApplyPrefix(obs.data(), obs_dim, phi.data());
    RunRestRows(state, 1, phi, scratch);
    // One input row per output: w_o * phi(s), then b_o (against the embeddings' 1).
    const int width = embeddings.in - 1;
    const size_t row = static_cast<size_t>(embeddings.in);
    thread_local Vec rows;
    rows.resize(computed() * row);
    for (size_t o = 0; o < computed(); ++o) {
      const float* w = head_w.data() + o * static_cast<size_t>(width);
      float* x = rows.data() + o * row;
      for (int i = 0; i < width; ++i) x[i] = w[i] * phi[static_cast<size_t>(i)];
      x[width] = head_b[o];
    }
    embeddings.ApplyRows(rows.data(), static_cast<int>(row), static_cast<int>(row),
                         static_cast<int>(computed()), out + skipped * joint_actions);
  }
};

struct FastAgent {
  int width = 0, obs = 0, hidden = 0;
  bool recurrent = true;
  std::vector<int> choices;  // per decision
  std::vector<int> offsets;  // per decision: offset of its code in the action encoding
  // [decision][choice]: the positions of the code's ones within the decision's code (codes are
  // 0/1, so a choice contributes the sum of a few weight columns).
  std::vector<std::vector<std::vector<int>>> code_bits;
  std::vector<Vec> joint_digits;  // per joint action
  FastDcn value, cost;
  Dense ih, hh;                // GRU (recurrent)
  std::vector<Dense> encoder;  // MLP encoder (not recurrent)
  Vec head_w;                  // mean of the K linear heads
  float head_b = 0;
  bool factorised = false;  // then q_tower and cost_tower replace all of the above but value
  FastTwoTower q_tower;     // one output: the mean head
  FastTwoTower cost_tower;
  std::vector<Dense> actor;   // MADDPG's actor, when the bundle has one
  DecisionRanges continuous;  // per decision (ContinuousDecisions), for the actor's outputs
};

class FastScorer final : public ActionScorer {
 public:
  FastScorer(std::string version, std::vector<FastAgent> agents, std::vector<AgentServing> serving,
             ValueModelConfig value_model, ServedCostMap costs, std::vector<Dense> reuse,
             bool reuse_share_capped, std::optional<ActorServing> actor_prices)
      : version_(std::move(version)),
        agents_(std::move(agents)),
        serving_(std::move(serving)),
        value_model_(std::move(value_model)),
        costs_(std::move(costs)),
        reuse_(std::move(reuse)),
        reuse_share_capped_(reuse_share_capped),
        actor_prices_(std::move(actor_prices)) {}

  const std::string& version() const override { return version_; }
  const char* inference() const override { return "fast"; }

  bool Score(size_t index, std::span<const float> features, AgentScores* out) const override {
    if (index >= agents_.size() || static_cast<int>(features.size()) != agents_[index].width)
      return false;
    const FastAgent& a = agents_[index];
    thread_local Vec scratch, pre, obs, q, log_cost;
    // User value and bucket.
    pre.resize(static_cast<size_t>(a.value.deep.front().out));
    a.value.deep.front().Apply(features.data(), pre.data());
    float log_value = 0;
    a.value.RunRows(features.data(), 1, pre, scratch, &log_value);
    const int bucket =
        AnalyticScorer::Bucket(value_model_, std::exp(std::clamp<double>(log_value, -30.0, 30.0)));
    obs.assign(features.begin(), features.end());
    obs.resize(static_cast<size_t>(a.obs), 0.0f);
    obs[static_cast<size_t>(a.width + bucket)] = 1.0f;

    const size_t n = a.joint_digits.size();
    q.resize(n);
    const size_t outputs =
        a.factorised ? a.cost_tower.outputs() : static_cast<size_t>(a.cost.head.out);
    log_cost.resize(outputs * n);
    if (a.factorised) {
      a.q_tower.Run(obs, a.obs, pre, scratch, q.data());
      a.cost_tower.Run(obs, a.obs, pre, scratch, log_cost.data());
    } else {
      QValues(a, obs, q);
      Costs(a, obs, log_cost, scratch);
    }
    FinishScores(serving_[index], value_model_, costs_, log_value, q.data(), log_cost.data(),
                 outputs, out);
    return true;
  }

  bool ScoreReuse(size_t agent, std::span<const float> features, const AgentScores& scores,
                  std::span<const CachedStage> caches, std::span<double> retained) const override {
    if (reuse_.empty() || agent != 0 || static_cast<int>(features.size()) != agents_[0].width)
      return false;
    thread_local Vec row, a, scratch;
    for (size_t c = 0; c < caches.size(); ++c) {
      if (!ReuseInputRow(features, scores.value_bucket, static_cast<size_t>(agents_[0].obs),
                         caches[c], &row)) {
        retained[c] = 0.0;
        continue;
      }
      a.resize(static_cast<size_t>(reuse_.front().out));
      reuse_.front().Apply(row.data(), a.data());
      RunRestRows(reuse_, 1, a, scratch);
      retained[c] = RetainedShare(a[0], reuse_share_capped_);
    }
    return true;
  }

  bool Propose(size_t index, std::span<const float> features, const AgentScores& scores,
               std::span<const double> module_lambda, size_t* joint) const override {
    if (!actor_prices_ || index >= agents_.size()) return false;
    const FastAgent& a = agents_[index];
    if (a.actor.empty() || static_cast<int>(features.size()) != a.width ||
        scores.value_bucket < 0 || scores.value_bucket >= a.obs - a.width)
      return false;
    thread_local Vec input, h, scratch;
    input.assign(features.begin(), features.end());
    input.resize(static_cast<size_t>(a.obs) + actor_prices_->agents(), 0.0f);
    input[static_cast<size_t>(a.width + scores.value_bucket)] = 1.0f;
    actor_prices_->WritePrices(module_lambda, input.data() + a.obs);
    h.resize(static_cast<size_t>(a.actor.front().out));
    a.actor.front().Apply(input.data(), h.data());
    RunRestRows(a.actor, 1, h, scratch);
    *joint = ActorJoint(serving_[index].space, a.continuous, h.data());
    return true;
  }

 private:
  // The first-layer pre-activations of every joint action: the observation's part once, plus
  // the weight columns of each decision's chosen code.
  static void JointPreActivations(const FastAgent& a, const Dense& first, const Vec& obs, Vec& base,
                                  Vec& pre) {
    const size_t width = static_cast<size_t>(first.out);
    base.resize(width);
    first.ApplyPrefix(obs.data(), a.obs, base.data());
    pre.resize(a.joint_digits.size() * width);
    for (size_t j = 0; j < a.joint_digits.size(); ++j) {
      float* row = pre.data() + j * width;
      std::copy(base.begin(), base.end(), row);
      for (size_t d = 0; d < a.choices.size(); ++d) {
        for (int bit : a.code_bits[d][static_cast<size_t>(a.joint_digits[j][d])])
          first.AddColumn(a.obs + a.offsets[d] + bit, row);
      }
    }
  }

  void QValues(const FastAgent& a, const Vec& obs, Vec& q) const {
    const int H = a.hidden;
    const size_t n = a.joint_digits.size();
    if (!a.recurrent) {
      thread_local Vec base, h, scratch;
      JointPreActivations(a, a.encoder.front(), obs, base, h);
      RunRestRows(a.encoder, static_cast<int>(n), h, scratch);
      Relu(h.data(), n * static_cast<size_t>(H));
      for (size_t j = 0; j < n; ++j) q[j] = Head(a, h.data() + j * H);
      return;
    }
    // GRU over decisions, one state per decision prefix, all states in one flat buffer. Every
    // step's code sits at the same columns (obs .. obs + widest code), so the input
    // pre-activation of each decision's option is computed once per request, not per prefix.
    // The hidden one is the same for every option: computed once per prefix and step.
    const size_t G = static_cast<size_t>(3 * H);
    thread_local Vec gi_obs, gi, gh, cur, next, gates;
    thread_local std::vector<size_t> first_option;  // per decision, into gi
    gi_obs.resize(G);
    a.ih.ApplyPrefix(obs.data(), a.obs, gi_obs.data());  // W_ih[:, obs] obs + b_ih
    first_option.clear();
    size_t options = 0;
    for (size_t d = 0; d < a.choices.size(); ++d) {
      first_option.push_back(options);
      options += static_cast<size_t>(a.choices[d]);
    }
    gi.resize(options * G);
    for (size_t d = 0; d < a.choices.size(); ++d) {
      for (size_t c = 0; c < static_cast<size_t>(a.choices[d]); ++c) {
        float* row = gi.data() + (first_option[d] + c) * G;
        std::copy(gi_obs.begin(), gi_obs.end(), row);
        for (int bit : a.code_bits[d][c]) a.ih.AddColumn(a.obs + bit, row);
      }
    }
    gates.resize(G);
    cur.assign(static_cast<size_t>(H), 0.0f);  // the empty prefix
    size_t count = 1;
    for (size_t d = 0; d < a.choices.size(); ++d) {
      const size_t C = static_cast<size_t>(a.choices[d]);
      gh.resize(count * G);
      a.hh.ApplyRows(cur.data(), H, H, static_cast<int>(count), gh.data());
      next.resize(count * C * static_cast<size_t>(H));
      for (size_t p = 0; p < count; ++p) {
        for (size_t c = 0; c < C; ++c) {
          GruStep(gi.data() + (first_option[d] + c) * G, gh.data() + p * G, cur.data() + p * H, H,
                  gates.data(), next.data() + (p * C + c) * H);
        }
      }
      cur.swap(next);
      count *= C;
    }
    // After the last decision, prefixes are exactly the joint actions in joint-index order.
    for (size_t j = 0; j < n; ++j) q[j] = Head(a, cur.data() + j * H);
  }

  static float Head(const FastAgent& a, const float* h) {
    float s = a.head_b;
    for (int i = 0; i < a.hidden; ++i) s += a.head_w[i] * h[i];
    return s;
  }

  // The cost model on every joint action, as one batch of rows: log core-ms per output and
  // joint, output-major.
  void Costs(const FastAgent& a, const Vec& obs, Vec& log_cost, Vec& scratch) const {
    const FastDcn& net = a.cost;
    const size_t n = a.joint_digits.size();
    const size_t in = static_cast<size_t>(net.in);
    thread_local Vec base, pre, x;
    JointPreActivations(a, net.deep.front(), obs, base, pre);
    x.assign(n * in, 0.0f);
    for (size_t j = 0; j < n; ++j) {
      float* row = x.data() + j * in;
      std::copy(obs.begin(), obs.end(), row);
      for (size_t d = 0; d < a.choices.size(); ++d) {
        for (int bit : a.code_bits[d][static_cast<size_t>(a.joint_digits[j][d])])
          row[a.obs + a.offsets[d] + bit] = 1.0f;
      }
    }
    net.RunRows(x.data(), static_cast<int>(n), pre, scratch, log_cost.data());
  }

  std::string version_;
  std::vector<FastAgent> agents_;
  std::vector<AgentServing> serving_;
  ValueModelConfig value_model_;
  ServedCostMap costs_;
  std::vector<Dense> reuse_;                  // empty: no reuse model served
  bool reuse_share_capped_ = false;           // Architecture::reuse_share_capped
  std::optional<ActorServing> actor_prices_;  // set when the bundle's agents have actors
};

}  // namespace

std::shared_ptr<const ActionScorer> MakeFastScorer(const std::string& version, BundleModels& models,
                                                   const AllotConfig& config,
                                                   const std::vector<double>& calib_a,
                                                   const std::vector<double>& calib_b,
                                                   ServedCostMap costs, bool reuse_model) {
  torch::NoGradGuard no_grad;
  std::vector<FastAgent> agents;
  std::vector<AgentServing> serving;
  for (size_t i = 0; i < config.agents.size(); ++i) {
    AgentQNet& q = models->q[i];
    if (!q->fused_heads && !q->tower) return nullptr;
    FastAgent a;
    a.width = static_cast<int>(models->widths[i]);
    a.obs = static_cast<int>(models->obs_dim(i));
    a.recurrent = q->recurrent;
    int offset = 0;
    for (const torch::Tensor& code : models->codes[i]) {
      a.choices.push_back(static_cast<int>(code.size(0)));
      a.offsets.push_back(offset);
      offset += static_cast<int>(code.size(1));
      std::vector<std::vector<int>> bits(static_cast<size_t>(code.size(0)));
      const auto c = code.accessor<float, 2>();
      for (int64_t k = 0; k < code.size(0); ++k) {
        for (int64_t b = 0; b < code.size(1); ++b) {
          if (c[k][b] != 0.0f) bits[static_cast<size_t>(k)].push_back(static_cast<int>(b));
        }
      }
      a.code_bits.push_back(std::move(bits));
    }
    const ActionSpace space(config.agents[i]);
    const torch::Tensor digits = AllJointDigits(space).to(torch::kFloat);
    for (int64_t j = 0; j < digits.size(0); ++j) a.joint_digits.push_back(Copy(digits[j]));
    a.value = FastDcn::From(models->value[i]);
    AgentServing agent_serving(config, i, calib_a[i], calib_b[i], costs);
    if (q->tower) {
      const torch::Tensor codes = models->ActionCode(i, AllJointDigits(space));
      a.factorised = true;
      a.q_tower = FastTwoTower::From(q->tower, codes, q->tower->head->weight.mean(0, true),
                                     q->tower->head->bias.mean(0, true));
      TwoTower& cost = models->cost_tower[i];
      // Where the cost map serves the agent's own-module cost, FinishScores never reads the
      // model's (output 0): it is not computed.
      a.cost_tower = FastTwoTower::From(cost, codes, cost->head->weight, cost->head->bias,
                                        agent_serving.OwnCostFromMap(costs) ? 1 : 0);
    } else {
      a.cost = FastDcn::From(models->cost[i]);
      if (a.recurrent) {
        a.hidden = static_cast<int>(q->gru->options.hidden_size());
        auto p = q->gru->named_parameters();
        a.ih = Dense::FromWeights(p["weight_ih_l0"], p["bias_ih_l0"]);
        a.hh = Dense::FromWeights(p["weight_hh_l0"], p["bias_hh_l0"]);
      } else {
        a.encoder = Layers(q->encoder);
        a.hidden = a.encoder.back().out;
      }
      a.head_w = Copy(q->fused_heads->weight.mean(0));
      a.head_b = q->fused_heads->bias.mean().item<float>();
    }
    if (!models->actor.empty()) {
      a.actor = Layers(models->actor[i]);
      a.continuous = models->continuous[i];
    }
    agents.push_back(std::move(a));
    serving.push_back(std::move(agent_serving));
  }
  std::vector<Dense> reuse;
  if (reuse_model) reuse = Layers(models->reuse);
  return std::make_shared<FastScorer>(version, std::move(agents), std::move(serving),
                                      config.value_model, std::move(costs), std::move(reuse),
                                      models->arch.reuse_share_capped, models->ActorPrices(config));
}

}  // namespace allot::models
