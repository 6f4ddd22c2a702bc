// The link cost fit recovers an additive stage cost from channel sets: single channels with the
// default set's cost (the default chain), sets around the default set where channels cannot run
// alone (the second chain), and gives the fixed part up only where the sets cannot tell it.
#include "models/link_cost_fit.h"

#include <gtest/gtest.h>

#include <bit>
#include <vector>

namespace allot::models {
namespace {

constexpr double kFixed = 0.7;
const std::vector<double> kIncrement = {1.0, 2.5, 0.4, 3.0, 1.7};

double Truth(uint32_t set) {
  double cost = kFixed;
  for (size_t c = 0; c < kIncrement.size(); ++c) {
    if (set & (1u << c)) cost += kIncrement[c];
  }
  return cost;
}

std::vector<ChannelSetCost> Measure(const std::vector<uint32_t>& sets) {
  std::vector<ChannelSetCost> out;
  for (uint32_t s : sets) out.push_back({s, Truth(s), 2000.0});
  return out;
}

void ExpectRecovered(const LinkCostFit& fit, double fixed_tolerance = 1e-9) {
  EXPECT_NEAR(fit.fixed, kFixed, fixed_tolerance);
  ASSERT_EQ(fit.increment.size(), kIncrement.size());
  for (uint32_t set = 1; set < 32; ++set) EXPECT_NEAR(fit.Cost(set), Truth(set), 1e-9) << set;
}

TEST(LinkCostFitTest, SingleChannelsAndTheDefaultSetsCostTellEverything) {
  const ChannelSetCost reference{0b00011, Truth(0b00011), 2000.0};
  ExpectRecovered(FitLinkCost(5, Measure({1, 2, 4, 8, 16}), reference));
}

TEST(LinkCostFitTest, SetsAroundTheDefaultSetTellEverythingWhereChannelsCannotRunAlone) {
  // min_selected 2, default {0, 1}: anchor {0}; {0, c} for every other c; {1, 2} (the anchor
  // swapped for the first two channels outside it); {0, 1, 2} (one channel more).
  const std::vector<uint32_t> sets = {0b00011, 0b00101, 0b01001, 0b10001, 0b00110, 0b00111};
  ExpectRecovered(FitLinkCost(5, Measure(sets), std::nullopt));
  // With R0 too (the default set measured through another decision): the same answer.
  ExpectRecovered(FitLinkCost(5, Measure(sets), ChannelSetCost{0b00011, Truth(0b00011), 500.0}));
}

TEST(LinkCostFitTest, WhatTheSetsCannotTellIsGivenUpAndTheRestStaysExact) {
  // Every set has two channels: the fixed part cannot be told apart, so it is 0, and every
  // two-channel set still costs what it measured.
  const std::vector<uint32_t> pairs = {0b00011, 0b00101, 0b01001, 0b10001, 0b00110};
  const LinkCostFit fit = FitLinkCost(5, Measure(pairs), std::nullopt);
  EXPECT_EQ(fit.fixed, 0.0);
  for (uint32_t set = 1; set < 32; ++set) {
    if (std::popcount(set) == 2) {
      EXPECT_NEAR(fit.Cost(set), Truth(set), 1e-9) << set;
    }
  }
  // Single channels without R0: the fixed part is 0 and each channel costs what it measured.
  const LinkCostFit alone = FitLinkCost(5, Measure({1, 2, 4, 8, 16}), std::nullopt);
  EXPECT_EQ(alone.fixed, 0.0);
  for (uint32_t c = 0; c < 5; ++c) EXPECT_NEAR(alone.Cost(1u << c), Truth(1u << c), 1e-9);
}

TEST(LinkCostFitTest, TheFixedPartAndTheIncrementsAreNeverNegative) {
  // R0 far above what the single channels add up to would need a negative fixed part.
  const LinkCostFit fit = FitLinkCost(5, Measure({1, 2, 4, 8, 16}), ChannelSetCost{3, 100.0, 1});
  EXPECT_GE(fit.fixed, 0.0);
  for (double inc : fit.increment) EXPECT_GE(inc, 0.0);
  // And far below: the fixed part stops at the cheapest single channel.
  const LinkCostFit low = FitLinkCost(5, Measure({1, 2, 4, 8, 16}), ChannelSetCost{3, 0.1, 1});
  EXPECT_LE(low.fixed, Truth(4) + 1e-12);
  for (double inc : low.increment) EXPECT_GE(inc, 0.0);
}

}  // namespace
}  // namespace allot::models
