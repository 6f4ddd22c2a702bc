// Delimited protobuf I/O with the library's own framing helpers (varint length prefix).
#include "sim/transition_io.h"

#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/util/delimited_message_util.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

namespace allot::sim {

std::string ShardPath(const std::string& dir, int shard, int shards) {
  char name[64];
  std::snprintf(name, sizeof(name), "transitions-%05d-of-%05d.binpb", shard, shards);
  return dir + "/" + name;
}

ShardedTransitionWriter::ShardedTransitionWriter(const std::string& dir, int shards) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create directory '" + dir + "': " + ec.message());
  for (int i = 0; i < shards; ++i) {
    paths_.push_back(ShardPath(dir, i, shards));
    files_.push_back(
        std::make_unique<std::ofstream>(paths_.back(), std::ios::binary | std::ios::trunc));
    if (!*files_.back()) throw std::runtime_error("cannot write '" + paths_.back() + "'");
  }
  counts_.assign(static_cast<size_t>(shards), 0);
}

void ShardedTransitionWriter::Write(const v1::Transition& t) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the user id: stable across runs and hosts
  for (unsigned char c : t.user_id()) h = (h ^ c) * 1099511628211ull;
  const size_t shard = h % files_.size();
  if (!google::protobuf::util::SerializeDelimitedToOstream(t, files_[shard].get())) {
    throw std::runtime_error("write failed: '" + paths_[shard] + "'");
  }
  ++counts_[shard];
}

void ShardedTransitionWriter::Close() {
  for (size_t i = 0; i < files_.size(); ++i) {
    files_[i]->flush();
    if (!*files_[i]) throw std::runtime_error("write failed: '" + paths_[i] + "'");
    files_[i]->close();
  }
}

int64_t ReadTransitions(const std::string& path,
                        const std::function<void(const v1::Transition&)>& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read '" + path + "'");
  google::protobuf::io::IstreamInputStream stream(&in);
  v1::Transition t;
  int64_t n = 0;
  for (;;) {
    bool clean_eof = false;
    t.Clear();  // parsing merges into the message
    if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&t, &stream, &clean_eof)) {
      if (clean_eof) return n;
      throw std::runtime_error("corrupt record " + std::to_string(n) + " in '" + path + "'");
    }
    fn(t);
    ++n;
  }
}

}  // namespace allot::sim
