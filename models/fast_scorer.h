// Serving-time inference of a bundle without LibTorch on the request path (models-internal).
//
// Measured here: the LibTorch forward pass of a bundle costs ~1 ms per request (dozens of small
// ops at ~20 us each), ten times the decision budget. The networks are small, so their weights are
// copied out once at load and evaluated with plain loops that exploit the action structure: the
// observation's contribution to every first layer is computed once per request, a decision's
// one-hot contributes one weight column, GRU states are computed once per decision prefix (not
// per joint action), and the mean of K linear heads is one linear head. A factorised bundle
// (TwoTower) goes further: its action towers run at load, so a request costs the state towers
// and one dot product per joint action and output (default config, recall's 62 joint actions:
// 33.9 us p50 with the GRU and DCN, 3.2 us factorised).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/bundle_models.h"
#include "models/cost_map.h"
#include "policy/config.h"
#include "policy/scorer.h"

namespace allot::models {

// Returns null when the architecture is outside what the fast path covers (MLP heads); the caller
// then serves the LibTorch scorer.
std::shared_ptr<const ActionScorer> MakeFastScorer(const std::string& version, BundleModels& models,
                                                   const AllotConfig& config,
                                                   const std::vector<double>& calib_a,
                                                   const std::vector<double>& calib_b,
                                                   ServedCostMap costs, bool reuse_model);

}  // namespace allot::models
