// The Gloo collective: LibTorch's c10d ProcessGroupGloo over a TCPStore rendezvous, the same
// pieces torch.distributed uses with backend "gloo" and init_method "env://".
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "models/collective.h"

namespace allot::models {
namespace {

using Milliseconds = std::chrono::milliseconds;

Milliseconds ToMilliseconds(double seconds) {
  return Milliseconds(static_cast<int64_t>(seconds * 1000));
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// The network device this rank's Gloo pairs bind to: the interface GLOO_SOCKET_IFNAME names (as
// torch.distributed reads it), loopback when the rendezvous is local, else this host's name as
// the cluster's DNS resolves it (a pod of an Indexed Job with a headless Service).
std::shared_ptr<::gloo::transport::Device> Device(const DistributedOptions& options) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (IsLoopback(options.master_addr))
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0)
    throw std::runtime_error("distributed: cannot read this host's name");
  return c10d::ProcessGroupGloo::createDeviceForHostname(host);
}

class GlooCollective final : public Collective {
 public:
  explicit GlooCollective(const DistributedOptions& options)
      : rank_(options.rank), world_size_(options.world_size) {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(options.master_port);
    store_options.isServer = options.rank == 0;
    store_options.numWorkers = static_cast<size_t>(options.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = ToMilliseconds(options.timeout_s);
    auto store = c10::make_intrusive<c10d::TCPStore>(options.master_addr, store_options);
    auto group_options = c10d::ProcessGroupGloo::Options::create(store_options.timeout);
    group_options->devices.push_back(Device(options));
    group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store, options.rank, options.world_size,
                                                         group_options);
  }

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }

  void Sum(std::span<float> values) override {
    Reduce(values.data(), values.size(), torch::kFloat, c10d::ReduceOp::SUM);
  }
  void Sum(std::span<double> values) override {
    Reduce(values.data(), values.size(), torch::kDouble, c10d::ReduceOp::SUM);
  }
  void Max(std::span<double> values) override {
    Reduce(values.data(), values.size(), torch::kDouble, c10d::ReduceOp::MAX);
  }

  // Gloo gathers tensors of one size: the sizes first, then every rank's bytes padded to the
  // largest.
  std::vector<std::string> Gather(const std::string& bytes) override {
    std::vector<double> sizes(static_cast<size_t>(world_size_), 0.0);
    sizes[static_cast<size_t>(rank_)] = static_cast<double>(bytes.size());
    Sum(sizes);
    size_t longest = 1;
    for (double s : sizes) longest = std::max(longest, static_cast<size_t>(s));
    torch::Tensor mine = torch::zeros({static_cast<int64_t>(longest)}, torch::kUInt8);
    std::copy(bytes.begin(), bytes.end(), mine.data_ptr<uint8_t>());
    std::vector<std::vector<torch::Tensor>> out(1);
    for (int r = 0; r < world_size_; ++r) out[0].push_back(torch::empty_like(mine));
    std::vector<torch::Tensor> in{mine};
    group_->allgather(out, in)->wait();
    std::vector<std::string> gathered;
    for (int r = 0; r < world_size_; ++r) {
      const auto* data = reinterpret_cast<const char*>(out[0][static_cast<size_t>(r)].data_ptr());
      gathered.emplace_back(data, static_cast<size_t>(sizes[static_cast<size_t>(r)]));
    }
    return gathered;
  }

 private:
  void Reduce(void* data, size_t n, torch::ScalarType type, c10d::ReduceOp::RedOpType op) {
    if (n == 0) return;
    std::vector<torch::Tensor> tensors{
        torch::from_blob(data, {static_cast<int64_t>(n)}, torch::TensorOptions().dtype(type))};
    c10d::AllreduceOptions options;
    options.reduceOp = op;
    group_->allreduce(tensors, options)->wait();
  }

  int rank_, world_size_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

}  // namespace

void ValidateDistributedOptions(const DistributedOptions& o) {
  if (o.world_size < 1 || o.world_size > 4096)
    throw std::runtime_error("WORLD_SIZE: must be in [1, 4096], got " +
                             std::to_string(o.world_size));
  if (o.rank < 0 || o.rank >= o.world_size)
    throw std::runtime_error("RANK: must be in [0, WORLD_SIZE), got " + std::to_string(o.rank));
  if (o.world_size == 1) return;
  if (o.master_addr.empty())
    throw std::runtime_error("MASTER_ADDR: required when WORLD_SIZE is above 1");
  if (o.master_port < 1 || o.master_port > 65535)
    throw std::runtime_error("MASTER_PORT: must be in [1, 65535], got " +
                             std::to_string(o.master_port));
  if (!(o.timeout_s > 0 && o.timeout_s <= 86400))
    throw std::runtime_error("dist-timeout: must be in (0, 86400] seconds");
}

DistributedOptions DistributedOptionsFromEnvironment() {
  DistributedOptions d;
  auto read_int = [](const char* name, int& into) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') return false;
    size_t used = 0;
    try {
      into = std::stoi(value, &used);
    } catch (const std::logic_error&) {
      used = 0;
    }
    if (used == 0 || value[used] != '\0')
      throw std::invalid_argument(std::string(name) + ": not an integer: '" + value + "'");
    return true;
  };
  read_int("WORLD_SIZE", d.world_size);
  if (!read_int("RANK", d.rank)) read_int("JOB_COMPLETION_INDEX", d.rank);
  read_int("MASTER_PORT", d.master_port);
  if (const char* addr = std::getenv("MASTER_ADDR")) d.master_addr = addr;
  return d;
}

bool SameOnEveryRank(Collective& ranks, const std::string& bytes) {
  if (ranks.world_size() == 1) return true;
  const std::vector<std::string> all = ranks.Gather(bytes);
  return std::all_of(all.begin(), all.end(), [&](const std::string& b) { return b == all[0]; });
}

std::unique_ptr<Collective> Connect(const DistributedOptions& options) {
  ValidateDistributedOptions(options);
  if (options.world_size == 1) return std::make_unique<Collective>();
  try {
    return std::make_unique<GlooCollective>(options);
  } catch (const c10::Error& e) {
    throw std::runtime_error("distributed: rank " + std::to_string(options.rank) + " of " +
                             std::to_string(options.world_size) + " could not join at " +
                             options.master_addr + ":" + std::to_string(options.master_port) +
                             ": " + e.what_without_backtrace());
  }
}

}  // namespace allot::models
