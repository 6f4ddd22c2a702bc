// Injectable wall clock: production uses the system clock, tests advance a manual one.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace allot {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;  // unix milliseconds
  double NowSeconds() const { return static_cast<double>(NowMs()) / 1000.0; }
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  static const SystemClock& Instance() {
    static const SystemClock clock;
    return clock;
  }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'700'000'000'000) : now_ms_(start_ms) {}
  int64_t NowMs() const override { return now_ms_.load(); }
  void AdvanceMs(int64_t ms) { now_ms_.fetch_add(ms); }
  void SetMs(int64_t ms) { now_ms_.store(ms); }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace allot
