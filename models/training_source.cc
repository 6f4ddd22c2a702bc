// Training sources; see training_source.h.
#include "models/training_source.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <queue>

#include "allot/v1/transition.pb.h"
#include "policy/action_space.h"

namespace allot::models {
namespace {

void AddTo(std::vector<double>& packed, size_t& at, double& value, bool pack) {
  if (pack)
    packed.push_back(value);
  else
    value = packed[at++];
}

// Appends a fixed-width integer (host order: every rank runs the same binary).
void PutU64(std::string& out, uint64_t x) { out.append(reinterpret_cast<const char*>(&x), 8); }
uint64_t GetU64(const std::string& in, size_t at) {
  uint64_t x = 0;
  std::memcpy(&x, in.data() + at, 8);
  return x;
}

}  // namespace

// The validation rows a run keeps: the `limit` whose keys rank lowest under a second hash (a
// bottom-k sample), each with its place in the log and, for rows read from files, its record.
class ValidationSample {
 public:
  ValidationSample(size_t limit, uint64_t seed) : limit_(limit), seed_(seed) {}

  void Offer(uint64_t key, uint64_t place, std::string record = {}) {
    Push(Entry{SampleRank(key, seed_), place, std::move(record)});
  }

  // Every rank's sample merged into this one (the same on every rank).
  void Merge(Collective& ranks) {
    if (ranks.world_size() == 1) return;
    std::string mine;
    for (Entry& e : Drain()) {
      PutU64(mine, e.priority);
      PutU64(mine, e.place);
      PutU64(mine, e.record.size());
      mine += e.record;
    }
    for (const std::string& part : ranks.Gather(mine)) {
      for (size_t at = 0; at < part.size();) {
        const uint64_t priority = GetU64(part, at), place = GetU64(part, at + 8);
        const uint64_t n = GetU64(part, at + 16);
        Push(Entry{priority, place, part.substr(at + 24, n)});
        at += 24 + n;
      }
    }
  }

  struct Entry {
    uint64_t priority = 0, place = 0;
    std::string record;
    bool operator<(const Entry& o) const {
      return priority != o.priority ? priority < o.priority : place < o.place;
    }
  };
  // The kept rows in log order (by place); empties the sample.
  std::vector<Entry> Drain() {
    std::vector<Entry> out;
    while (!heap_.empty()) {
      out.push_back(heap_.top());
      heap_.pop();
    }
    std::sort(out.begin(), out.end(),
              [](const Entry& a, const Entry& b) { return a.place < b.place; });
    return out;
  }

 private:
  void Push(Entry e) {
    if (heap_.size() < limit_) {
      heap_.push(std::move(e));
    } else if (limit_ > 0 && e < heap_.top()) {
      heap_.pop();
      heap_.push(std::move(e));
    }
  }

  size_t limit_;
  uint64_t seed_;
  std::priority_queue<Entry> heap_;  // the largest priority on top, evicted first
};

LogStatistics::LogStatistics(const AllotConfig& config)
    : ranges(config.agents.size()), logged(config) {
  for (const AgentConfig& agent : config.agents) {
    const size_t actions = ActionSpace(agent).size();
    action_revenue.emplace_back(actions, 0.0);
    action_rows.emplace_back(actions, 0.0);
  }
}

void LogStatistics::Add(const TrainingLog& log, const SplitOptions& split) {
  skipped += log.skipped;
  partial += log.partial;
  reused += log.reused;
  rows += log.rows;
  ExtendFittedRanges(ranges, log);
  logged.Add(log);
  for (size_t r = 0; r < log.rows; ++r) {
    if (IsValidationKey(log.split_key[r], split.validation_fraction, split.seed)) {
      ++validation_rows;
      continue;
    }
    ++train_rows;
    train_revenue += log.revenue[r];
    train_reuse_rows += IsReuseRow(log, r);
    for (size_t i = 0; i < log.agents.size(); ++i) {
      if (!log.agents[i].present[r]) continue;
      const auto joint = static_cast<size_t>(log.agents[i].joint[r]);
      action_revenue[i][joint] += log.revenue[r];
      action_rows[i][joint] += 1;
    }
  }
}

void LogStatistics::Merge(Collective& ranks) {
  if (ranks.world_size() == 1) return;
  // Counts and sums in one vector: pass 0 packs every field, the vector is summed over the
  // ranks, pass 1 unpacks the sums into the same fields in the same order.
  std::vector<double> sums;
  for (int pass = 0; pass < 2; ++pass) {
    const bool pack = pass == 0;
    size_t at = 0;
    for (size_t* count :
         {&rows, &train_rows, &validation_rows, &skipped, &partial, &reused, &train_reuse_rows}) {
      double value = static_cast<double>(*count);
      AddTo(sums, at, value, pack);
      *count = static_cast<size_t>(std::llround(value));
    }
    AddTo(sums, at, train_revenue, pack);
    AddTo(sums, at, logged.rows, pack);
    for (auto* table : {&action_revenue, &action_rows, &logged.joint})
      for (auto& agent : *table)
        for (double& x : agent) AddTo(sums, at, x, pack);
    for (auto* column : {&logged.decided, &logged.explored, &logged.propensity, &logged.randomised})
      for (double& x : *column) AddTo(sums, at, x, pack);
    if (pack) ranks.Sum(sums);
  }
  // Ranges: every feature's -min and max, maximised; -inf where a rank never saw the agent.
  const double none = -std::numeric_limits<double>::infinity();
  std::vector<double> width(ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) width[i] = static_cast<double>(ranges[i].size());
  ranks.Max(width);
  std::vector<double> extremes;
  for (size_t i = 0; i < ranges.size(); ++i) {
    for (size_t f = 0; f < static_cast<size_t>(width[i]); ++f) {
      const bool seen = f < ranges[i].size();
      extremes.push_back(seen ? -static_cast<double>(ranges[i][f].min) : none);
      extremes.push_back(seen ? static_cast<double>(ranges[i][f].max) : none);
    }
  }
  ranks.Max(extremes);
  size_t at = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    ranges[i].resize(static_cast<size_t>(width[i]));
    for (FeatureRange& r : ranges[i]) {
      r.min = static_cast<float>(-extremes[at++]);
      r.max = static_cast<float>(extremes[at++]);
    }
  }
}

InMemorySource::InMemorySource(const TrainingLog& log, const AllotConfig& config,
                               const SplitOptions& split)
    : TrainingSource(config), log_(log) {
  std::vector<size_t> train;
  ValidationSample kept(split.max_validation_rows, split.seed);
  for (size_t r = 0; r < log.rows; ++r) {
    if (IsValidationKey(log.split_key[r], split.validation_fraction, split.seed))
      kept.Offer(log.split_key[r], r);
    else
      train.push_back(r);
  }
  const size_t per_chunk = split.chunk_rows > 0 ? split.chunk_rows : std::max<size_t>(1, log.rows);
  for (size_t start = 0; start < train.size(); start += per_chunk) {
    const size_t end = std::min(train.size(), start + per_chunk);
    chunks_.emplace_back(train.begin() + static_cast<ptrdiff_t>(start),
                         train.begin() + static_cast<ptrdiff_t>(end));
  }
  std::vector<size_t> validation;
  for (const ValidationSample::Entry& e : kept.Drain()) validation.push_back(e.place);
  validation_ = SelectRows(log, validation);
  statistics_.Add(log, split);
  statistics_.files = log.files;
  statistics_.input_hash = log.input_hash;
}

ShardedSource::ShardedSource(const std::vector<std::string>& paths, const AllotConfig& config,
                             bool skip_bad, const SplitOptions& split, Collective& ranks)
    : TrainingSource(config), config_(config), split_(split) {
  if (split_.chunk_rows == 0) split_.chunk_rows = 8192;
  const std::vector<std::string> files = ExpandLogPaths(paths);
  ValidationSample kept(split_.max_validation_rows, split_.seed);
  std::string hashes;  // per file this rank reads: its index in the sorted set and its hash
  for (size_t f = static_cast<size_t>(ranks.rank()); f < files.size();
       f += static_cast<size_t>(ranks.world_size())) {
    IndexFile(files[f], f, skip_bad, kept);
    const std::string hash = FileHash(files[f]);
    PutU64(hashes, f);
    PutU64(hashes, hash.size());
    hashes += hash;
  }
  statistics_.Merge(ranks);
  statistics_.files = files;
  // The input hash in file order, whichever rank read each file.
  std::map<uint64_t, std::string> by_file;
  for (const std::string& part : ranks.Gather(hashes)) {
    for (size_t at = 0; at < part.size();) {
      const uint64_t f = GetU64(part, at), n = GetU64(part, at + 8);
      by_file[f] = part.substr(at + 16, n);
      at += 16 + n;
    }
  }
  std::vector<std::string> ordered;
  for (auto& [f, hash] : by_file) ordered.push_back(hash);
  statistics_.input_hash = InputHash(ordered);
  // Every rank's kept validation rows, parsed in log order.
  kept.Merge(ranks);
  TrainingLogBuilder builder(config_);
  v1::Transition t;
  for (const ValidationSample::Entry& e : kept.Drain()) {
    t.ParseFromString(e.record);
    builder.Add(t);  // checked when it was indexed
  }
  validation_ = builder.Finish();
  validation_.files = statistics_.files;
  validation_.input_hash = statistics_.input_hash;
}

// Reads one file record by record: checks each, counts it into the statistics a chunk at a time,
// offers its validation records to the sample, and notes where each chunk of chunk_rows training
// rows starts.
void ShardedSource::IndexFile(const std::string& file, uint64_t file_index, bool skip_bad,
                              ValidationSample& kept) {
  std::optional<TrainingLogBuilder> scratch(std::in_place, config_);
  Chunk chunk{file, 0, 0};
  size_t train_rows = 0, record = 0;
  auto flush = [&](uint64_t next_offset) {
    statistics_.Add(scratch->log(), split_);
    scratch.emplace(config_);
    if (train_rows > 0) chunks_.push_back(chunk);
    chunk = Chunk{file, next_offset, 0};
    train_rows = 0;
  };
  uint64_t end = 0;
  ForEachRecord(file, skip_bad, statistics_.skipped,
                [&](const v1::Transition& t, const LogFileReader& reader) {
                  const uint64_t place = file_index << 32 | record++;
                  ++chunk.records;
                  end = reader.offset();
                  const size_t before = scratch->log().rows;
                  const std::string problem = scratch->Add(t);
                  if (!problem.empty() || scratch->log().rows == before)
                    return problem;  // bad, or no agent step: counted, nothing to learn
                  const uint64_t key = SplitKey(t);
                  if (IsValidationKey(key, split_.validation_fraction, split_.seed)) {
                    kept.Offer(key, place, t.SerializeAsString());
                  } else if (++train_rows == split_.chunk_rows) {
                    flush(end);
                  }
                  return std::string();
                });
  flush(end);
}

TrainingLog ShardedSource::ReadChunk(size_t k) const {
  const Chunk& chunk = chunks_[k];
  TrainingLogBuilder builder(config_);
  LogFileReader reader(chunk.file, chunk.offset);
  v1::Transition t;
  for (size_t record = 0; record < chunk.records; ++record) {
    if (reader.Next(&t) != LogFileReader::Result::kRecord)
      throw LogError(chunk.file + ": changed while training (a record indexed at byte " +
                     std::to_string(chunk.offset) + " onwards is gone)");
    if (IsValidationKey(SplitKey(t), split_.validation_fraction, split_.seed)) continue;
    builder.Add(t);  // a record the index skipped as bad is refused again here
  }
  TrainingLog log = builder.Finish();
  log.files = {chunk.file};
  return log;
}

}  // namespace allot::models
