// The rows of the algorithm table; see algorithms.h.
#include "models/algorithms.h"

namespace allot::models {

const std::vector<AlgorithmTraits>& AlgorithmTable() {
  static const std::vector<AlgorithmTraits> table = {
      {"dqn", false, false, false, Mixer::kNone, 1.0,
       "per-agent MLP Q, one head, independent TD learners on the chain's terminal revenue"},
      {"drqn", true, false, false, Mixer::kNone, 1.0,
       "per-agent recurrent Q (GRU over the agent's decisions), otherwise as dqn"},
      {"vdn", true, false, false, Mixer::kSum, 1.0,
       "recurrent agents, Q_tot = mean of the agent Qs, trained on revenue"},
      {"qmix", true, false, false, Mixer::kMonotone, 1.0,
       "recurrent agents, monotone hypernetwork mixer, trained on revenue"},
      // awrq's agents keep their own revenue-scale targets while the mixer learns the joint
      // value beside them, as in MaRCA's public code (see TrainOptions::mixer_weight).
      {"awrq", true, true, true, Mixer::kMonotone, 0.0,
       "AWRQ-Mixer: recurrent agents with K error-weighted heads, VGCA credit, monotone mixer"},
      // MADDPG (seed 002) on top of awrq's per-agent values: those still score every option
      // (controllers, reuse), while the actors choose.
      {"maddpg", true, true, true, Mixer::kMonotone, 0.0,
       "MADDPG: price-conditioned actors per agent through a centralised critic, on awrq",
       /*actors=*/true},
  };
  return table;
}

const AlgorithmTraits* FindAlgorithm(std::string_view name) {
  for (const AlgorithmTraits& a : AlgorithmTable()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string AlgorithmNames() {
  std::string out;
  for (const AlgorithmTraits& a : AlgorithmTable()) {
    if (!out.empty()) out += ", ";
    out += a.name;
  }
  return out;
}

std::string_view MixerName(Mixer mixer) {
  switch (mixer) {
    case Mixer::kSum:
      return "sum";
    case Mixer::kMonotone:
      return "monotone";
    case Mixer::kNone:
      break;
  }
  return "none";
}

}  // namespace allot::models
