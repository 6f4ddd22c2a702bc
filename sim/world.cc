// Wires the configs together; the cross-checks live in ChainLayout.
#include "sim/world.h"

namespace allot::sim {

World::World(AllotConfig config, WorldConfig world)
    : config_(std::move(config)),
      world_(std::move(world)),
      layout_(config_, world_),
      model_(world_),
      traffic_(world_.traffic) {
  for (const ModuleConfig& m : config_.modules) cores_.push_back(world_.Cores(m.name));
}

double World::Budget(size_t m, double sim_seconds, double scale) const {
  return target(m) * cores_[m] * 1000.0 * sim_seconds / scale;
}

}  // namespace allot::sim
