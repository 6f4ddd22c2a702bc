// MADDPG (seed 002: cooperative multi-agent DDPG) on Allot's chain, as allot-train's phases after
// the per-agent action values (models-internal: includes LibTorch).
//
// - The centralised critic reads every agent's observation and action code (JointState) and
//   predicts the request's revenue (log revenue = the last agent's log user value + output 0)
//   and the core-ms of every agent's step (outputs 1..), with the Poisson losses of the other
//   models, on the rows where every agent ran. So Q = revenue - sum over steps of lambda x
//   core-ms counts each module's compute once, and an upstream choice's effect on a later
//   module's compute (more recall channels, more pre-rank work) is in the gradient. A request is
//   one episode whose only reward comes at the end of the chain, so the targets are what was
//   logged (y = r): there is no next state, and no target critic to bootstrap from.
// - Each agent's deterministic actor reads its own observation and the prices of every agent's
//   module, and is trained through the critic to maximise that Q at prices drawn afresh for every
//   row across the range the logs were priced over (widened): so the served actor follows
//   whatever price the controller sets, where an actor without the price would serve one.
// - A continuous queue is one actor output, sigmoid(raw) of the way from min to max; its code is
//   the interpolation between the two nearest grid lengths' codes, so the critic's and the cost
//   model's gradients reach it. A discrete decision (channels, switches, listed queues) is one
//   logit per choice, relaxed by straight-through Gumbel-softmax: the critic sees a sampled
//   one-hot choice, as in its training data, and the gradient is the softmax's. The two noises
//   (Gaussian on the queue position, Gumbel on the logits) are the exploration of the policy
//   gradient. Training is offline, from logs: exploring the chain itself is the logging policy's
//   job (EpsilonGreedyPolicy in the simulator, the server's shadow and exploration settings).
// - The actors' target networks are Polyak averages of their weights (soft updates); the
//   averaged actors are the ones served, which steadies the policy against the last batches.
#pragma once

#include <map>
#include <string>

#include "models/bundle_models.h"
#include "models/trainer.h"
#include "models/training_steps.h"

namespace allot::models {

struct ActorCriticRun {
  StepLoop steps;
  BundleModels models;
  const AllotConfig& config;
  const TrainOptions& options;
  const RowTensors& val;  // the validation rows, derived
  const TrainingLog& val_log;
  std::map<std::string, double>& metrics;
};

// The actor's raw outputs: obs [B, obs_dim], prices [B, agents] (in [-1, 1], as
// ActorServing::WritePrices writes them) -> [B, ActorOutputs].
torch::Tensor ActorRaw(BundleModelsImpl& models, size_t agent, const torch::Tensor& obs,
                       const torch::Tensor& prices);
// The action code of raw actor outputs (see above), differentiable in them; `explore` adds the
// training noises (else: the queue at its exact position, the softmax's argmax one-hot).
torch::Tensor RelaxedActorCode(BundleModelsImpl& models, size_t agent, const torch::Tensor& raw,
                               bool explore);
// The critic's predictions for every agent's observation and code: [B, 1 + agents], the log of
// the revenue / revenue scale, then the log core-ms of each agent's step.
torch::Tensor CriticOutputs(BundleModelsImpl& models, const torch::Tensor& last_log_base,
                            const std::vector<torch::Tensor>& obs,
                            const std::vector<torch::Tensor>& codes);

// The price range the actors train over, per agent's module, from the validation rows' logged
// prices (see PriceRange in maddpg.cc); written into the models' log_lambda buffers.
void SetPriceRange(BundleModelsImpl& models, const AllotConfig& config, const TrainingLog& log);
void FitCentralCritic(ActorCriticRun& run);
void FitActors(ActorCriticRun& run);

}  // namespace allot::models
