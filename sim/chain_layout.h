// How the Allot config's agents, decisions and features map onto the simulated chain's stages.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "policy/action_space.h"
#include "policy/config.h"
#include "sim/features.h"
#include "sim/request.h"
#include "sim/world_config.h"

namespace allot::sim {

// What one agent's joint action sets in the world.
struct StageSetting {
  uint32_t channels = 0;  // recall: bits over WorldConfig::recall.channels
  uint32_t switches = 0;  // bits over WorldConfig::switches
  int queue_len = 0;      // pre-rank/rank input truncation; 0 keeps every candidate
};

using ChainSettings = std::array<StageSetting, kNumStages>;

struct AgentLayout {
  size_t agent = 0;  // index into config.agents
  int stage = kRecall;
  int module = 0;  // index into config.modules
  std::vector<Feature> features;
  ActionSpace space;
  std::vector<StageSetting> settings;  // per joint action
  std::vector<std::vector<uint32_t>>
      degraded;  // [level - 1][joint]: the joint applied at that level

  StageSetting Setting(size_t joint) const { return settings[joint]; }
};

// Built once per (Allot config, world); throws allot::ConfigError naming the offending config key
// when the config asks for something the world does not model (an unknown channel, switch or
// feature, two agents on one stage, ...).
class ChainLayout {
 public:
  ChainLayout(const AllotConfig& config, const WorldConfig& world);

  const std::vector<AgentLayout>& chain() const { return chain_; }  // chain order
  const AgentLayout& at_stage(int stage) const { return chain_[stage_agent_[stage]]; }
  size_t chain_position(int stage) const { return stage_agent_[stage]; }
  int stage_module(int stage) const { return stage_module_[stage]; }
  size_t num_modules() const { return num_modules_; }
  int num_levels() const { return num_levels_; }
  // The safe default of every agent: what the reference chain (and the cache) computes.
  const ChainSettings& reference() const { return reference_; }
  // Whether the config lets a repeat request reuse this stage's cached output.
  bool reusable(int stage) const { return reusable_[stage]; }
  // Joint index of `joint` degraded to `level` (0 = unchanged).
  uint32_t Degrade(size_t position, uint32_t joint, int level) const {
    return level <= 0 ? joint : chain_[position].degraded[std::min(level, num_levels_) - 1][joint];
  }

 private:
  std::vector<AgentLayout> chain_;
  std::array<size_t, kNumStages> stage_agent_{};
  std::array<int, kNumStages> stage_module_{};
  std::array<bool, kNumStages> reusable_{};
  ChainSettings reference_{};
  size_t num_modules_ = 0;
  int num_levels_ = 0;
};

}  // namespace allot::sim
