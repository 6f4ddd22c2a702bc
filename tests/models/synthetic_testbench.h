// Testbench rows (as `allot-sim testbench` writes them) for the default config from a known
// additive cost structure, for cost-map and trainer tests.
#pragma once

#include <sstream>
#include <string>

namespace allot::testing::testbench {

// Ground truth for the default config (the same in every value bucket except a scale): a recall
// stage with a fixed part and a per-channel increment, an elastic switch, and queue costs.
inline constexpr double kFixed = 0.5;
inline const double kChannel[] = {1.0, 2.0, 0.3, 2.5, 2.2};  // i2i, u2i_dnn, hot, graph, semantic
inline constexpr double kElastic = 1.4;
inline const double kPrerank[] = {1.0, 2.0, 1.8, 5.0};  // 100, 200, 400, 800: one violation
inline const double kRank[] = {1.5, 2.8, 5.4, 10.6};    // 50, 100, 200, 400
inline constexpr double kHeavy = 2.0;

inline double BucketScale(int b) { return 1.0 + 0.1 * b; }

// Rows as `allot-sim testbench` writes them: one decision moved, the others at the safe default
// (recall: channels i2i + hot, elastic off; prerank 200; rank 100, heavy off).
inline std::string TestbenchCsv(int buckets, bool drop_one = false) {
  std::ostringstream csv;
  csv << "agent,module,decision,kind,option,queue_length,value_bucket,cost_ms_per_request,"
         "requests\n";
  const char* channels[] = {"i2i", "u2i_dnn", "hot", "graph", "semantic"};
  const double recall_default = kFixed + kChannel[0] + kChannel[2];
  for (int b = 0; b < buckets; ++b) {
    const double s = BucketScale(b);
    for (int c = 0; c < 5; ++c) {
      if (drop_one && c == 3 && b == 1) continue;
      csv << "recall,recall,channels,link," << channels[c] << ",0," << b << ","
          << s * (kFixed + kChannel[c]) << ",100\n";
    }
    csv << "recall,recall,elastic_recall,switch,off,0," << b << "," << s * recall_default
        << ",100\n";
    csv << "recall,recall,elastic_recall,switch,on,0," << b << ","
        << s * (recall_default + kElastic) << ",100\n";
    const int prerank[] = {100, 200, 400, 800};
    for (int q = 0; q < 4; ++q) {
      csv << "prerank,prerank,queue_length,queue," << prerank[q] << "," << prerank[q] << "," << b
          << "," << s * kPrerank[q] << ",100\n";
    }
    const int rank[] = {50, 100, 200, 400};
    for (int q = 0; q < 4; ++q) {
      csv << "rank,rank,queue_length,queue," << rank[q] << "," << rank[q] << "," << b << ","
          << s * kRank[q] << ",100\n";
    }
    csv << "rank,rank,heavy_model,switch,off,0," << b << "," << s * kRank[1] << ",100\n";
    csv << "rank,rank,heavy_model,switch,on,0," << b << "," << s * (kRank[1] + kHeavy) << ",100\n";
  }
  return csv.str();
}

}  // namespace allot::testing::testbench
