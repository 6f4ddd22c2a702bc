#include "server/in_flight.h"

#include <grpc/grpc.h>

#include <new>

namespace allot {

CountedUnaryReactor* CountedUnaryReactor::Start(grpc::CallbackServerContext* context,
                                                InFlightCalls& calls, int* held_before) {
  void* memory = grpc_call_arena_alloc(context->c_call(), sizeof(CountedUnaryReactor));
  *held_before = calls.Enter();
  return new (memory) CountedUnaryReactor(calls);
}

void CountedUnaryReactor::OnDone() {
  if (when_done_) when_done_();
  InFlightCalls& calls = calls_;
  // gRPC touches the reactor no more after OnDone, and the arena frees the memory with the call.
  this->~CountedUnaryReactor();
  calls.Leave();
}

}  // namespace allot
