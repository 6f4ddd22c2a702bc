// Calls the server holds, counted from the handler's start until gRPC reports the call done (its
// answer written to the transport, or the call cancelled). A count inside the handler alone would
// see only the microseconds of the decision; a call is held for as long as its answer waits too.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>

namespace allot {

class InFlightCalls {
 public:
  // Counts a call in and returns how many the server held before it.
  int Enter() { return count_.fetch_add(1, std::memory_order_relaxed); }
  void Leave() { count_.fetch_sub(1, std::memory_order_relaxed); }
  int count() const { return count_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int> count_{0};
};

// A unary reactor that holds one InFlightCalls slot until the call is done. It lives in the call's
// arena, so counting allocates nothing per call.
class CountedUnaryReactor final : public grpc::ServerUnaryReactor {
 public:
  // Enters `calls` and returns the reactor that leaves it; `held_before` gets the count before.
  static CountedUnaryReactor* Start(grpc::CallbackServerContext* context, InFlightCalls& calls,
                                    int* held_before);

  // Runs `task` once gRPC is done with the call, after its answer is written: work for the
  // server's own use (a shadow decision) that the caller must not wait for. gRPC sends nothing
  // before the handler returns, so work done in the handler after Finish still delays the answer.
  void RunWhenDone(std::function<void()> task) { when_done_ = std::move(task); }

  void OnDone() override;
  void OnCancel() override {}
  // OnDone decrements a counter (and, for a sampled call, decides in shadow: what the handler
  // did before), so gRPC may run it inline instead of hopping to its executor, as it does for
  // its own default reactor.
  bool InternalInlineable() override { return true; }

 private:
  explicit CountedUnaryReactor(InFlightCalls& calls) : calls_(calls) {}
  ~CountedUnaryReactor() override = default;

  InFlightCalls& calls_;
  std::function<void()> when_done_;
};

}  // namespace allot
