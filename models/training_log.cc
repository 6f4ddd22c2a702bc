// Parsing is streaming (one record in memory at a time); validation names file, record and field.
#include "models/training_log.h"

#include <fcntl.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/util/delimited_message_util.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>

#include "allot/v1/transition.pb.h"
#include "policy/action_space.h"

namespace allot::models {
namespace {

constexpr uint64_t kFnvOffset = 1469598103934665603ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

uint64_t Fnv(uint64_t hash, std::string_view bytes) {
  for (unsigned char c : bytes) hash = (hash ^ c) * kFnvPrime;
  return hash;
}

std::string Hex(uint64_t x) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(x));
  return text;
}

// splitmix64's finaliser: FNV's low bits are poorly mixed for thresholding.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

std::vector<std::string> ExpandLogPaths(const std::vector<std::string>& paths) {
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

namespace {

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
  log.split_key.push_back(SplitKey(t));
}

template <typename T>
void AppendRow(const std::vector<T>& from, size_t row, size_t width, std::vector<T>& to) {
  to.insert(to.end(), from.begin() + static_cast<ptrdiff_t>(row * width),
            from.begin() + static_cast<ptrdiff_t>((row + 1) * width));
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

uint64_t SplitKey(const v1::Transition& t) {
  // A log without request ids is split by the records' contents.
  if (t.request_id().empty()) return Mix(Fnv(kFnvOffset, t.SerializeAsString()));
  uint64_t hash = Fnv(kFnvOffset, t.request_id());
  hash = Fnv(hash, "|" + t.user_id() + "|" + std::to_string(t.timestamp_ms()));
  return Mix(hash);
}

uint64_t SampleRank(uint64_t key, uint64_t seed) { return Mix(key + Mix(seed + 2)); }

bool IsValidationKey(uint64_t key, double fraction, uint64_t seed) {
  const double u = static_cast<double>(Mix(key ^ Mix(seed + 1)) >> 11) * 0x1.0p-53;
  return u < fraction;
}

bool IsReuseRow(const TrainingLog& log, size_t row) {
  const int reused = log.cache_reuse[row];
  if (reused <= 0 || reused > kCacheStages || !log.agents[0].decided[row]) return false;
  return log.cache_age[row * kCacheStages + static_cast<size_t>(reused - 1)] >= 0;
}

TrainingLog SelectRows(const TrainingLog& log, const std::vector<size_t>& rows) {
  TrainingLog out;
  out.agents.resize(log.agents.size());
  for (size_t i = 0; i < log.agents.size(); ++i) {
    const AgentColumns& from = log.agents[i];
    AgentColumns& to = out.agents[i];
    to.width = from.width;
    to.decisions = from.decisions;
    for (size_t r : rows) {
      AppendRow(from.features, r, from.width, to.features);
      AppendRow(from.digits, r, from.decisions, to.digits);
      to.joint.push_back(from.joint[r]);
      to.cost.push_back(from.cost[r]);
      to.lambda.push_back(from.lambda[r]);
      to.present.push_back(from.present[r]);
      to.decided.push_back(from.decided[r]);
      to.explored.push_back(from.explored[r]);
      to.propensity.push_back(from.propensity[r]);
    }
  }
  for (size_t r : rows) {
    out.revenue.push_back(log.revenue[r]);
    out.timestamp_ms.push_back(log.timestamp_ms[r]);
    AppendRow(log.cache_age, r, kCacheStages, out.cache_age);
    AppendRow(log.cache_size, r, kCacheStages, out.cache_size);
    out.cache_reuse.push_back(log.cache_reuse[r]);
    out.cache_propensity.push_back(log.cache_propensity[r]);
    out.split_key.push_back(log.split_key[r]);
  }
  out.rows = rows.size();
  out.skipped = log.skipped;
  out.partial = log.partial;
  out.reused = log.reused;
  out.files = log.files;
  out.input_hash = log.input_hash;
  return out;
}

struct LogFileReader::Stream {
  int fd = -1;
  std::unique_ptr<google::protobuf::io::FileInputStream> input;
  uint64_t start = 0;
};

LogFileReader::LogFileReader(const std::string& file, uint64_t offset)
    : stream_(std::make_unique<Stream>()) {
  stream_->fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (stream_->fd < 0) throw LogError(file + ": cannot read");
  if (offset > 0 && ::lseek(stream_->fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
    ::close(stream_->fd);
    throw LogError(file + ": cannot seek to byte " + std::to_string(offset));
  }
  stream_->start = offset;
  stream_->input = std::make_unique<google::protobuf::io::FileInputStream>(stream_->fd);
}

LogFileReader::~LogFileReader() {
  stream_->input.reset();
  ::close(stream_->fd);
}

LogFileReader::Result LogFileReader::Next(v1::Transition* t) {
  t->Clear();  // parsing a delimited message merges into it
  bool clean_eof = false;
  if (google::protobuf::util::ParseDelimitedFromZeroCopyStream(t, stream_->input.get(), &clean_eof))
    return Result::kRecord;
  return clean_eof ? Result::kEnd : Result::kCorrupt;
}

uint64_t LogFileReader::offset() const {
  return stream_->start + static_cast<uint64_t>(stream_->input->ByteCount());
}

std::string FileHash(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw LogError(file + ": cannot read");
  uint64_t hash = kFnvOffset;
  std::vector<char> block(1 << 20);
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    hash = Fnv(hash, std::string_view(block.data(), static_cast<size_t>(in.gcount())));
  }
  return Hex(hash);
}

std::string InputHash(const std::vector<std::string>& file_hashes) {
  uint64_t hash = kFnvOffset;
  for (const std::string& h : file_hashes) hash = Fnv(hash, h);
  return Hex(hash);
}

void ForEachRecord(
    const std::string& file, bool skip_bad, size_t& skipped,
    const std::function<std::string(const v1::Transition&, const LogFileReader&)>& add) {
  LogFileReader reader(file);
  v1::Transition t;
  for (size_t record = 0;; ++record) {
    const LogFileReader::Result read = reader.Next(&t);
    if (read == LogFileReader::Result::kEnd) return;
    if (read == LogFileReader::Result::kCorrupt) {
      if (!skip_bad)
        throw LogError(file + ": record " + std::to_string(record) + ": not a valid Transition");
      ++skipped;
      return;
    }
    const std::string problem = add(t, reader);
    if (!problem.empty()) {
      if (!skip_bad) throw LogError(file + ": record " + std::to_string(record) + ": " + problem);
      ++skipped;
    }
  }
}

TrainingLog ReadTrainingLog(const std::vector<std::string>& paths, const AllotConfig& config,
                            bool skip_bad) {
  TrainingLogBuilder builder(config);
  TrainingLog& log = builder.log();
  log.files = ExpandLogPaths(paths);
  std::vector<std::string> hashes;
  for (const std::string& file : log.files) {
    hashes.push_back(FileHash(file));
    ForEachRecord(file, skip_bad, log.skipped,
                  [&](const v1::Transition& t, const LogFileReader&) { return builder.Add(t); });
  }
  log.input_hash = InputHash(hashes);
  return builder.Finish();
}

}  // namespace allot::models
