// Parsing is streaming (one record in memory at a time); validation names file, record and field.
#include "models/training_log.h"

#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/util/delimited_message_util.h>

#include <algorithm>
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

// Returns "" when the record fits the schema, else "FIELD: problem".
std::string Check(const v1::Transition& t, const AllotConfig& config,
                  const std::vector<ActionSpace>& spaces) {
  if (t.steps_size() != static_cast<int>(config.agents.size())) {
    return "steps: expected " + std::to_string(config.agents.size()) + " agent steps, got " +
           std::to_string(t.steps_size());
  }
  if (!std::isfinite(t.revenue()) || t.revenue() < 0) return "revenue: must be finite and >= 0";
  for (int i = 0; i < t.steps_size(); ++i) {
    const v1::AgentStep& s = t.steps(i);
    const AgentConfig& agent = config.agents[i];
    const std::string at = "steps[" + std::to_string(i) + "].";
    if (s.agent() != agent.name)
      return at + "agent: expected '" + agent.name + "', got '" + s.agent() + "'";
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
  }
  return "";
}

}  // namespace

TrainingLog ReadTrainingLog(const std::vector<std::string>& paths, const AllotConfig& config,
                            bool skip_bad) {
  TrainingLog log;
  log.files = ExpandPaths(paths);
  std::vector<ActionSpace> spaces;
  for (const AgentConfig& a : config.agents) spaces.emplace_back(a);
  log.agents.resize(config.agents.size());
  for (size_t i = 0; i < config.agents.size(); ++i) {
    log.agents[i].width = config.agents[i].features.size();
    log.agents[i].decisions = spaces[i].num_decisions();
  }
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
      // A repeat request served from a cached stage output skipped the agents up to that stage:
      // its chain is incomplete and carries no decision of theirs to learn from.
      if (t.cache_reuse() != v1::CACHE_REUSE_NONE &&
          t.steps_size() < static_cast<int>(config.agents.size())) {
        ++log.reused;
        continue;
      }
      const std::string problem = Check(t, config, spaces);
      if (!problem.empty()) {
        if (!skip_bad) throw LogError(file + ": record " + std::to_string(record) + ": " + problem);
        ++log.skipped;
        continue;
      }
      for (int i = 0; i < t.steps_size(); ++i) {
        const v1::AgentStep& s = t.steps(i);
        AgentColumns& c = log.agents[i];
        c.features.insert(c.features.end(), s.features().begin(), s.features().end());
        for (size_t d = 0; d < spaces[i].num_decisions(); ++d) {
          // Digit = position of the choice among the decision's feasible choices.
          const uint32_t choice = spaces[i].Choice(s.joint_action(), d);
          int64_t digit = 0;
          while (spaces[i].ChoiceValue(d, static_cast<size_t>(digit)) != choice) ++digit;
          c.digits.push_back(digit);
        }
        c.joint.push_back(s.joint_action());
        c.cost.push_back(static_cast<float>(s.cost()));
      }
      log.revenue.push_back(static_cast<float>(t.revenue()));
      log.timestamp_ms.push_back(t.timestamp_ms());
      ++log.rows;
    }
  }
  std::ostringstream hex;
  hex << std::hex << hash;
  log.input_hash = hex.str();
  return log;
}

}  // namespace allot::models
