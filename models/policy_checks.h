// Checks of a trained policy against its own logs that need no LibTorch: the trainer computes the
// policy's choices, these decide whether they look broken.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace allot::models {

struct CollapseCheck {
  double top_share = 0.0;         // share of requests given the policy's most common action
  double logged_top_share = 0.0;  // the same for the logging policy
  int64_t top = -1;               // that action
  int64_t distinct = 0;           // actions the policy chose at least once
  std::string warning;            // empty unless the policy looks collapsed
};

// chosen / logged: per validation request, the action the trained policy chooses at the logged
// prices and the action the logging policy took; logged_net: the request's revenue minus its
// logged compute priced at the logged lambdas. A policy has collapsed when it gives one action
// to nearly every request (>= 95%) while the logging policy spread its choices (its most common
// under 80%) and the logs show another action paying more net of compute than that one (or that
// one was hardly ever logged, so nothing supports it). label names an action for the message.
CollapseCheck DetectCollapse(const std::string& agent, std::span<const int64_t> chosen,
                             std::span<const int64_t> logged, std::span<const double> logged_net,
                             int64_t actions, const std::function<std::string(int64_t)>& label);

}  // namespace allot::models
