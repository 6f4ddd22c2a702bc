// Fitting and storing the AutoBucket cost map; the model is described in cost_map.h.
#include "models/cost_map.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>

#include "models/link_cost_fit.h"
#include "policy/action_space.h"

namespace allot::models {
namespace {

struct Measurement {
  double cost = 0.0;
  double weight = 0.0;  // requests in the bucket
  bool seen = false;
};

// One agent's rows: options[decision][option][bucket] (link decisions: unused) and
// sets[decision][bucket], the channel sets a link decision was measured at.
struct AgentMeasurements {
  std::vector<std::vector<std::vector<Measurement>>> options;
  std::vector<std::vector<std::vector<ChannelSetCost>>> sets;
};

std::vector<std::string> SplitCsvLine(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  for (std::string field; std::getline(in, field, ',');) fields.push_back(field);
  if (!line.empty() && line.back() == ',') fields.emplace_back();
  return fields;
}

double ParseNumber(const std::string& text, const std::string& where) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !std::isfinite(v))
    throw CostMapError(where + ": not a finite number: '" + text + "'");
  return v;
}

// Pool adjacent violators: the weighted least-squares non-decreasing fit of `values`.
std::vector<double> MonotoneIncreasing(const std::vector<double>& values,
                                       const std::vector<double>& weights) {
  struct Block {
    double sum, weight;
    size_t count;
  };
  std::vector<Block> blocks;
  for (size_t i = 0; i < values.size(); ++i) {
    const double w = std::max(weights[i], 1e-12);
    blocks.push_back({values[i] * w, w, 1});
    while (blocks.size() > 1 && blocks[blocks.size() - 2].sum / blocks[blocks.size() - 2].weight >
                                    blocks.back().sum / blocks.back().weight) {
      Block last = blocks.back();
      blocks.pop_back();
      blocks.back().sum += last.sum;
      blocks.back().weight += last.weight;
      blocks.back().count += last.count;
    }
  }
  std::vector<double> out;
  for (const Block& b : blocks) out.insert(out.end(), b.count, b.sum / b.weight);
  return out;
}

AgentMeasurements EmptyMeasurements(const AgentConfig& agent, size_t buckets) {
  AgentMeasurements m;
  m.options.resize(agent.decisions.size());
  m.sets.assign(agent.decisions.size(), std::vector<std::vector<ChannelSetCost>>(buckets));
  for (size_t d = 0; d < agent.decisions.size(); ++d) {
    m.options[d].assign(agent.decisions[d].options.size(), std::vector<Measurement>(buckets));
  }
  return m;
}

// A link row's option: one channel ("hot") or a set ("i2i+hot"); throws naming an unknown one.
uint32_t ParseChannelSet(const std::string& text, const DecisionConfig& decision,
                         const std::string& where) {
  uint32_t set = 0;
  std::stringstream in(text);
  for (std::string label; std::getline(in, label, '+');) {
    const auto it = std::find_if(decision.options.begin(), decision.options.end(),
                                 [&](const OptionConfig& o) { return o.label == label; });
    if (it == decision.options.end() || text.empty())
      throw CostMapError(where + ": option: unknown option '" + label + "'");
    set |= 1u << (it - decision.options.begin());
  }
  if (set == 0 || text.back() == '+')
    throw CostMapError(where + ": option: unknown option '" + text + "'");
  return set;
}

std::vector<AgentMeasurements> ReadMeasurements(const std::string& csv, const std::string& source,
                                                const AllotConfig& config, size_t buckets) {
  std::vector<AgentMeasurements> out;
  for (const AgentConfig& a : config.agents) out.push_back(EmptyMeasurements(a, buckets));
  std::istringstream in(csv);
  std::string line;
  if (!std::getline(in, line)) throw CostMapError(source + ": empty file");
  const std::vector<std::string> header = SplitCsvLine(line);
  std::map<std::string, size_t> column;
  for (size_t i = 0; i < header.size(); ++i) column[header[i]] = i;
  for (const char* required :
       {"agent", "decision", "option", "value_bucket", "cost_ms_per_request", "requests"}) {
    if (!column.count(required))
      throw CostMapError(source + ": line 1: missing column '" + required + "'");
  }
  for (size_t line_no = 2; std::getline(in, line); ++line_no) {
    if (line.empty()) continue;
    const std::vector<std::string> f = SplitCsvLine(line);
    const std::string where = source + ": line " + std::to_string(line_no);
    if (f.size() != header.size()) {
      throw CostMapError(where + ": expected " + std::to_string(header.size()) + " columns, got " +
                         std::to_string(f.size()));
    }
    auto field = [&](const char* name) -> const std::string& { return f[column.at(name)]; };
    const auto agent_it =
        std::find_if(config.agents.begin(), config.agents.end(),
                     [&](const AgentConfig& a) { return a.name == field("agent"); });
    if (agent_it == config.agents.end())
      throw CostMapError(where + ": agent: unknown agent '" + field("agent") + "'");
    const size_t agent = static_cast<size_t>(agent_it - config.agents.begin());
    const auto& decisions = agent_it->decisions;
    const auto decision_it =
        std::find_if(decisions.begin(), decisions.end(),
                     [&](const DecisionConfig& d) { return d.name == field("decision"); });
    if (decision_it == decisions.end())
      throw CostMapError(where + ": decision: unknown decision '" + field("decision") + "'");
    const bool link = decision_it->kind == DecisionKind::kLink;
    const auto option_it =
        std::find_if(decision_it->options.begin(), decision_it->options.end(),
                     [&](const OptionConfig& o) { return o.label == field("option"); });
    const uint32_t set = link ? ParseChannelSet(field("option"), *decision_it, where) : 0;
    if (!link && option_it == decision_it->options.end())
      throw CostMapError(where + ": option: unknown option '" + field("option") + "'");
    const double bucket = ParseNumber(field("value_bucket"), where + ": value_bucket");
    if (bucket < 0 || bucket >= static_cast<double>(buckets) || bucket != std::floor(bucket)) {
      throw CostMapError(where + ": value_bucket: must be an integer in [0, " +
                         std::to_string(buckets - 1) + "]");
    }
    const double cost = ParseNumber(field("cost_ms_per_request"), where + ": cost_ms_per_request");
    if (cost < 0) throw CostMapError(where + ": cost_ms_per_request: must be >= 0");
    const double requests = ParseNumber(field("requests"), where + ": requests");
    if (requests < 1) throw CostMapError(where + ": requests: must be >= 1");
    const auto d = static_cast<size_t>(decision_it - decisions.begin());
    const auto b = static_cast<size_t>(bucket);
    if (link) {
      std::vector<ChannelSetCost>& sets = out[agent].sets[d][b];
      if (std::any_of(sets.begin(), sets.end(),
                      [&](const ChannelSetCost& s) { return s.set == set; }))
        throw CostMapError(where + ": duplicate measurement");
      sets.push_back({set, cost, requests});
      continue;
    }
    Measurement& m =
        out[agent].options[d][static_cast<size_t>(option_it - decision_it->options.begin())][b];
    if (m.seen) throw CostMapError(where + ": duplicate measurement");
    m = {cost, requests, true};
  }
  return out;
}

// Joint-action costs of one agent in one bucket from R[d][o] (non-link decisions) and each link
// decision's measured channel sets (see cost_map.h).
std::vector<double> JointCosts(const AgentConfig& agent, const std::vector<std::vector<double>>& r,
                               const std::vector<std::vector<ChannelSetCost>>& sets) {
  const ActionSpace space(agent);
  const auto defaults = space.Choices(space.safe_default());
  const size_t n = agent.decisions.size();
  // R0 from every non-link decision's safe-default row (they all measure the safe default).
  double r0_sum = 0.0;
  int r0_rows = 0;
  for (size_t d = 0; d < n; ++d) {
    if (agent.decisions[d].kind == DecisionKind::kLink) continue;
    r0_sum += r[d][defaults[d]];
    ++r0_rows;
  }
  const bool r0_measured = r0_rows > 0;
  std::vector<LinkCostFit> link(n);
  for (size_t d = 0; d < n; ++d) {
    if (agent.decisions[d].kind != DecisionKind::kLink) continue;
    double weight = 0.0;
    for (const ChannelSetCost& s : sets[d]) weight += s.weight;
    std::optional<ChannelSetCost> reference;
    if (r0_measured && !sets[d].empty())
      reference = ChannelSetCost{defaults[d], r0_sum / r0_rows, weight / sets[d].size()};
    link[d] = FitLinkCost(agent.decisions[d].options.size(), sets[d], reference);
  }
  auto with_choice = [&](size_t d, uint32_t choice) {
    return agent.decisions[d].kind == DecisionKind::kLink ? link[d].Cost(choice) : r[d][choice];
  };
  // Without a non-link decision, R0 is the first (link) decision's own default set.
  const double r0 = r0_measured ? r0_sum / r0_rows : with_choice(0, defaults[0]);
  std::vector<double> out(space.size());
  for (size_t j = 0; j < space.size(); ++j) {
    double cost = r0;
    for (size_t d = 0; d < n; ++d) cost += with_choice(d, space.Choice(j, d)) - r0;
    out[j] = std::max(0.0, cost);
  }
  return out;
}

size_t NumBuckets(const AllotConfig& config) { return config.value_model.bucket_bounds.size() + 1; }

}  // namespace

CostMap FitCostMap(const std::string& csv, const std::string& source, const AllotConfig& config) {
  const size_t buckets = NumBuckets(config);
  const std::vector<AgentMeasurements> all = ReadMeasurements(csv, source, config, buckets);
  CostMap map;
  for (size_t a = 0; a < config.agents.size(); ++a) {
    const AgentConfig& agent = config.agents[a];
    std::vector<std::vector<double>> per_bucket;
    for (size_t b = 0; b < buckets; ++b) {
      std::vector<std::vector<double>> r(agent.decisions.size());
      for (size_t d = 0; d < agent.decisions.size(); ++d) {
        const DecisionConfig& decision = agent.decisions[d];
        auto missing = [&](size_t o) {
          return CostMapError(source + ": no measurement for agent " + agent.name + ", decision " +
                              decision.name + ", option " + decision.options[o].label +
                              ", value bucket " + std::to_string(b));
        };
        if (decision.kind == DecisionKind::kLink) {
          uint32_t covered = 0;
          for (const ChannelSetCost& set : all[a].sets[d][b]) covered |= set.set;
          for (size_t o = 0; o < decision.options.size(); ++o) {
            if (!(covered & (1u << o))) throw missing(o);
          }
          continue;
        }
        std::vector<double> values, weights;
        for (size_t o = 0; o < decision.options.size(); ++o) {
          const Measurement& m = all[a].options[d][o][b];
          if (!m.seen) throw missing(o);
          values.push_back(m.cost);
          weights.push_back(m.weight);
        }
        if (decision.kind == DecisionKind::kQueue) {
          // Monotone in queue length: fit in length order, then put back in option order.
          std::vector<size_t> order(values.size());
          std::iota(order.begin(), order.end(), 0);
          std::sort(order.begin(), order.end(), [&](size_t x, size_t y) {
            return decision.options[x].queue_length < decision.options[y].queue_length;
          });
          std::vector<double> v, w;
          for (size_t i : order) {
            v.push_back(values[i]);
            w.push_back(weights[i]);
          }
          const std::vector<double> fitted = MonotoneIncreasing(v, w);
          for (size_t k = 0; k < order.size(); ++k) values[order[k]] = fitted[k];
        }
        r[d] = std::move(values);
      }
      std::vector<std::vector<ChannelSetCost>> sets(agent.decisions.size());
      for (size_t d = 0; d < agent.decisions.size(); ++d) sets[d] = all[a].sets[d][b];
      per_bucket.push_back(JointCosts(agent, r, sets));
    }
    map.cost.push_back(std::move(per_bucket));
  }
  return map;
}

std::string CostMapYaml(const CostMap& map, const AllotConfig& config) {
  YAML::Emitter y;
  y << YAML::BeginMap << YAML::Key << "agents" << YAML::Value << YAML::BeginSeq;
  for (size_t a = 0; a < map.cost.size(); ++a) {
    y << YAML::BeginMap << YAML::Key << "name" << YAML::Value << config.agents[a].name;
    y << YAML::Key << "cost_ms" << YAML::Value << YAML::BeginSeq;
    for (const auto& bucket : map.cost[a]) y << YAML::Flow << bucket;
    y << YAML::EndSeq << YAML::EndMap;
  }
  y << YAML::EndSeq << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

CostMap ParseCostMapYaml(const std::string& yaml, const std::string& source,
                         const AllotConfig& config) {
  CostMap map;
  try {
    const YAML::Node root = YAML::Load(yaml);
    const YAML::Node agents = root["agents"];
    if (!agents || !agents.IsSequence() || agents.size() != config.agents.size())
      throw CostMapError(source + ": agents: expected one entry per configured agent");
    for (size_t a = 0; a < config.agents.size(); ++a) {
      const std::string where = source + ": agents[" + std::to_string(a) + "]";
      if (agents[a]["name"].as<std::string>("") != config.agents[a].name)
        throw CostMapError(where + ".name: expected " + config.agents[a].name);
      const YAML::Node table = agents[a]["cost_ms"];
      const size_t joints = ActionSpace(config.agents[a]).size();
      if (!table || !table.IsSequence() || table.size() != NumBuckets(config))
        throw CostMapError(where + ".cost_ms: expected one row per value bucket");
      std::vector<std::vector<double>> rows;
      for (const YAML::Node& row : table) {
        std::vector<double> costs = row.as<std::vector<double>>();
        if (costs.size() != joints || !std::all_of(costs.begin(), costs.end(), [](double c) {
              return std::isfinite(c) && c >= 0;
            })) {
          throw CostMapError(where + ".cost_ms: expected " + std::to_string(joints) +
                             " finite non-negative costs per row");
        }
        rows.push_back(std::move(costs));
      }
      map.cost.push_back(std::move(rows));
    }
  } catch (const YAML::Exception& e) {
    throw CostMapError(source + ": " + e.what());
  }
  return map;
}

}  // namespace allot::models
