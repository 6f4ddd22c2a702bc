// allot-bench-allreduce: the time of one gradient all-reduce (a float sum over every rank, as
// allot-train does each step) by size, between the processes of a data-parallel run. Start one
// process per rank with torchrun's environment (WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT);
// rank 0 prints.
//   allot-bench-allreduce [--sizes N,N,...] [--rounds R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "models/collective.h"

int main(int argc, char** argv) {
  std::vector<size_t> sizes = {1000, 10000, 100000, 1000000, 4000000};
  int rounds = 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--rounds") {
      rounds = std::max(1, std::atoi(argv[i + 1]));
    } else if (arg == "--sizes") {
      sizes.clear();
      std::stringstream list(argv[i + 1]);
      for (std::string item; std::getline(list, item, ',');) sizes.push_back(std::stoull(item));
    } else {
      std::cerr << "usage: allot-bench-allreduce [--sizes N,N,...] [--rounds R]\n";
      return 2;
    }
  }
  try {
    const auto ranks = allot::models::Connect(allot::models::DistributedOptionsFromEnvironment());
    if (ranks->rank() == 0)
      std::printf("%-10s %10s %10s %10s %10s\n", "floats", "MB", "p50_ms", "p90_ms", "GB/s");
    for (size_t n : sizes) {
      std::vector<float> values(n, 1.0f);
      ranks->Sum(values);  // warm-up: the pairs' buffers
      std::vector<double> ms;
      for (int r = 0; r < rounds; ++r) {
        const auto start = std::chrono::steady_clock::now();
        ranks->Sum(values);
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count());
      }
      std::sort(ms.begin(), ms.end());
      const double p50 = ms[ms.size() / 2], p90 = ms[ms.size() * 9 / 10];
      const double mb = 4.0 * static_cast<double>(n) / 1e6;
      if (ranks->rank() == 0)
        std::printf("%-10zu %10.2f %10.3f %10.3f %10.2f\n", n, mb, p50, p90,
                    mb / 1e3 / (p50 / 1e3));
    }
  } catch (const std::exception& e) {
    std::cerr << "allot-bench-allreduce: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
