// Training sources: a log streamed from shards in chunks gives the trainer the same training and
// validation rows, and the same statistics, as the log held in memory; a log that changes or
// breaks is named.
#include "models/training_source.h"

#include <google/protobuf/util/delimited_message_util.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "allot/v1/transition.pb.h"
#include "tests/models/synthetic.h"

namespace allot::models {
namespace {

using allot::testing::TwoAgentConfigYaml;
using allot::testing::WriteSyntheticLog;

class TrainingSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/allot-source-XXXXXX";
    dir_ = mkdtemp(tmpl);
    config_ = LoadConfigFromString(TwoAgentConfigYaml(), "two-agent");
    WriteSyntheticLog(dir_ + "/whole.binpb", 3000, 7);
    // The same records in three shards.
    std::filesystem::create_directories(dir_ + "/shards");
    LogFileReader reader(dir_ + "/whole.binpb");
    v1::Transition t;
    for (int i = 0; reader.Next(&t) == LogFileReader::Result::kRecord; ++i) {
      std::ofstream out(dir_ + "/shards/part-" + std::to_string(i / 1000) + ".binpb",
                        std::ios::binary | std::ios::app);
      google::protobuf::util::SerializeDelimitedToOstream(t, &out);
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  AllotConfig config_;
  Collective one_process_;
};

// Concatenates every chunk's rows.
std::vector<float> ChunkRevenue(const TrainingSource& source, size_t chunk_rows) {
  std::vector<float> revenue;
  for (size_t k = 0; k < source.chunks(); ++k) {
    const TrainingLog chunk = source.ReadChunk(k);
    EXPECT_LE(chunk.rows, chunk_rows);
    revenue.insert(revenue.end(), chunk.revenue.begin(), chunk.revenue.end());
  }
  return revenue;
}

TEST_F(TrainingSourceTest, ShardsInChunksGiveTheRowsAndStatisticsOfTheLogInMemory) {
  const SplitOptions split{0.1, 3, 250};
  const TrainingLog whole = ReadTrainingLog({dir_ + "/whole.binpb"}, config_, false);
  const InMemorySource memory(whole, config_, split);
  const ShardedSource shards({dir_ + "/shards"}, config_, false, split, one_process_);

  const LogStatistics& a = memory.statistics();
  const LogStatistics& b = shards.statistics();
  EXPECT_EQ(b.rows, 3000u);
  EXPECT_EQ(b.files.size(), 3u);
  EXPECT_EQ(a.train_rows, b.train_rows);
  EXPECT_EQ(a.validation_rows, b.validation_rows);
  EXPECT_NEAR(static_cast<double>(b.validation_rows), 300, 60);
  EXPECT_NEAR(a.train_revenue, b.train_revenue, 1e-6 * a.train_revenue);
  EXPECT_EQ(a.action_rows, b.action_rows);
  EXPECT_EQ(a.logged.joint, b.logged.joint);
  for (size_t i = 0; i < a.ranges.size(); ++i) {
    ASSERT_EQ(a.ranges[i].size(), b.ranges[i].size());
    for (size_t f = 0; f < a.ranges[i].size(); ++f) {
      EXPECT_EQ(a.ranges[i][f].min, b.ranges[i][f].min);
      EXPECT_EQ(a.ranges[i][f].max, b.ranges[i][f].max);
    }
  }

  // The same validation rows in the same (file) order, and every training row in some chunk.
  EXPECT_EQ(memory.validation().split_key, shards.validation().split_key);
  EXPECT_EQ(memory.validation().revenue, shards.validation().revenue);
  const std::vector<float> chunked = ChunkRevenue(shards, 250);
  EXPECT_EQ(chunked.size(), b.train_rows);
  EXPECT_EQ(chunked, ChunkRevenue(InMemorySource(whole, config_, split), 250));
  EXPECT_GE(shards.chunks(), 12u);  // 2,700 training rows in chunks of at most 250, per file
}

// A cap on the validation rows in memory keeps the same sample of them from shards as from memory.
TEST_F(TrainingSourceTest, CappedValidationRowsAreTheSameSampleFromShardsAndFromMemory) {
  SplitOptions split{0.1, 3, 250};
  split.max_validation_rows = 50;
  const TrainingLog whole = ReadTrainingLog({dir_ + "/whole.binpb"}, config_, false);
  const InMemorySource memory(whole, config_, split);
  const ShardedSource shards({dir_ + "/shards"}, config_, false, split, one_process_);
  EXPECT_EQ(memory.validation().rows, 50u);
  EXPECT_EQ(memory.validation().split_key, shards.validation().split_key);
  EXPECT_GT(shards.statistics().validation_rows, 200u);  // held out, measured or not
  // Kept rows come from all over the log, in log order.
  const std::vector<int64_t>& time = memory.validation().timestamp_ms;
  EXPECT_TRUE(std::is_sorted(time.begin(), time.end()));
  EXPECT_GT(time.back() - time.front(), 2000);
}

TEST_F(TrainingSourceTest, TheSplitFollowsTheRequestNotItsPositionAndChangesWithTheSeed) {
  const TrainingLog whole = ReadTrainingLog({dir_ + "/whole.binpb"}, config_, false);
  size_t moved = 0;
  for (size_t r = 0; r < whole.rows; ++r) {
    moved +=
        IsValidationKey(whole.split_key[r], 0.1, 3) != IsValidationKey(whole.split_key[r], 0.1, 4);
  }
  EXPECT_GT(moved, 300u);  // another seed holds out other requests
  v1::Transition t;
  t.set_request_id("r1");
  t.set_user_id("u");
  t.set_timestamp_ms(5);
  const uint64_t key = SplitKey(t);
  t.set_revenue(2.0);  // the outcome of a request does not move it across the split
  EXPECT_EQ(SplitKey(t), key);
  t.set_request_id("r2");
  EXPECT_NE(SplitKey(t), key);
}

TEST_F(TrainingSourceTest, AShardThatChangesWhileTrainingIsNamed) {
  const ShardedSource shards({dir_ + "/shards"}, config_, false, SplitOptions{0.1, 3, 250},
                             one_process_);
  const std::string last = dir_ + "/shards/part-2.binpb";
  std::filesystem::resize_file(last, std::filesystem::file_size(last) / 2);
  bool named = false;
  for (size_t k = 0; k < shards.chunks(); ++k) {
    try {
      shards.ReadChunk(k);
    } catch (const LogError& e) {
      EXPECT_NE(std::string(e.what()).find(last + ": changed while training"), std::string::npos)
          << e.what();
      named = true;
    }
  }
  EXPECT_TRUE(named);
}

TEST_F(TrainingSourceTest, ABadRecordIsNamedOrSkippedAndCounted) {
  {
    std::ofstream out(dir_ + "/shards/part-1.binpb", std::ios::binary | std::ios::app);
    v1::Transition t;
    t.set_request_id("bad");
    t.set_revenue(-1);
    google::protobuf::util::SerializeDelimitedToOstream(t, &out);
  }
  const SplitOptions split{0.1, 3, 0};
  try {
    ShardedSource({dir_ + "/shards"}, config_, false, split, one_process_);
    ADD_FAILURE() << "a bad record was accepted";
  } catch (const LogError& e) {
    EXPECT_EQ(std::string(e.what()),
              dir_ + "/shards/part-1.binpb: record 1000: steps: expected 2 agent steps, got 0");
  }
  const ShardedSource skipping({dir_ + "/shards"}, config_, true, split, one_process_);
  EXPECT_EQ(skipping.statistics().skipped, 1u);
  EXPECT_EQ(skipping.statistics().rows, 3000u);
}

}  // namespace
}  // namespace allot::models
