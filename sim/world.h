// The simulated world: the Allot config (agents, actions, modules), the world config and the
// ground-truth model, checked against each other once.
#pragma once

#include <memory>
#include <vector>

#include "policy/config.h"
#include "sim/chain_layout.h"
#include "sim/chain_model.h"
#include "sim/traffic.h"
#include "sim/world_config.h"

namespace allot::sim {

class World {
 public:
  // Throws allot::ConfigError when the two configs do not fit together.
  World(AllotConfig config, WorldConfig world);
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  const AllotConfig& config() const { return config_; }
  const WorldConfig& world() const { return world_; }
  const ChainLayout& layout() const { return layout_; }
  const ChainModel& model() const { return model_; }
  const TrafficShape& traffic() const { return traffic_; }
  size_t num_modules() const { return config_.modules.size(); }
  // CPU cores of config module m (0 when no stage runs on it).
  double cores(size_t m) const { return cores_[m]; }
  double target(size_t m) const { return config_.modules[m].cpu_target; }
  // Compute budget of module m over `sim_seconds`, in core-ms of simulated requests (each
  // simulated request stands for traffic.scale real ones).
  double Budget(size_t m, double sim_seconds, double scale) const;
  // Budget() of every config module (0 for modules without cores).
  std::vector<double> Budgets(double sim_seconds, double scale) const;

 private:
  AllotConfig config_;
  WorldConfig world_;
  ChainLayout layout_;
  ChainModel model_;
  TrafficShape traffic_;
  std::vector<double> cores_;
};

}  // namespace allot::sim
