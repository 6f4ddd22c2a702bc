// The action-value methods allot-train knows (ALGORITHMS.md section 3), as one table of traits:
// adding a method is one row here plus whatever new mechanism it brings. No LibTorch here.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace allot::models {

// How the agents' values are coupled by the central loss.
enum class Mixer {
  kNone,      // independent learners
  kSum,       // value decomposition: Q_tot = mean of the agents' Qs (vdn)
  kMonotone,  // monotone hypernetwork mixer over the global state (qmix, awrq)
};

struct AlgorithmTraits {
  std::string_view name;
  bool recurrent;    // GRU over the agent's decisions; else an MLP encoder
  bool multi_head;   // K heads with error-proportional weights; else one head
  bool vgca_credit;  // agents' losses weighted by VGCA credit (variance of E[R | action])
  Mixer mixer;
  // Share of the central loss's gradient that reaches the agents when --mixer-weight is not
  // given (the mixer itself always trains on it).
  double default_mixer_weight;
  std::string_view summary;  // one line for --help
  // Deterministic actors per agent, conditioned on the prices and trained through a centralised
  // critic (maddpg.h), propose the served action; the per-agent action values above still score
  // every option for the controllers' reservoir and the reuse choice.
  bool actors = false;
};

// In the order --help lists them.
const std::vector<AlgorithmTraits>& AlgorithmTable();
// nullptr when no algorithm has that name.
const AlgorithmTraits* FindAlgorithm(std::string_view name);
// The names, comma-separated, for messages.
std::string AlgorithmNames();
std::string_view MixerName(Mixer mixer);  // none, sum, monotone

}  // namespace allot::models
