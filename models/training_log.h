// Reading Transition training logs (length-delimited protobuf) and checking every record against
// the config's schema, into column-major arrays the trainer consumes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
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
  // rows: a hash of the request's identity (SplitKey). It decides the training/validation split,
  // so a request lands on the same side however the logs are sharded or spread over ranks.
  std::vector<uint64_t> split_key;
  size_t rows = 0;
  size_t skipped = 0;  // bad records skipped (skip_bad only)
  size_t partial = 0;  // cache-reuse records: they train the agents that ran and the reuse model
  size_t reused = 0;   // records with no agent step at all (nothing to learn from)
  std::vector<std::string> files;
  std::string input_hash;  // InputHash of the files
};

// The request's identity as a well-mixed 64-bit hash: of its request id, user and timestamp, or
// of the whole record when it has no request id.
uint64_t SplitKey(const v1::Transition& t);

// True when a request with this key belongs to the validation split: about `fraction` of all
// keys, a different set for each seed.
bool IsValidationKey(uint64_t key, double fraction, uint64_t seed);
// A second hash of the key, independent of the split: the order in which validation rows are
// sampled when only some of them are kept.
uint64_t SampleRank(uint64_t key, uint64_t seed);

// True when row `row` trains the cache-reuse model: the first agent decided to reuse a cached
// stage output that was there (its age is known).
bool IsReuseRow(const TrainingLog& log, size_t row);

// The rows of `log` at the given indices, in that order (counts and file names are kept).
TrainingLog SelectRows(const TrainingLog& log, const std::vector<size_t>& rows);

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

// Streams one log file's records, one in memory at a time, and says where each one starts so
// that a later pass can seek back to it.
class LogFileReader {
 public:
  // Throws LogError when the file cannot be opened; starts at byte `offset`.
  explicit LogFileReader(const std::string& file, uint64_t offset = 0);
  ~LogFileReader();
  LogFileReader(const LogFileReader&) = delete;
  LogFileReader& operator=(const LogFileReader&) = delete;

  enum class Result { kRecord, kEnd, kCorrupt };
  // kCorrupt: a truncated or unparseable record, after which the file cannot be resynchronised.
  Result Next(v1::Transition* t);
  uint64_t offset() const;  // of the next record

 private:
  struct Stream;
  std::unique_ptr<Stream> stream_;
};

// Reads every record of `file` into `add`, which returns "" or "FIELD: problem" (the reader says
// where the next record starts). A bad record
// throws LogError "FILE: record N: ..." unless skip_bad, which counts it in `skipped`; a corrupt
// record ends the file (it cannot be resynchronised).
void ForEachRecord(
    const std::string& file, bool skip_bad, size_t& skipped,
    const std::function<std::string(const v1::Transition&, const LogFileReader&)>& add);

// paths: files and/or directories (every *.binpb file inside, sorted); throws LogError when a path
// does not exist or nothing is found.
std::vector<std::string> ExpandLogPaths(const std::vector<std::string>& paths);

// FNV-1a over one file's bytes, as 16 hex digits.
std::string FileHash(const std::string& file);
// The input hash of a log set: FNV-1a over its files' FileHash in order (hex).
std::string InputHash(const std::vector<std::string>& file_hashes);

// paths as ExpandLogPaths. A bad record throws LogError "FILE: record N: FIELD: problem", unless
// skip_bad, which counts and skips it.
TrainingLog ReadTrainingLog(const std::vector<std::string>& paths, const AllotConfig& config,
                            bool skip_bad);

}  // namespace allot::models
