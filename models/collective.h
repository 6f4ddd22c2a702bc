// How the ranks of a data-parallel training run talk: sums, maxima and byte gathers across every
// process. One process is the trivial case (every call returns its input); several use LibTorch's
// c10d Gloo backend over TCP (ConnectGloo). No LibTorch in this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace allot::models {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const { return 0; }
  virtual int world_size() const { return 1; }
  // Every rank's values summed (or the maximum), element by element, in place on every rank.
  // All ranks must call these in the same order with spans of the same length.
  virtual void Sum(std::span<float> values) { (void)values; }
  virtual void Sum(std::span<double> values) { (void)values; }
  virtual void Max(std::span<double> values) { (void)values; }
  // Every rank's bytes, in rank order.
  virtual std::vector<std::string> Gather(const std::string& bytes) { return {bytes}; }
};

// Where a rank finds the others, in the style of torchrun's environment.
struct DistributedOptions {
  int world_size = 1;        // WORLD_SIZE
  int rank = 0;              // RANK (or an Indexed Job's JOB_COMPLETION_INDEX)
  std::string master_addr;   // MASTER_ADDR: where rank 0 listens for the rendezvous
  int master_port = 29500;   // MASTER_PORT
  double timeout_s = 300.0;  // how long to wait for every rank, and for each collective
};

// Throws std::runtime_error naming the field when the options are not usable.
void ValidateDistributedOptions(const DistributedOptions& options);

// torchrun's variables (RANK falls back to an Indexed Job's JOB_COMPLETION_INDEX); unset ones keep
// their defaults. Throws std::invalid_argument naming a variable that is not an integer.
DistributedOptions DistributedOptionsFromEnvironment();

// True when every rank passed the same bytes (all ranks must call it together).
bool SameOnEveryRank(Collective& ranks, const std::string& bytes);

// The trivial collective for world_size 1; a Gloo process group over a TCPStore rendezvous at
// master_addr:master_port otherwise (rank 0 serves the store). Blocks until every rank joined;
// throws std::runtime_error on timeout.
std::unique_ptr<Collective> Connect(const DistributedOptions& options);

}  // namespace allot::models
