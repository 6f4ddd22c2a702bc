// ThreadCounts against prometheus-cpp's own series: what threads count (some of them gone before
// the scrape, some counting through it) reaches the series exactly, histograms bucket as
// prometheus-cpp does, and two ThreadCounts on one thread keep their counts apart. Also built
// into the ThreadSanitizer binary (tests/CMakeLists.txt).
#include "server/thread_counts.h"

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

namespace allot {
namespace {

double Count(prometheus::Histogram& h) { return h.Collect().histogram.sample_count; }

TEST(ThreadCountsTest, EveryThreadsCountsReachTheSeriesAtFlush) {
  prometheus::Registry registry;
  auto& family = prometheus::BuildCounter().Name("c_total").Help("c").Register(registry);
  prometheus::Counter& series = family.Add({});
  ThreadCounts counts;
  const ThreadCounts::Counter* counter = counts.Wrap(series);
  EXPECT_EQ(counts.Wrap(series), counter);  // one handle per series
  constexpr int kThreads = 4, kEach = 20000;
  std::atomic<bool> done{false};
  // Flushes while the threads count, as scrapes do.
  std::thread scraper([&] {
    while (!done.load()) counts.Flush();
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) counter->Increment();
    });
  }
  for (std::thread& t : threads) t.join();  // gone before the last flush
  done.store(true);
  scraper.join();
  counter->Increment(0.5);   // this thread's, still running
  counter->Increment(-3.0);  // ignored, as prometheus-cpp does
  counts.Flush();
  EXPECT_EQ(series.Value(), kThreads * kEach + 0.5);
  counts.Flush();  // nothing new: nothing added twice
  EXPECT_EQ(series.Value(), kThreads * kEach + 0.5);
}

TEST(ThreadCountsTest, HistogramsBucketAsPrometheusCppDoes) {
  prometheus::Registry registry;
  auto& family = prometheus::BuildHistogram().Name("h").Help("h").Register(registry);
  const prometheus::Histogram::BucketBoundaries bounds = {1.0, 2.0, 5.0};
  prometheus::Histogram& direct = family.Add({{"path", "direct"}}, bounds);
  prometheus::Histogram& counted = family.Add({{"path", "counted"}}, bounds);
  ThreadCounts counts;
  const ThreadCounts::Histogram* h = counts.Wrap(counted, bounds);
  const double inf = std::numeric_limits<double>::infinity();
  for (const double x : {0.5, 1.0, 1.5, 2.0, 4.0, 5.0, 7.0, inf, -inf, -2.0}) {
    direct.Observe(x);
    std::thread([&] { h->Observe(x); }).join();
  }
  counts.Flush();
  const prometheus::ClientMetric want = direct.Collect(), got = counted.Collect();
  ASSERT_EQ(got.histogram.bucket.size(), want.histogram.bucket.size());
  for (size_t b = 0; b < want.histogram.bucket.size(); ++b) {
    EXPECT_EQ(got.histogram.bucket[b].cumulative_count, want.histogram.bucket[b].cumulative_count)
        << "bucket " << b;
  }
  EXPECT_EQ(got.histogram.sample_count, want.histogram.sample_count);
  EXPECT_TRUE(std::isnan(got.histogram.sample_sum));  // inf + -inf, as in the direct series
  EXPECT_TRUE(std::isnan(want.histogram.sample_sum));
}

TEST(ThreadCountsTest, TwoOwnersOnOneThreadKeepTheirCountsApart) {
  prometheus::Registry registry;
  auto& family = prometheus::BuildHistogram().Name("h").Help("h").Register(registry);
  const prometheus::Histogram::BucketBoundaries one = {1.0};
  prometheus::Histogram& a = family.Add({{"owner", "a"}}, one);
  prometheus::Histogram& b = family.Add({{"owner", "b"}}, one);
  {
    ThreadCounts first;
    first.Wrap(a, one)->Observe(0.5);
    first.Flush();
  }
  // A second owner after the first is gone, on the same thread: its slots start afresh.
  ThreadCounts second, third;
  second.Wrap(b, one)->Observe(3.0);
  third.Wrap(a, one)->Observe(0.25);
  second.Flush();
  third.Flush();
  EXPECT_EQ(Count(a), 2);
  EXPECT_EQ(Count(b), 1);
  EXPECT_EQ(a.Collect().histogram.sample_sum, 0.75);
  EXPECT_EQ(b.Collect().histogram.sample_sum, 3.0);
}

}  // namespace
}  // namespace allot
