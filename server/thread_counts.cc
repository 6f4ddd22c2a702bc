#include "server/thread_counts.h"

#include <algorithm>

namespace allot {
namespace {

std::atomic<uint64_t> next_id{1};

}  // namespace

// One thread's counts for one ThreadCounts: cumulative values per slot, in chunks made on the
// thread's first count into them. Only that thread writes them, so a count is a load and a store;
// Flush reads them while it writes.
struct ThreadCounts::Shard {
  using Chunk = std::array<std::atomic<double>, kChunkSlots>;  // value-initialised: zeros

  ~Shard() {
    for (std::atomic<Chunk*>& chunk : chunks) delete chunk.load(std::memory_order_relaxed);
  }

  void Add(uint32_t slot, double by) {
    std::atomic<Chunk*>& cell = chunks[slot / kChunkSlots];
    Chunk* chunk = cell.load(std::memory_order_relaxed);  // only this thread stores it
    if (chunk == nullptr) {
      chunk = new Chunk();
      cell.store(chunk, std::memory_order_release);
    }
    std::atomic<double>& value = (*chunk)[slot % kChunkSlots];
    value.store(value.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }

  double Read(uint32_t slot) const {
    const Chunk* chunk = chunks[slot / kChunkSlots].load(std::memory_order_acquire);
    return chunk ? (*chunk)[slot % kChunkSlots].load(std::memory_order_relaxed) : 0.0;
  }

  std::array<std::atomic<Chunk*>, kChunks> chunks{};
  std::atomic<bool> thread_gone{false};  // set when the thread exits: its counts are final
  std::atomic<bool> owner_gone{false};   // set when the ThreadCounts is destroyed
  std::vector<double> flushed;           // per slot, what Flush has added (guarded by mu_)
};

// This thread's shards, one per ThreadCounts it has counted into; marks them gone at the
// thread's exit, so that Flush takes their last counts and then forgets them.
class ThreadCounts::ThreadShards {
 public:
  ~ThreadShards() {
    for (const Entry& e : entries) e.shard->thread_gone.store(true, std::memory_order_release);
  }
  struct Entry {
    uint64_t owner;
    std::shared_ptr<Shard> shard;
  };
  std::vector<Entry> entries;
};

ThreadCounts::ThreadCounts() : id_(next_id.fetch_add(1, std::memory_order_relaxed)) {}

ThreadCounts::~ThreadCounts() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::shared_ptr<Shard>& shard : shards_)
    shard->owner_gone.store(true, std::memory_order_release);
}

ThreadCounts::Shard& ThreadCounts::ThisThread() {
  thread_local ThreadShards mine;
  for (const ThreadShards::Entry& e : mine.entries) {
    if (e.owner == id_) return *e.shard;
  }
  // This thread's first count here: the shards of destroyed ThreadCounts go first.
  std::erase_if(mine.entries, [](const ThreadShards::Entry& e) {
    return e.shard->owner_gone.load(std::memory_order_acquire);
  });
  auto shard = std::make_shared<Shard>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    shards_.push_back(shard);
  }
  mine.entries.push_back({id_, shard});
  return *shard;
}

void ThreadCounts::Add(uint32_t slot, double by) { ThisThread().Add(slot, by); }

uint32_t ThreadCounts::TakeSlots(uint32_t count) {
  if (next_slot_ + count > kNoSlot) return kNoSlot;
  const uint32_t first = next_slot_;
  next_slot_ += count;
  return first;
}

void ThreadCounts::Counter::Increment(double by) const {
  if (by < 0.0) return;  // as prometheus-cpp's counters
  if (slot_ == kNoSlot) {
    series_->Increment(by);
    return;
  }
  owner_->Add(slot_, by);
}

void ThreadCounts::Histogram::Observe(double x) const {
  if (slot_ == kNoSlot) {
    series_->Observe(x);
    return;
  }
  // The bucket prometheus-cpp would count it in: the first bound it is at most, else +Inf (a NaN
  // too).
  const size_t bucket = static_cast<size_t>(
      std::find_if(bounds_.begin(), bounds_.end(), [x](double bound) { return x <= bound; }) -
      bounds_.begin());
  Shard& shard = owner_->ThisThread();
  shard.Add(slot_ + static_cast<uint32_t>(bucket), 1.0);
  shard.Add(slot_ + static_cast<uint32_t>(bounds_.size()) + 1, x);
}

const ThreadCounts::Counter* ThreadCounts::Wrap(prometheus::Counter& series) {
  std::lock_guard<std::mutex> lock(mu_);
  const void*& handle = handle_of_series_[&series];
  if (handle == nullptr) {
    Counter& c = counters_.emplace_back();
    c.owner_ = this;
    c.series_ = &series;
    c.slot_ = TakeSlots(1);
    handle = &c;
  }
  return static_cast<const Counter*>(handle);
}

const ThreadCounts::Histogram* ThreadCounts::Wrap(
    prometheus::Histogram& series, const prometheus::Histogram::BucketBoundaries& bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  const void*& handle = handle_of_series_[&series];
  if (handle == nullptr) {
    Histogram& h = histograms_.emplace_back();
    h.owner_ = this;
    h.series_ = &series;
    h.bounds_ = bounds;
    h.slot_ = TakeSlots(static_cast<uint32_t>(bounds.size()) + 2);
    handle = &h;
  }
  return static_cast<const Histogram*>(handle);
}

void ThreadCounts::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  // What each slot gained, over every shard, since the last flush.
  const uint32_t slots = std::min(next_slot_, kNoSlot);
  std::vector<double> gained(slots, 0.0);
  std::erase_if(shards_, [&](const std::shared_ptr<Shard>& shard) {
    // Read before the counts: once the thread is gone, they are final and the shard can go.
    const bool gone = shard->thread_gone.load(std::memory_order_acquire);
    shard->flushed.resize(slots, 0.0);
    for (uint32_t s = 0; s < slots; ++s) {
      const double now = shard->Read(s);
      gained[s] += now - shard->flushed[s];
      shard->flushed[s] = now;
    }
    return gone;
  });
  for (const Counter& c : counters_) {
    if (c.slot_ < slots && gained[c.slot_] > 0) c.series_->Increment(gained[c.slot_]);
  }
  std::vector<double> buckets;
  for (const Histogram& h : histograms_) {
    if (h.slot_ >= slots) continue;
    buckets.assign(gained.begin() + h.slot_, gained.begin() + h.slot_ + h.bounds_.size() + 1);
    if (std::any_of(buckets.begin(), buckets.end(), [](double n) { return n > 0; }))
      h.series_->ObserveMultiple(buckets, gained[h.slot_ + h.bounds_.size() + 1]);
  }
}

}  // namespace allot
