// Named, independent random streams derived from one seed, so every run is reproducible.
#pragma once

#include <cstdint>
#include <random>
#include <string_view>

namespace allot::sim {

inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Seed of stream `name` (and sub-stream `index`, e.g. a day) under the master seed. Streams with
// different names are independent, so `generate` and `evaluate` never see the same requests.
inline uint64_t StreamSeed(uint64_t master, std::string_view name, uint64_t index = 0) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return SplitMix64(SplitMix64(master ^ h) + index);
}

inline std::mt19937_64 MakeRng(uint64_t master, std::string_view name, uint64_t index = 0) {
  return std::mt19937_64(StreamSeed(master, name, index));
}

}  // namespace allot::sim
