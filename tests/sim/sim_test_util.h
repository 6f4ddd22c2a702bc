// Shared fixtures for the simulator tests: the default world, optionally shrunk for speed.
#pragma once

#include <functional>
#include <memory>

#include "policy/config.h"
#include "sim/world.h"
#include "sim/world_config.h"

namespace allot::sim::testing {

// The embedded Allot config and world, with `edit` applied to the world config (its cross-key rules
// re-checked; ranges are checked when a file is read).
inline std::unique_ptr<World> MakeWorld(const std::function<void(WorldConfig&)>& edit = {}) {
  WorldConfig world = LoadEmbeddedWorldConfig();
  if (edit) edit(world);
  Validate(world);
  return std::make_unique<World>(LoadEmbeddedDefaultConfig(), std::move(world));
}

}  // namespace allot::sim::testing
