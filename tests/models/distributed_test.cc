// The Gloo collective between two ranks on loopback (threads of this process, each with its own
// process group), and the rendezvous's errors.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "models/collective.h"
#include "tests/free_port.h"

namespace allot::models {
namespace {

DistributedOptions Rank(int rank, int port, double timeout_s = 60) {
  DistributedOptions o;
  o.world_size = 2;
  o.rank = rank;
  o.master_addr = "127.0.0.1";
  o.master_port = port;
  o.timeout_s = timeout_s;
  return o;
}

struct Exchanged {
  std::vector<float> sum;
  std::vector<double> max;
  std::vector<std::string> gathered;
};

Exchanged Exchange(int rank, int port) {
  const std::unique_ptr<Collective> ranks = Connect(Rank(rank, port));
  Exchanged out;
  out.sum = {1.0f + rank, 10.0f * rank, -2.0f};
  ranks->Sum(out.sum);
  out.max = {static_cast<double>(rank), -static_cast<double>(rank)};
  ranks->Max(out.max);
  out.gathered = ranks->Gather(rank == 0 ? std::string("zero") : std::string("one\0two", 7));
  return out;
}

TEST(DistributedTest, TwoRanksSumTakeMaximaAndGatherBytesInRankOrder) {
  const int port = allot::testing::FreePort();
  auto one = std::async(std::launch::async, [port] { return Exchange(1, port); });
  const Exchanged zero = Exchange(0, port);
  const Exchanged first = one.get();
  for (const Exchanged& e : {zero, first}) {
    EXPECT_EQ(e.sum, (std::vector<float>{3.0f, 10.0f, -4.0f}));
    EXPECT_EQ(e.max, (std::vector<double>{1.0, 0.0}));
    ASSERT_EQ(e.gathered.size(), 2u);
    EXPECT_EQ(e.gathered[0], "zero");
    EXPECT_EQ(e.gathered[1], std::string("one\0two", 7));
  }
}

TEST(DistributedTest, ARankWhosePeerNeverComesFailsWithTheAddressNamed) {
  const int port = allot::testing::FreePort();
  try {
    Connect(Rank(0, port, /*timeout_s=*/1));
    ADD_FAILURE() << "joined without its peer";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 0 of 2 could not join at 127.0.0.1:" +
                                         std::to_string(port)),
              std::string::npos)
        << e.what();
  }
}

TEST(DistributedTest, UnusableOptionsAreRefusedWithTheVariableNamed) {
  auto refused = [](DistributedOptions o) {
    try {
      ValidateDistributedOptions(o);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  DistributedOptions o = Rank(2, 29500);
  EXPECT_EQ(refused(o), "RANK: must be in [0, WORLD_SIZE), got 2");
  o = Rank(1, 29500);
  o.master_addr.clear();
  EXPECT_EQ(refused(o), "MASTER_ADDR: required when WORLD_SIZE is above 1");
  o = Rank(1, 70000);
  EXPECT_EQ(refused(o), "MASTER_PORT: must be in [1, 65535], got 70000");
  o.world_size = 0;
  EXPECT_EQ(refused(o), "WORLD_SIZE: must be in [1, 4096], got 0");
  EXPECT_EQ(refused(DistributedOptions{}), "accepted");  // one process needs no rendezvous
}

}  // namespace
}  // namespace allot::models
