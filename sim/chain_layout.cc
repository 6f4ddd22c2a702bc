// Resolves agents to stages by module, decodes every joint action into world settings once, and
// precomputes what elastic degradation turns each joint action into.
#include "sim/chain_layout.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

namespace allot::sim {
namespace {

[[noreturn]] void Fail(const std::string& path, const std::string& what) {
  throw ConfigError(path + ": " + what);
}

std::string AgentPath(size_t i) { return "agents[" + std::to_string(i) + "]"; }

int StageOfModule(const WorldConfig& world, const std::string& module) {
  if (module == world.recall.module) return kRecall;
  if (module == world.prerank.module) return kPrerank;
  if (module == world.rank.module) return kRank;
  return -1;
}

// Maps decision options to what they set; validates that the world models them.
struct DecisionMap {
  DecisionKind kind = DecisionKind::kQueue;
  std::vector<uint32_t> bit;         // LINK: world channel bit per option; SWITCH: world switch bit
  std::vector<int> length;           // QUEUE: length per option
  std::vector<uint32_t> down_order;  // QUEUE: option indices sorted by length
  std::optional<QueueRangeConfig> range;  // QUEUE: set for a continuous queue
};

DecisionMap MapDecision(const DecisionConfig& d, int stage, const WorldConfig& world,
                        const std::string& path) {
  DecisionMap m;
  m.kind = d.kind;
  switch (d.kind) {
    case DecisionKind::kLink:
      if (stage != kRecall)
        Fail(path, "link decisions (recall channels) belong to the recall stage");
      for (size_t i = 0; i < d.options.size(); ++i) {
        const ChannelConfig* channel = world.FindChannel(d.options[i].label);
        if (!channel) {
          Fail(path + ".options[" + std::to_string(i) + "]",
               "channel '" + d.options[i].label + "' is not in the world's recall.channels");
        }
        m.bit.push_back(1u << (channel - world.recall.channels.data()));
      }
      break;
    case DecisionKind::kSwitch: {
      const SwitchConfig* s = world.FindSwitch(d.name);
      if (!s) Fail(path + ".name", "switch '" + d.name + "' is not in the world's switches");
      const int want = s->effect == "recall_expansion" ? kRecall : kRank;
      if (stage != want) {
        Fail(path + ".name", "switch '" + d.name + "' (" + s->effect + ") belongs to the " +
                                 StageName(want) + " stage");
      }
      m.bit = {0u, 1u << (s - world.switches.data())};
      break;
    }
    case DecisionKind::kQueue:
      if (stage == kRecall) Fail(path, "queue decisions belong to the prerank or rank stage");
      for (const OptionConfig& o : d.options) m.length.push_back(o.queue_length);
      m.range = d.range;
      m.down_order.resize(d.options.size());
      std::iota(m.down_order.begin(), m.down_order.end(), 0u);
      std::stable_sort(m.down_order.begin(), m.down_order.end(),
                       [&](uint32_t a, uint32_t b) { return m.length[a] < m.length[b]; });
      break;
  }
  return m;
}

uint32_t DegradeChoice(const DecisionMap& m, uint32_t choice, const DegradationLevel& level) {
  if (m.kind == DecisionKind::kSwitch) return level.switches_off ? 0u : choice;
  if (m.kind != DecisionKind::kQueue || level.queue_steps_down == 0) return choice;
  // A continuous queue has no configured steps: each step halves the length, as one step of the
  // shipped configs' doubling lengths does.
  if (m.range) {
    const double halved = std::ldexp(m.length[choice], -level.queue_steps_down);
    return static_cast<uint32_t>(m.range->NearestIndex(halved));
  }
  const auto it = std::find(m.down_order.begin(), m.down_order.end(), choice);
  const long pos = std::max<long>(0, (it - m.down_order.begin()) - level.queue_steps_down);
  return m.down_order[static_cast<size_t>(pos)];
}

}  // namespace

ChainLayout::ChainLayout(const AllotConfig& config, const WorldConfig& world)
    : num_modules_(config.modules.size()),
      num_levels_(static_cast<int>(world.overload.levels.size())) {
  const std::string* modules[kNumStages] = {&world.recall.module, &world.prerank.module,
                                            &world.rank.module};
  const char* module_keys[kNumStages] = {"recall.module", "prerank.module", "rank.module"};
  for (int s = 0; s < kNumStages; ++s) {
    stage_module_[s] = config.ModuleIndex(*modules[s]);
    if (stage_module_[s] < 0) {
      Fail(std::string("world ") + module_keys[s],
           "module '" + *modules[s] + "' is not in the Allot config's modules");
    }
  }

  std::array<int, kNumStages> agent_of_stage = {-1, -1, -1};
  for (size_t i = 0; i < config.agents.size(); ++i) {
    const AgentConfig& agent = config.agents[i];
    const int stage = StageOfModule(world, agent.module);
    if (stage < 0) {
      Fail(AgentPath(i) + ".module", "module '" + agent.module +
                                         "' is not a stage module of the world (recall.module, "
                                         "prerank.module, rank.module)");
    }
    if (agent_of_stage[stage] >= 0) {
      Fail(AgentPath(i) + ".module", std::string("a second agent for stage ") + StageName(stage) +
                                         "; the simulator plays one agent per stage");
    }
    agent_of_stage[stage] = static_cast<int>(i);
  }
  for (int s = 0; s < kNumStages; ++s) {
    if (agent_of_stage[s] < 0) Fail("agents", std::string("no agent for stage ") + StageName(s));
  }

  for (int s = 0; s < kNumStages; ++s) {
    const size_t i = static_cast<size_t>(agent_of_stage[s]);
    const AgentConfig& agent = config.agents[i];
    AgentLayout layout{i, s, config.ModuleIndex(agent.module), {}, ActionSpace(agent), {}, {}};
    for (size_t f = 0; f < agent.features.size(); ++f) {
      layout.features.push_back(ParseFeature(
          agent.features[f], s, AgentPath(i) + ".features[" + std::to_string(f) + "]"));
    }
    std::vector<DecisionMap> maps;
    int queues = 0;
    bool has_link = false;
    for (size_t d = 0; d < agent.decisions.size(); ++d) {
      maps.push_back(MapDecision(agent.decisions[d], s, world,
                                 AgentPath(i) + ".decisions[" + std::to_string(d) + "]"));
      queues += agent.decisions[d].kind == DecisionKind::kQueue;
      has_link |= agent.decisions[d].kind == DecisionKind::kLink;
    }
    if (queues > 1) Fail(AgentPath(i) + ".decisions", "at most one queue decision per agent");
    const uint32_t all_channels = (1u << world.recall.channels.size()) - 1;

    const ActionSpace& space = layout.space;
    layout.settings.resize(space.size());
    for (size_t j = 0; j < space.size(); ++j) {
      StageSetting& setting = layout.settings[j];
      if (s == kRecall && !has_link)
        setting.channels = all_channels;  // no choice: every channel runs
      for (size_t d = 0; d < maps.size(); ++d) {
        const uint32_t choice = space.Choice(j, d);
        switch (maps[d].kind) {
          case DecisionKind::kLink:
            for (size_t o = 0; o < maps[d].bit.size(); ++o) {
              if (choice & (1u << o)) setting.channels |= maps[d].bit[o];
            }
            break;
          case DecisionKind::kSwitch:
            setting.switches |= maps[d].bit[choice];
            break;
          case DecisionKind::kQueue:
            setting.queue_len = maps[d].length[choice];
            break;
        }
      }
    }
    for (const DegradationLevel& level : world.overload.levels) {
      std::vector<uint32_t> table(space.size());
      std::vector<uint32_t> choices(maps.size());
      for (size_t j = 0; j < space.size(); ++j) {
        for (size_t d = 0; d < maps.size(); ++d)
          choices[d] = DegradeChoice(maps[d], space.Choice(j, d), level);
        const size_t degraded = space.IndexOf(choices);
        table[j] = static_cast<uint32_t>(degraded < space.size() ? degraded : j);
      }
      layout.degraded.push_back(std::move(table));
    }
    reference_[s] = layout.settings[space.safe_default()];
    stage_agent_[s] = chain_.size();
    chain_.push_back(std::move(layout));
  }

  // The cache's reference chain: the safe defaults, overridden by the world's cache.reference_*.
  const CacheWorldConfig& cache = world.cache;
  if (!cache.reference_channels.empty()) {
    reference_[kRecall].channels = 0;
    for (const std::string& name : cache.reference_channels) {
      reference_[kRecall].channels |= 1u
                                      << (world.FindChannel(name) - world.recall.channels.data());
    }
    reference_[kRecall].switches = 0;
    reference_[kRank].switches = 0;
    for (const std::string& name : cache.reference_switches) {
      const SwitchConfig* s = world.FindSwitch(name);
      reference_[s->effect == "recall_expansion" ? kRecall : kRank].switches |=
          1u << (s - world.switches.data());
    }
  }
  if (cache.reference_prerank_queue > 0)
    reference_[kPrerank].queue_len = cache.reference_prerank_queue;
  if (cache.reference_rank_queue > 0) reference_[kRank].queue_len = cache.reference_rank_queue;

  const CacheReuseConfig& reuse = config.cache_reuse;
  for (size_t i = 0; reuse.enabled && i < reuse.stages.size(); ++i) {
    const int s = reuse.stages[i].stage == "recall"    ? kRecall
                  : reuse.stages[i].stage == "prerank" ? kPrerank
                                                       : kRank;
    if (!world.FindCacheStage(reuse.stages[i].stage)) {
      Fail("cache_reuse.stages[" + std::to_string(i) + "]",
           "stage '" + reuse.stages[i].stage + "' has no entry in the world's cache.stages");
    }
    reusable_[s] = true;
  }
}

}  // namespace allot::sim
