// Where a training run's rows come from. The trainer never holds a whole log: it reads this
// rank's training rows one chunk at a time, keeps the validation rows (every rank's, the same on
// each) in memory, and starts from statistics of the whole log gathered in one pass before the
// first gradient step. No LibTorch in this header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/collective.h"
#include "models/fitted_range.h"
#include "models/log_check.h"
#include "models/training_log.h"
#include "policy/config.h"

namespace allot::models {

class ValidationSample;

// How rows are split and chunked; the same on every rank.
struct SplitOptions {
  double validation_fraction = 0.1;  // of requests, by SplitKey: the same rows however sharded
  uint64_t seed = 1;
  // Training rows per chunk; 0: one chunk for a log in memory, 8192 rows for files.
  size_t chunk_rows = 0;
  // Validation rows kept in memory for the metrics: the held-out rows beyond it are neither
  // trained on nor measured. The kept ones are chosen by a second hash of the request, so they
  // are the same however the log is sharded or spread over ranks.
  size_t max_validation_rows = 100000;
};

// What the phases need to know about the whole log (all ranks) before they see it.
struct LogStatistics {
  size_t rows = 0;  // training and validation
  size_t train_rows = 0;
  size_t validation_rows = 0;
  size_t skipped = 0, partial = 0, reused = 0;  // as TrainingLog's counters
  size_t train_reuse_rows = 0;                  // IsReuseRow among the training rows
  double train_revenue = 0;                     // summed over the training rows
  // Per agent and joint action, over the training rows where the agent ran: revenue and rows.
  std::vector<std::vector<double>> action_revenue, action_rows;
  FittedRanges ranges;   // over every row on which each agent decided
  LoggedActions logged;  // every row's logged actions, for CheckLogs
  std::vector<std::string> files;
  std::string input_hash;

  explicit LogStatistics(const AllotConfig& config);
  // Counts `log`'s rows (its counters too), each on its side of the split.
  void Add(const TrainingLog& log, const SplitOptions& split);
  // Every rank's statistics merged, on every rank. Call on all ranks at once.
  void Merge(Collective& ranks);
};

class TrainingSource {
 public:
  virtual ~TrainingSource() = default;
  // This rank's training rows, in chunks that are each read whole into memory.
  virtual size_t chunks() const = 0;
  virtual TrainingLog ReadChunk(size_t k) const = 0;
  // The validation rows kept (at most max_validation_rows), in log order.
  const TrainingLog& validation() const { return validation_; }
  const LogStatistics& statistics() const { return statistics_; }

 protected:
  explicit TrainingSource(const AllotConfig& config) : statistics_(config) {}
  TrainingLog validation_;
  LogStatistics statistics_;
};

// A log that is already in memory (the simulator's, the tests'): one process, no I/O.
class InMemorySource final : public TrainingSource {
 public:
  InMemorySource(const TrainingLog& log, const AllotConfig& config, const SplitOptions& split);
  size_t chunks() const override { return chunks_.size(); }
  TrainingLog ReadChunk(size_t k) const override { return SelectRows(log_, chunks_[k]); }

 private:
  const TrainingLog& log_;
  std::vector<std::vector<size_t>> chunks_;
};

// Log files streamed from disk. Rank r reads files r, r + world_size, ... of the sorted set: a
// first pass indexes where each chunk starts, checks every record (a bad one throws LogError
// naming file and record, unless skip_bad) and collects the validation rows and statistics, which
// are then merged across ranks. Memory: one chunk at a time plus the validation rows.
class ShardedSource final : public TrainingSource {
 public:
  ShardedSource(const std::vector<std::string>& paths, const AllotConfig& config, bool skip_bad,
                const SplitOptions& split, Collective& ranks);
  size_t chunks() const override { return chunks_.size(); }
  TrainingLog ReadChunk(size_t k) const override;

 private:
  struct Chunk {
    std::string file;
    uint64_t offset = 0;  // of its first record
    size_t records = 0;   // every record it spans, validation and bad ones included
  };
  void IndexFile(const std::string& file, uint64_t file_index, bool skip_bad,
                 ValidationSample& kept);

  const AllotConfig& config_;
  SplitOptions split_;
  std::vector<Chunk> chunks_;
};

}  // namespace allot::models
