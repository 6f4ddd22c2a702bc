// manifest.yaml: every key written here is read back by ReadManifest (the round-trip test keeps
// them in step). Optional keys are those older bundles may lack.
#include "models/bundle_manifest.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <utility>

#include "models/bundle.h"
#include "policy/action_space.h"

namespace allot::models {
namespace {

YAML::Node SchemaNode(const AllotConfig& config) {
  YAML::Node schema;
  for (double b : config.value_model.bucket_bounds) schema["value_bucket_bounds"].push_back(b);
  for (const AgentConfig& agent : config.agents) {
    YAML::Node a;
    a["name"] = agent.name;
    for (const std::string& f : agent.features) a["features"].push_back(f);
    for (const DecisionConfig& d : agent.decisions) {
      YAML::Node dn;
      dn["name"] = d.name;
      dn["kind"] = DecisionKindName(d.kind);
      for (const OptionConfig& o : d.options) dn["options"].push_back(o.label);
      dn["min_selected"] = d.min_selected;
      dn["max_selected"] = d.max_selected;
      // Only continuous queues carry a range, so older bundles' schemas still match.
      if (d.range) {
        dn["range"]["min"] = d.range->min;
        dn["range"]["max"] = d.range->max;
        dn["range"]["granularity"] = d.range->granularity;
      }
      a["decisions"].push_back(dn);
    }
    a["joint_actions"] = ActionSpace(agent).size();
    schema["agents"].push_back(a);
  }
  return schema;
}

std::string FlowText(const YAML::Node& node) {
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

// First difference between two schema nodes, as "path (bundle: X, config: Y)"; "" if equal.
std::string FirstDifference(const YAML::Node& bundle, const YAML::Node& config,
                            const std::string& path) {
  if (bundle.Type() != config.Type())
    return path + " (bundle: " + FlowText(bundle) + ", config: " + FlowText(config) + ")";
  if (config.IsScalar()) {
    return bundle.Scalar() == config.Scalar()
               ? ""
               : path + " (bundle: " + bundle.Scalar() + ", config: " + config.Scalar() + ")";
  }
  if (config.IsSequence()) {
    if (bundle.size() != config.size()) {
      return path + " (bundle has " + std::to_string(bundle.size()) + " entries, config " +
             std::to_string(config.size()) + ")";
    }
    for (size_t i = 0; i < config.size(); ++i) {
      const std::string d =
          FirstDifference(bundle[i], config[i], path + "[" + std::to_string(i) + "]");
      if (!d.empty()) return d;
    }
    return "";
  }
  if (config.IsMap()) {
    for (const auto& kv : config) {
      const std::string key = kv.first.as<std::string>();
      const std::string d =
          FirstDifference(bundle[key], kv.second, path.empty() ? key : path + "." + key);
      if (!d.empty()) return d;
    }
  }
  return "";
}

std::string ReuseSourceName(bool model) { return model ? "model" : "half_life"; }

void WriteArchitecture(YAML::Emitter& y, const Architecture& a) {
  y << YAML::Key << "architecture" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "heads" << YAML::Value << a.heads;
  y << YAML::Key << "hidden" << YAML::Value << a.hidden;
  y << YAML::Key << "head_hidden" << YAML::Value << YAML::Flow << a.head_hidden;
  y << YAML::Key << "mixer_embed" << YAML::Value << a.mixer_embed;
  y << YAML::Key << "cross_layers" << YAML::Value << a.cross_layers;
  y << YAML::Key << "deep" << YAML::Value << YAML::Flow << a.deep;
  y << YAML::Key << "recurrent" << YAML::Value << (a.recurrent() && !a.factorised);
  y << YAML::Key << "factorised" << YAML::Value << a.factorised;
  y << YAML::Key << "reuse_share_capped" << YAML::Value << a.reuse_share_capped;
  y << YAML::Key << "mixer" << YAML::Value << std::string(MixerName(a.traits().mixer));
  y << YAML::EndMap;
}

Architecture ReadArchitecture(const YAML::Node& manifest) {
  Architecture a;
  const YAML::Node n = manifest["architecture"];
  a.algorithm = manifest["algorithm"].as<std::string>();
  if (!FindAlgorithm(a.algorithm)) {
    throw BundleError(std::string(kManifestFile) + ": algorithm: unknown '" + a.algorithm + "' (" +
                      AlgorithmNames() + ")");
  }
  a.heads = n["heads"].as<int>();
  a.hidden = n["hidden"].as<int64_t>();
  a.head_hidden = n["head_hidden"].as<std::vector<int64_t>>();
  a.mixer_embed = n["mixer_embed"].as<int64_t>();
  a.cross_layers = n["cross_layers"].as<int>();
  a.deep = n["deep"].as<std::vector<int64_t>>();
  a.factorised = n["factorised"].as<bool>(false);                 // bundles from before it are not
  a.reuse_share_capped = n["reuse_share_capped"].as<bool>(true);  // bundles from before it are
  return a;
}

void WriteHyperparameters(YAML::Emitter& y, const Hyperparameters& h) {
  y << YAML::Key << "hyperparameters" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "lr" << YAML::Value << h.lr;
  y << YAML::Key << "gamma" << YAML::Value << h.gamma;
  y << YAML::Key << "mixer_weight" << YAML::Value << h.mixer_weight;
  y << YAML::Key << "td_lambda" << YAML::Value << h.td_lambda;
  y << YAML::Key << "q_weighting" << YAML::Value << h.q_weighting;
  y << YAML::Key << "batch" << YAML::Value << h.batch;
  y << YAML::Key << "epochs" << YAML::Value << h.epochs;
  y << YAML::Key << "value_epochs" << YAML::Value << h.value_epochs;
  y << YAML::Key << "target_update" << YAML::Value << h.target_update;
  y << YAML::Key << "dropout" << YAML::Value << h.dropout;
  y << YAML::Key << "validation_fraction" << YAML::Value << h.validation_fraction;
  y << YAML::Key << "seed" << YAML::Value << h.seed;
  y << YAML::Key << "revenue_scale" << YAML::Value << h.revenue_scale;
  y << YAML::Key << "network" << YAML::Value << h.network;
  if (h.network == "distilled") {
    y << YAML::Key << "distil_epochs" << YAML::Value << h.distil_epochs;
    y << YAML::Key << "distil_actions" << YAML::Value << h.distil_actions;
    y << YAML::Key << "distil_pessimism" << YAML::Value << h.distil_pessimism;
  }
  y << YAML::EndMap;
}

Hyperparameters ReadHyperparameters(const YAML::Node& n) {
  Hyperparameters h;
  if (!n) return h;
  h.lr = n["lr"].as<double>(h.lr);
  h.gamma = n["gamma"].as<double>(h.gamma);
  h.mixer_weight = n["mixer_weight"].as<double>(h.mixer_weight);
  h.td_lambda = n["td_lambda"].as<double>(h.td_lambda);
  h.q_weighting = n["q_weighting"].as<std::string>(h.q_weighting);
  h.network = n["network"].as<std::string>(h.network);
  h.distil_epochs = n["distil_epochs"].as<int>(h.distil_epochs);
  h.distil_actions = n["distil_actions"].as<int>(h.distil_actions);
  h.distil_pessimism = n["distil_pessimism"].as<double>(h.distil_pessimism);
  h.batch = n["batch"].as<int>(h.batch);
  h.epochs = n["epochs"].as<int>(h.epochs);
  h.value_epochs = n["value_epochs"].as<int>(h.value_epochs);
  h.target_update = n["target_update"].as<int>(h.target_update);
  h.dropout = n["dropout"].as<double>(h.dropout);
  h.validation_fraction = n["validation_fraction"].as<double>(h.validation_fraction);
  h.seed = n["seed"].as<uint64_t>(h.seed);
  h.revenue_scale = n["revenue_scale"].as<double>(h.revenue_scale);
  return h;
}

std::vector<std::string> ReadCostSource(const YAML::Node& n, const AllotConfig& config) {
  if (!n) return {};
  std::vector<std::string> out;
  for (const AgentConfig& agent : config.agents) {
    std::string kind = n[agent.name].as<std::string>("model");
    if (kind != "map" && kind != "model")
      throw BundleError(std::string(kManifestFile) + ": cost_source." + agent.name +
                        ": must be map or model");
    out.push_back(std::move(kind));
  }
  return out;
}

// Per agent, one flow list under `key` (agents whose list is empty are left out; the key too
// when every list is).
template <typename T>
void WritePerAgentLists(YAML::Emitter& y, const char* key, const std::vector<std::vector<T>>& lists,
                        const AllotConfig& config) {
  const bool any =
      std::any_of(lists.begin(), lists.end(), [](const std::vector<T>& a) { return !a.empty(); });
  if (!any) return;
  y << YAML::Key << key << YAML::Value << YAML::BeginMap;
  for (size_t i = 0; i < lists.size() && i < config.agents.size(); ++i) {
    if (lists[i].empty()) continue;
    y << YAML::Key << config.agents[i].name << YAML::Value << YAML::Flow << lists[i];
  }
  y << YAML::EndMap;
}

// Per agent, the list under `key` as `read` makes it of the agent's list node (`at` names it
// in errors); an agent without one gets an empty list.
template <typename T, typename Read>
std::vector<std::vector<T>> ReadPerAgentLists(const YAML::Node& n, const char* key,
                                              const AllotConfig& config, Read read) {
  std::vector<std::vector<T>> out(config.agents.size());
  if (!n) return out;
  if (!n.IsMap()) throw BundleError(std::string(kManifestFile) + ": " + key + ": a map");
  for (size_t i = 0; i < config.agents.size(); ++i) {
    const AgentConfig& agent = config.agents[i];
    const YAML::Node list = n[agent.name];
    if (!list) continue;
    const std::string at = std::string(kManifestFile) + ": " + key + "." + agent.name;
    if (!list.IsSequence()) throw BundleError(at + ": a list, one entry per joint action");
    out[i] = read(agent, list, at);
  }
  return out;
}

// Joint action indices, each in range and listed once, and not all of the agent's.
std::vector<uint32_t> ReadUnloggedList(const AgentConfig& agent, const YAML::Node& list,
                                       const std::string& at) {
  const size_t size = ActionSpace(agent).size();
  std::vector<bool> seen(size, false);
  std::vector<uint32_t> out;
  for (const YAML::Node& j : list) {
    const uint32_t joint = j.as<uint32_t>();
    if (joint >= size)
      throw BundleError(at + ": " + std::to_string(joint) + " is out of range (" + agent.name +
                        " has joint actions 0 to " + std::to_string(size - 1) + ")");
    if (seen[joint]) throw BundleError(at + ": " + std::to_string(joint) + " is listed twice");
    seen[joint] = true;
    out.push_back(joint);
  }
  if (!out.empty() && out.size() == size) throw BundleError(at + ": excludes every joint action");
  return out;
}

// One count (>= 0) per joint action.
std::vector<int64_t> ReadCountList(const AgentConfig& agent, const YAML::Node& list,
                                   const std::string& at) {
  const size_t size = ActionSpace(agent).size();
  if (list.size() != size)
    throw BundleError(at + ": a list of " + std::to_string(size) + " counts, one per joint action");
  std::vector<int64_t> out;
  for (const YAML::Node& c : list) {
    int64_t count = -1;
    if (!YAML::convert<int64_t>::decode(c, count) || count < 0)
      throw BundleError(at + ": '" + c.as<std::string>("?") + "' is not a count");
    out.push_back(count);
  }
  return out;
}

std::vector<AgentCalibration> ReadCalibration(const YAML::Node& n, const AllotConfig& config) {
  std::vector<AgentCalibration> out;
  for (const YAML::Node& c : n) {
    AgentCalibration a;
    a.agent = c["agent"].as<std::string>("");
    a.a = c["a"].as<double>();
    a.b = c["b"].as<double>();
    out.push_back(std::move(a));
  }
  if (out.size() != config.agents.size())
    throw BundleError(std::string(kManifestFile) + ": calibration: one entry per agent expected");
  return out;
}

void WriteOutcome(YAML::Emitter& y, const char* name, const OutcomeEstimates& e) {
  y << YAML::Key << name << YAML::Value << YAML::Flow << YAML::BeginMap;
  y << YAML::Key << "logged" << YAML::Value << e.logged;
  for (const auto& [key, interval] :
       {std::pair{"ips", &e.ips}, std::pair{"snips", &e.snips}, std::pair{"dr", &e.dr}}) {
    y << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq << interval->estimate
      << interval->lower << interval->upper << YAML::EndSeq;
  }
  y << YAML::EndMap;
}

void WriteOffPolicy(YAML::Emitter& y, const OffPolicyReport& r) {
  y << YAML::Key << "offpolicy" << YAML::Value << YAML::BeginMap;
  if (!r.unusable.empty()) {
    y << YAML::Key << "unusable" << YAML::Value << r.unusable << YAML::EndMap;
    return;
  }
  y << YAML::Key << "requests" << YAML::Value << r.requests;
  y << YAML::Key << "matched" << YAML::Value << r.matched;
  y << YAML::Key << "effective_sample_size" << YAML::Value << r.effective_sample_size;
  WriteOutcome(y, "revenue", r.revenue);
  WriteOutcome(y, "cost", r.cost);
  WriteOutcome(y, "net", r.net);
  y << YAML::EndMap;
}

OutcomeEstimates ReadOutcome(const YAML::Node& n, const std::string& at) {
  if (!n.IsMap()) throw BundleError(std::string(kManifestFile) + ": " + at + ": missing");
  OutcomeEstimates e;
  e.logged = n["logged"].as<double>();
  for (const auto& [key, interval] :
       {std::pair{"ips", &e.ips}, std::pair{"snips", &e.snips}, std::pair{"dr", &e.dr}}) {
    const YAML::Node v = n[key];
    if (!v.IsSequence() || v.size() != 3)
      throw BundleError(std::string(kManifestFile) + ": " + at + "." + key +
                        ": expected [estimate, lower, upper]");
    *interval = {v[0].as<double>(), v[1].as<double>(), v[2].as<double>()};
  }
  return e;
}

std::optional<OffPolicyReport> ReadOffPolicy(const YAML::Node& n) {
  if (!n) return std::nullopt;
  OffPolicyReport r;
  r.unusable = n["unusable"].as<std::string>("");
  if (!r.unusable.empty()) return r;
  r.requests = n["requests"].as<int64_t>();
  r.matched = n["matched"].as<int64_t>();
  r.effective_sample_size = n["effective_sample_size"].as<double>();
  r.revenue = ReadOutcome(n["revenue"], "offpolicy.revenue");
  r.cost = ReadOutcome(n["cost"], "offpolicy.cost");
  r.net = ReadOutcome(n["net"], "offpolicy.net");
  return r;
}

}  // namespace

std::string SchemaYaml(const AllotConfig& config) { return FlowText(SchemaNode(config)); }

const AlgorithmTraits& Architecture::traits() const {
  const AlgorithmTraits* found = FindAlgorithm(algorithm);
  if (!found)
    throw std::invalid_argument("unknown algorithm '" + algorithm + "' (" + AlgorithmNames() + ")");
  return *found;
}

BundleManifest ReadManifest(const std::string& path, const AllotConfig& config) {
  const YAML::Node n = YAML::LoadFile(path);
  BundleManifest m;
  m.schema = n["schema"];
  const std::string difference = FirstDifference(m.schema, SchemaNode(config), "schema");
  if (!difference.empty()) throw BundleError("does not match the config: " + difference);
  m.model_format = n["model_format"].as<int>(1);
  if (m.model_format != kModelFormat) {
    throw BundleError("model_format " + std::to_string(m.model_format) +
                      " is not served (this server serves format " + std::to_string(kModelFormat) +
                      "); retrain it with allot-train");
  }
  m.version = n["version"].as<std::string>();
  m.created = n["created"].as<std::string>("");
  m.config_version = n["config_version"].as<std::string>("");
  m.input_hash = n["input_hash"].as<std::string>("");
  m.input_files = n["input_files"].as<int64_t>(0);
  m.transitions = n["transitions"].as<int64_t>(0);
  m.skipped_records = n["skipped_records"].as<int64_t>(0);
  m.architecture = ReadArchitecture(n);
  m.hyperparameters = ReadHyperparameters(n["hyperparameters"]);
  const std::string reuse = n["reuse_source"].as<std::string>("half_life");
  if (reuse != ReuseSourceName(true) && reuse != ReuseSourceName(false))
    throw BundleError(std::string(kManifestFile) + ": reuse_source: must be model or half_life");
  m.reuse_model = reuse == ReuseSourceName(true);
  m.cost_source = ReadCostSource(n["cost_source"], config);
  m.fitted_range = ReadFittedRanges(n["fitted_range"], config);
  m.calibration = ReadCalibration(n["calibration"], config);
  m.unlogged_actions = ReadPerAgentLists<uint32_t>(n["unlogged_actions"], "unlogged_actions",
                                                   config, ReadUnloggedList);
  m.logged_counts =
      ReadPerAgentLists<int64_t>(n["logged_counts"], "logged_counts", config, ReadCountList);
  if (const YAML::Node w = n["warnings"]) m.warnings = w.as<std::vector<std::string>>();
  if (const YAML::Node metrics = n["metrics"])
    m.metrics = metrics.as<std::map<std::string, double>>();
  m.offpolicy = ReadOffPolicy(n["offpolicy"]);
  return m;
}

void WriteManifest(const BundleManifest& m, const AllotConfig& config, const std::string& path) {
  YAML::Emitter y;
  y << YAML::BeginMap;
  y << YAML::Key << "version" << YAML::Value << m.version;
  y << YAML::Key << "created" << YAML::Value << m.created;
  y << YAML::Key << "model_format" << YAML::Value << m.model_format;
  y << YAML::Key << "algorithm" << YAML::Value << m.architecture.algorithm;
  y << YAML::Key << "config_version" << YAML::Value << m.config_version;
  y << YAML::Key << "input_hash" << YAML::Value << m.input_hash;
  y << YAML::Key << "input_files" << YAML::Value << m.input_files;
  y << YAML::Key << "transitions" << YAML::Value << m.transitions;
  y << YAML::Key << "skipped_records" << YAML::Value << m.skipped_records;
  y << YAML::Key << "schema" << YAML::Value << m.schema;
  WriteArchitecture(y, m.architecture);
  WriteHyperparameters(y, m.hyperparameters);
  y << YAML::Key << "reuse_source" << YAML::Value << ReuseSourceName(m.reuse_model);
  if (!m.cost_source.empty()) {
    y << YAML::Key << "cost_source" << YAML::Value << YAML::BeginMap;
    for (size_t i = 0; i < m.cost_source.size() && i < config.agents.size(); ++i)
      y << YAML::Key << config.agents[i].name << YAML::Value << m.cost_source[i];
    y << YAML::EndMap;
  }
  WriteFittedRanges(y, m.fitted_range, config);
  y << YAML::Key << "calibration" << YAML::Value << YAML::BeginSeq;
  for (const AgentCalibration& c : m.calibration) {
    y << YAML::Flow << YAML::BeginMap << YAML::Key << "agent" << YAML::Value << c.agent << YAML::Key
      << "a" << YAML::Value << c.a << YAML::Key << "b" << YAML::Value << c.b << YAML::EndMap;
  }
  y << YAML::EndSeq;
  WritePerAgentLists(y, "unlogged_actions", m.unlogged_actions, config);
  WritePerAgentLists(y, "logged_counts", m.logged_counts, config);
  y << YAML::Key << "warnings" << YAML::Value << YAML::BeginSeq;
  for (const std::string& w : m.warnings) y << w;
  y << YAML::EndSeq;
  y << YAML::Key << "metrics" << YAML::Value << YAML::BeginMap;
  for (const auto& [k, v] : m.metrics) y << YAML::Key << k << YAML::Value << v;
  y << YAML::EndMap;
  if (m.offpolicy) WriteOffPolicy(y, *m.offpolicy);
  y << YAML::EndMap;
  std::ofstream out(path, std::ios::trunc);
  out << y.c_str() << "\n";
  if (!out) throw BundleError("cannot write " + path);
}

}  // namespace allot::models
