// Parsing is streaming (one record in memory at a time); validation names file, record and field.
#include "models/training_log.h"

#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/util/delimited_message_util.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "allot/v1/transition.pb.h"
#include "policy/action_space.h"

namespace allot::models {
namespace {

std::vector<std::string> ExpandPaths(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      std::vector<std::string> inside;
      // Shards are *.binpb; anything else in the directory (e.g. the generator's manifest) is not a
      // log.
      for (const auto& entry : std::filesystem::directory_iterator(p)) {
        if (entry.is_regular_file() && entry.path().extension() == ".binpb")
          inside.push_back(entry.path().string());
      }
      std::sort(inside.begin(), inside.end());
      files.insert(files.end(), inside.begin(), inside.end());
    } else if (std::filesystem::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      throw LogError(p + ": no such file or directory");
    }
  }
  if (files.empty()) throw LogError("no log files found in the given paths");
  return files;
}

// Returns "" when the record fits the schema, else "FIELD: problem". Fills agent_of_step with
// the config agent of every step. A request without cache reuse has one step per agent in chain
// order; a repeat request served from a cached stage output skipped agents: its steps are a
// subsequence of the chain, and only a step marked served_from_cache may have run no stage.
std::string Check(const v1::Transition& t, const AllotConfig& config,
                  const std::vector<ActionSpace>& spaces, std::vector<size_t>* agent_of_step) {
  const size_t agents = config.agents.size();
  const size_t steps = static_cast<size_t>(t.steps_size());
  const bool reused = t.cache_reuse() != v1::CACHE_REUSE_NONE;
  if (steps > agents || (steps < agents && !reused)) {
    return "steps: expected " + std::to_string(agents) + " agent steps, got " +
           std::to_string(steps);
  }
  if (!std::isfinite(t.revenue()) || t.revenue() < 0) return "revenue: must be finite and >= 0";
  if (!(t.cache_reuse_propensity() >= 0 && t.cache_reuse_propensity() <= 1))
    return "cache_reuse_propensity: must be in [0, 1]";
  agent_of_step->clear();
  size_t next_agent = 0;
  for (int k = 0; k < t.steps_size(); ++k) {
    const v1::AgentStep& s = t.steps(k);
    const std::string at = "steps[" + std::to_string(k) + "].";
    size_t i = next_agent;
    while (i < agents && config.agents[i].name != s.agent()) ++i;
    if (i == agents || (!reused && i != next_agent)) {
      return at + "agent: expected '" + config.agents[std::min(next_agent, agents - 1)].name + "'" +
             (reused ? " or a later agent" : "") + ", got '" + s.agent() + "'";
    }
    next_agent = i + 1;
    agent_of_step->push_back(i);
    const AgentConfig& agent = config.agents[i];
    if (static_cast<size_t>(s.features_size()) != agent.features.size()) {
      return at + "features: expected " + std::to_string(agent.features.size()) + ", got " +
             std::to_string(s.features_size());
    }
    for (int f = 0; f < s.features_size(); ++f) {
      if (!std::isfinite(s.features(f)))
        return at + "features[" + std::to_string(f) + "]: not finite";
    }
    if (s.joint_action() >= spaces[i].size()) {
      return at + "joint_action: " + std::to_string(s.joint_action()) + " is outside [0, " +
             std::to_string(spaces[i].size()) + ")";
    }
    if (!std::isfinite(s.cost()) || s.cost() < 0) return at + "cost: must be finite and >= 0";
    if (!std::isfinite(s.compute_price()) || s.compute_price() < 0)
      return at + "compute_price: must be finite and >= 0";
    if (!(s.propensity() >= 0 && s.propensity() <= 1)) return at + "propensity: must be in [0, 1]";
    if (s.served_from_cache() && !reused)
      return at + "served_from_cache: set on a request without cache reuse";
  }
  return "";
}

void AppendStep(const v1::AgentStep* s, const ActionSpace& space, AgentColumns& c) {
  const bool ran = s != nullptr && !s->served_from_cache();
  c.present.push_back(ran ? 1 : 0);
  c.decided.push_back(s != nullptr ? 1 : 0);
  c.explored.push_back(s != nullptr && s->explored() ? 1 : 0);
  c.propensity.push_back(s != nullptr ? static_cast<float>(s->propensity()) : 0.0f);
  if (s == nullptr) {  // skipped by a cache reuse before deciding: a masked row
    c.features.insert(c.features.end(), c.width, 0.0f);
    c.digits.insert(c.digits.end(), c.decisions, 0);
    c.joint.push_back(0);
    c.cost.push_back(0.0f);
    c.lambda.push_back(0.0f);
    return;
  }
  c.features.insert(c.features.end(), s->features().begin(), s->features().end());
  for (size_t d = 0; d < space.num_decisions(); ++d) {
    // Digit = position of the choice among the decision's feasible choices.
    const uint32_t choice = space.Choice(s->joint_action(), d);
    int64_t digit = 0;
    while (space.ChoiceValue(d, static_cast<size_t>(digit)) != choice) ++digit;
    c.digits.push_back(digit);
  }
  c.joint.push_back(s->joint_action());
  c.cost.push_back(static_cast<float>(s->cost()));
  c.lambda.push_back(static_cast<float>(s->compute_price()));
}

// The cache context of one request: age and size per stage (-1 age: no usable cache).
void AppendCache(const v1::Transition& t, TrainingLog& log) {
  std::array<float, kCacheStages> age, size;
  age.fill(-1.0f);
  size.fill(0.0f);
  for (const v1::StageCache& c : t.cache()) {
    const int stage = static_cast<int>(c.stage()) - 1;
    if (stage < 0 || stage >= kCacheStages || !c.present() || !std::isfinite(c.age_seconds()) ||
        c.age_seconds() < 0)
      continue;
    age[static_cast<size_t>(stage)] = static_cast<float>(c.age_seconds());
    size[static_cast<size_t>(stage)] = static_cast<float>(c.size());
  }
  log.cache_age.insert(log.cache_age.end(), age.begin(), age.end());
  log.cache_size.insert(log.cache_size.end(), size.begin(), size.end());
  log.cache_reuse.push_back(static_cast<int8_t>(t.cache_reuse()));
  log.cache_propensity.push_back(static_cast<float>(t.cache_reuse_propensity()));
}

}  // namespace

TrainingLogBuilder::TrainingLogBuilder(const AllotConfig& config) : config_(config) {
  for (const AgentConfig& a : config.agents) spaces_.emplace_back(a);
  log_.agents.resize(config.agents.size());
  for (size_t i = 0; i < config.agents.size(); ++i) {
    log_.agents[i].width = config.agents[i].features.size();
    log_.agents[i].decisions = spaces_[i].num_decisions();
  }
}

std::string TrainingLogBuilder::Add(const v1::Transition& t) {
  const std::string problem = Check(t, config_, spaces_, &agent_of_step_);
  if (!problem.empty()) return problem;
  if (t.steps_size() == 0) {  // nobody was asked: no decision to learn from
    ++log_.reused;
    return "";
  }
  log_.partial += t.cache_reuse() != v1::CACHE_REUSE_NONE;
  size_t k = 0;
  for (size_t i = 0; i < config_.agents.size(); ++i) {
    const bool has = k < agent_of_step_.size() && agent_of_step_[k] == i;
    AppendStep(has ? &t.steps(static_cast<int>(k)) : nullptr, spaces_[i], log_.agents[i]);
    k += has;
  }
  AppendCache(t, log_);
  log_.revenue.push_back(static_cast<float>(t.revenue()));
  log_.timestamp_ms.push_back(t.timestamp_ms());
  ++log_.rows;
  return "";
}

TrainingLog ReadTrainingLog(const std::vector<std::string>& paths, const AllotConfig& config,
                            bool skip_bad) {
  TrainingLogBuilder builder(config);
  TrainingLog& log = builder.log();
  log.files = ExpandPaths(paths);
  uint64_t hash = 1469598103934665603ull;
  for (const std::string& file : log.files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw LogError(file + ": cannot read");
    std::stringstream bytes;
    bytes << in.rdbuf();
    const std::string data = bytes.str();
    for (unsigned char c : data) hash = (hash ^ c) * 1099511628211ull;
    google::protobuf::io::ArrayInputStream stream(data.data(), static_cast<int>(data.size()));
    for (size_t record = 0;; ++record) {
      v1::Transition t;
      bool clean_eof = false;
      if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&t, &stream, &clean_eof)) {
        if (clean_eof) break;
        // A truncated or corrupt tail cannot be resynchronised: stop reading this file.
        if (!skip_bad)
          throw LogError(file + ": record " + std::to_string(record) + ": not a valid Transition");
        ++log.skipped;
        break;
      }
      const std::string problem = builder.Add(t);
      if (!problem.empty()) {
        if (!skip_bad) throw LogError(file + ": record " + std::to_string(record) + ": " + problem);
        ++log.skipped;
      }
    }
  }
  std::ostringstream hex;
  hex << std::hex << hash;
  log.input_hash = hex.str();
  return builder.Finish();
}

}  // namespace allot::models
