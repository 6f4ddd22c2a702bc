// Closed loop: `concurrency` chains, each issuing its next call from the previous completion.
// Open loop: a pacer issues call i at start + i / rate whatever the server does.
#include "bench/load_runner.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

namespace allot::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Recorder {
  std::mutex mu;
  std::vector<double> latencies_us;     // guarded by mu
  std::vector<double> ok_latencies_us;  // guarded by mu: of the calls that succeeded
  uint64_t errors = 0;                  // guarded by mu
  Clock::time_point measure_from;
  Clock::time_point measure_until;

  void Record(Clock::time_point intended, Clock::time_point done, bool ok) {
    if (intended < measure_from || intended >= measure_until) return;
    std::lock_guard<std::mutex> lock(mu);
    if (!ok) ++errors;
    const double us = std::chrono::duration<double, std::micro>(done - intended).count();
    latencies_us.push_back(us);
    if (ok) ok_latencies_us.push_back(us);
  }
};

struct InFlight {
  std::mutex mu;
  std::condition_variable cv;
  int64_t count = 0;
  void Add() {
    std::lock_guard<std::mutex> lock(mu);
    ++count;
  }
  void Done() {
    std::lock_guard<std::mutex> lock(mu);
    if (--count == 0) cv.notify_all();
  }
  void WaitZero() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return count == 0; });
  }
};

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t i =
      std::min(sorted.size() - 1, static_cast<size_t>(q * static_cast<double>(sorted.size())));
  return sorted[i];
}

// One closed-loop chain: keeps exactly one call in flight until the end time.
void StartChain(const IssueFn& issue, Recorder& recorder, InFlight& in_flight,
                Clock::time_point end) {
  const auto start = Clock::now();
  if (start >= end) {
    in_flight.Done();
    return;
  }
  issue([&issue, &recorder, &in_flight, end, start](bool ok) {
    recorder.Record(start, Clock::now(), ok);
    StartChain(issue, recorder, in_flight, end);
  });
}

}  // namespace

LoadResult RunLoad(const IssueFn& issue, const LoadOptions& options) {
  Recorder recorder;
  InFlight in_flight;
  const auto start = Clock::now();
  recorder.measure_from = start + std::chrono::duration_cast<Clock::duration>(options.warmup);
  recorder.measure_until =
      recorder.measure_from + std::chrono::duration_cast<Clock::duration>(options.duration);
  const auto end = recorder.measure_until;

  if (!options.open_loop) {
    for (int i = 0; i < options.concurrency; ++i) {
      in_flight.Add();
      StartChain(issue, recorder, in_flight, end);
    }
  } else {
    const auto interval = std::chrono::duration<double>(1.0 / options.rate_qps);
    for (uint64_t i = 0;; ++i) {
      const auto intended =
          start + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(i));
      if (intended >= end) break;
      std::this_thread::sleep_until(intended);
      in_flight.Add();
      issue([&recorder, &in_flight, intended](bool ok) {
        recorder.Record(intended, Clock::now(), ok);
        in_flight.Done();
      });
    }
  }
  in_flight.WaitZero();

  LoadResult result;
  std::lock_guard<std::mutex> lock(recorder.mu);
  std::vector<double>& lat = recorder.latencies_us;
  std::sort(lat.begin(), lat.end());
  result.completed = lat.size();
  result.errors = recorder.errors;
  result.seconds = options.duration.count();
  result.qps = static_cast<double>(result.completed - result.errors) / result.seconds;
  result.p50_us = Percentile(lat, 0.50);
  result.p90_us = Percentile(lat, 0.90);
  result.p99_us = Percentile(lat, 0.99);
  result.p999_us = Percentile(lat, 0.999);
  result.max_us = lat.empty() ? 0 : lat.back();
  std::sort(recorder.ok_latencies_us.begin(), recorder.ok_latencies_us.end());
  result.ok_p99_us = Percentile(recorder.ok_latencies_us, 0.99);
  return result;
}

std::string FormatResult(const std::string& name, const LoadOptions& options, const LoadResult& r) {
  char buf[512];
  std::snprintf(
      buf, sizeof(buf),
      "%-16s %s %-10s requests=%-8llu errors=%-5llu qps=%-9.0f p50=%.0fus p90=%.0fus p99=%.0fus "
      "p99.9=%.0fus max=%.0fus ok-p99=%.0fus",
      name.c_str(), options.open_loop ? "open  " : "closed",
      (options.open_loop ? "rate=" + std::to_string(static_cast<int>(options.rate_qps))
                         : "conc=" + std::to_string(options.concurrency))
          .c_str(),
      static_cast<unsigned long long>(r.completed), static_cast<unsigned long long>(r.errors),
      r.qps, r.p50_us, r.p90_us, r.p99_us, r.p999_us, r.max_us, r.ok_p99_us);
  return buf;
}

}  // namespace allot::bench
