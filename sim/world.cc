// Wires the configs together; the cross-checks live in ChainLayout.
#include "sim/world.h"

#include <cmath>

namespace allot::sim {
namespace {

// The controller is set up for the world it runs in, as an operator sets it up for a cluster:
// the day lasts as long as the world's (compressed) day, and the load model's lag is the lag of
// the world's CPU measurement over one control period.
AllotConfig FitControllerToWorld(AllotConfig config, const WorldConfig& world) {
  config.controller.forecast.day_length_s = world.time.day_length_s;
  if (world.load.lag_s > 0)
    config.controller.mpc.load_lag = std::exp(-config.controller.period_s / world.load.lag_s);
  return config;
}

}  // namespace

World::World(AllotConfig config, WorldConfig world)
    : config_(FitControllerToWorld(std::move(config), world)),
      world_(std::move(world)),
      layout_(config_, world_),
      model_(world_),
      traffic_(world_.traffic) {
  for (const ModuleConfig& m : config_.modules) cores_.push_back(world_.Cores(m.name));
}

double World::Budget(size_t m, double sim_seconds, double scale) const {
  return target(m) * cores_[m] * 1000.0 * sim_seconds / scale;
}

std::vector<double> World::Budgets(double sim_seconds, double scale) const {
  std::vector<double> out;
  for (size_t m = 0; m < num_modules(); ++m) out.push_back(Budget(m, sim_seconds, scale));
  return out;
}

}  // namespace allot::sim
