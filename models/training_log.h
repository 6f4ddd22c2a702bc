// Reading Transition training logs (length-delimited protobuf) and checking every record against
// the config's schema, into column-major arrays the trainer consumes.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy/action_space.h"
#include "policy/config.h"

namespace allot::v1 {
class Transition;
}

namespace allot::models {

class LogError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One agent's columns: row i belongs to transition i. A cache-reuse request whose reused stage
// skipped this agent has present[i] == 0; when the agent was not even asked, decided[i] == 0 too
// and the other columns of row i are zeros.
struct AgentColumns {
  std::vector<float> features;    // rows x width
  std::vector<int64_t> digits;    // rows x decisions: the choice index of each decision
  std::vector<int64_t> joint;     // rows
  std::vector<float> cost;        // rows, measured core-ms
  std::vector<float> lambda;      // rows, the price of compute the logging policy used
  std::vector<uint8_t> present;   // rows: 1 when the agent's stage ran for this request
  std::vector<uint8_t> decided;   // rows: 1 when the agent was asked (its features are real)
  std::vector<uint8_t> explored;  // rows: 1 when the logging policy explored
  std::vector<float> propensity;  // rows: P(logged joint) under the logging policy (0: unknown)
  size_t width = 0;
  size_t decisions = 0;
};

inline constexpr int kCacheStages = 3;

struct TrainingLog {
  std::vector<AgentColumns> agents;  // config order
  std::vector<float> revenue;        // rows
  std::vector<int64_t> timestamp_ms;
  // Cache context per row, kCacheStages entries each (recall, pre-rank, rank): the age of the
  // usable cached output (-1: none) and its size; the reuse the logging policy chose (0 none).
  std::vector<float> cache_age, cache_size;
  std::vector<int8_t> cache_reuse;
  std::vector<float> cache_propensity;  // rows: P(logged cache_reuse) (0: unknown)
  size_t rows = 0;
  size_t skipped = 0;  // bad records skipped (skip_bad only)
  size_t partial = 0;  // cache-reuse records: they train the agents that ran and the reuse model
  size_t reused = 0;   // records with no agent step at all (nothing to learn from)
  std::vector<std::string> files;
  std::string input_hash;  // FNV-1a over the files' bytes, hex
};

// Adds transitions one at a time, checked against the config's schema (the reader's core; the
// simulator uses it to evaluate logs it holds in memory).
class TrainingLogBuilder {
 public:
  explicit TrainingLogBuilder(const AllotConfig& config);
  // Appends a valid record and returns ""; returns "FIELD: problem" and appends nothing otherwise.
  std::string Add(const v1::Transition& t);
  TrainingLog& log() { return log_; }
  TrainingLog Finish() { return std::move(log_); }

 private:
  const AllotConfig& config_;
  std::vector<ActionSpace> spaces_;
  std::vector<size_t> agent_of_step_;
  TrainingLog log_;
};

// paths: files and/or directories (every *.binpb file inside, sorted). A bad record throws
// LogError "FILE: record N: FIELD: problem", unless skip_bad, which counts and skips it.
TrainingLog ReadTrainingLog(const std::vector<std::string>& paths, const AllotConfig& config,
                            bool skip_bad);

}  // namespace allot::models
