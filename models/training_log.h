// Reading Transition training logs (length-delimited protobuf) and checking every record against
// the config's schema, into column-major arrays the trainer consumes.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy/config.h"

namespace allot::models {

class LogError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One agent's columns: row i belongs to transition i.
struct AgentColumns {
  std::vector<float> features;  // rows x width
  std::vector<int64_t> digits;  // rows x decisions: the choice index of each decision
  std::vector<int64_t> joint;   // rows
  std::vector<float> cost;      // rows, measured core-ms
  size_t width = 0;
  size_t decisions = 0;
};

struct TrainingLog {
  std::vector<AgentColumns> agents;  // config order
  std::vector<float> revenue;        // rows
  std::vector<int64_t> timestamp_ms;
  size_t rows = 0;
  size_t skipped = 0;  // bad records skipped (skip_bad only)
  size_t reused = 0;   // cache-reuse records with an incomplete chain (not trained on)
  std::vector<std::string> files;
  std::string input_hash;  // FNV-1a over the files' bytes, hex
};

// paths: files and/or directories (every *.binpb file inside, sorted). A bad record throws
// LogError "FILE: record N: FIELD: problem", unless skip_bad, which counts and skips it.
TrainingLog ReadTrainingLog(const std::vector<std::string>& paths, const AllotConfig& config,
                            bool skip_bad);

}  // namespace allot::models
