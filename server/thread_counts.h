// The request path's counters and histograms, counted by each thread in memory of its own and
// added into their prometheus-cpp series before every scrape.
//
// Why: prometheus-cpp counts with a compare-and-swap loop on a double that every thread shares, so
// under load each series an Allocate touched (a dozen: latency histograms, the chosen options,
// fallbacks) was a cache line that the server's threads on two cores took from each other on
// every call. Measured by perf's self time under h2load (4 x 4, unpinned): prometheus-cpp's
// Gauge::Change and Histogram::Observe took 0.18 us of each Allocate.
//
// A thread's counts are plain loads and stores on its own shard (no read-modify-write: one
// writer). Flush, from the scraper, reads every shard, adds what each series gained since the
// last flush into it, and forgets the shards of threads that have exited once their counts are in.
// Series wrapped here must live as long as this object, and be changed only through it.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace allot {

class ThreadCounts {
 public:
  class Counter {
   public:
    void Increment(double by = 1.0) const;

   private:
    friend class ThreadCounts;
    ThreadCounts* owner_ = nullptr;
    prometheus::Counter* series_ = nullptr;
    uint32_t slot_ = 0;
  };

  class Histogram {
   public:
    void Observe(double x) const;

   private:
    friend class ThreadCounts;
    ThreadCounts* owner_ = nullptr;
    prometheus::Histogram* series_ = nullptr;
    std::vector<double> bounds_;  // the series' bucket boundaries, +Inf left out
    uint32_t slot_ = 0;           // bounds_.size() + 1 bucket counts, then the sum
  };

  ThreadCounts();
  ~ThreadCounts();
  ThreadCounts(const ThreadCounts&) = delete;
  ThreadCounts& operator=(const ThreadCounts&) = delete;

  // The handle counting into `series` (the same handle for the same series): valid as long as this
  // object. `bounds` must be the boundaries the histogram series was made with.
  const Counter* Wrap(prometheus::Counter& series);
  const Histogram* Wrap(prometheus::Histogram& series,
                        const prometheus::Histogram::BucketBoundaries& bounds);

  // Adds every thread's counts since the last flush into their series.
  void Flush();

 private:
  struct Shard;
  class ThreadShards;

  // Slots per chunk, and chunks per shard: 16,384 slots, far more than the series a server has.
  static constexpr size_t kChunkSlots = 512;
  static constexpr size_t kChunks = 32;
  // A handle's slot when none were left: it counts straight into its series.
  static constexpr uint32_t kNoSlot = kChunkSlots * kChunks;

  Shard& ThisThread();
  void Add(uint32_t slot, double by);
  uint32_t TakeSlots(uint32_t count);  // under mu_; kNoSlot when none are left

  const uint64_t id_;  // unique per object: a thread's shards are found by it
  std::mutex mu_;
  uint32_t next_slot_ = 0;                               // guarded by mu_
  std::vector<std::shared_ptr<Shard>> shards_;           // guarded by mu_
  std::deque<Counter> counters_;                         // guarded by mu_ (stable addresses)
  std::deque<Histogram> histograms_;                     // guarded by mu_
  std::map<const void*, const void*> handle_of_series_;  // guarded by mu_
};

}  // namespace allot
