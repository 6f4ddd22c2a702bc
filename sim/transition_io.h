// Training-log files: sequences of length-delimited allot.v1.Transition messages, sharded by user
// so that one user's requests (their repeats and cache history) stay in one file.
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "allot/v1/transition.pb.h"

namespace allot::sim {

std::string ShardPath(const std::string& dir, int shard, int shards);

class ShardedTransitionWriter {
 public:
  // Creates dir; throws std::runtime_error naming the file it cannot open.
  ShardedTransitionWriter(const std::string& dir, int shards);
  void Write(const v1::Transition& transition);
  // Flushes and closes; throws std::runtime_error on a write error.
  void Close();

  const std::vector<int64_t>& counts() const { return counts_; }
  const std::vector<std::string>& paths() const { return paths_; }

 private:
  std::vector<std::unique_ptr<std::ofstream>> files_;
  std::vector<std::string> paths_;
  std::vector<int64_t> counts_;
};

// Calls fn for every Transition in the file and returns how many there were; throws
// std::runtime_error when the file cannot be read or a record is corrupt.
int64_t ReadTransitions(const std::string& path,
                        const std::function<void(const v1::Transition&)>& fn);

}  // namespace allot::sim
