// allot-bench-decision: time of one serving decision (score every joint action, then the argmax
// of value - lambda * cost) in process, one thread, no RPC: the part of Allocate that the model
// bundle adds. Prints per agent p50/p99 for the analytic scorer (baseline, same run) and for the
// newest bundle in --model-dir on its serving path (and, with --torch, the LibTorch reference).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "models/bundle.h"
#include "policy/analytic_scorer.h"
#include "policy/config.h"
#include "policy/decision_rule.h"

namespace {

volatile size_t g_sink = 0;

struct Options {
  std::string config_path;
  std::string model_dir = "var/models";
  int requests = 20000;
  uint64_t seed = 1;
  bool torch = false;
  std::string agent;  // empty: every agent
  int evict_kb = 0;   // > 0: this much memory is written between decisions
};

int Usage(const std::string& error) {
  if (!error.empty()) std::cerr << "allot-bench-decision: " << error << "\n";
  std::cerr << "usage: allot-bench-decision [--config FILE] [--model-dir DIR] [--requests N]\n"
               "                            [--seed N] [--torch] [--agent NAME] [--evict-kb N]\n"
               "  --config     Allot config (default: the embedded default)\n"
               "  --model-dir  directory of bundles; the newest is timed (default var/models)\n"
               "  --torch      also time the LibTorch reference path (slow)\n"
               "  --agent      time this agent only (for profiling one agent's path)\n"
               "  --evict-kb   write this many KB between decisions (untimed), so that each one\n"
               "               starts with caches as cold as a server's between calls\n";
  return error.empty() ? 0 : 2;
}

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

// Features in a plausible range for every configured feature: standard normal draws. The
// scorers' cost does not depend on the values, only on the widths and the action space.
std::vector<std::vector<float>> MakeRequests(size_t width, int n, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::vector<float>> out(static_cast<size_t>(n), std::vector<float>(width));
  for (auto& r : out)
    for (float& x : r) x = normal(rng);
  return out;
}

void Time(const std::string& label, const allot::ActionScorer& scorer,
          const allot::AllotConfig& config, const Options& options) {
  std::mt19937_64 rng(options.seed);
  for (size_t agent = 0; agent < config.agents.size(); ++agent) {
    if (!options.agent.empty() && config.agents[agent].name != options.agent) continue;
    const auto requests = MakeRequests(config.agents[agent].features.size(), options.requests, rng);
    allot::AgentScores scores;
    // Every module priced alike; an actor (MADDPG) reads the prices, the rule prices the costs.
    const std::vector<double> module_lambda(config.modules.size(), 0.1);
    std::vector<double> priced;
    for (int i = 0; i < std::min(200, options.requests); ++i) {  // warm caches and thread_locals
      scorer.Score(agent, requests[static_cast<size_t>(i)], &scores);
    }
    std::vector<double> us;
    us.reserve(requests.size());
    std::vector<char> evict(static_cast<size_t>(options.evict_kb) * 1024);
    for (const auto& features : requests) {
      for (size_t i = 0; i < evict.size(); i += 64) evict[i] = static_cast<char>(evict[i] + 1);
      const auto start = std::chrono::steady_clock::now();
      if (!scorer.Score(agent, features, &scores)) {
        std::cerr << label << ": scoring failed for agent " << config.agents[agent].name << "\n";
        std::exit(1);
      }
      // The decision itself, which also keeps the scoring from being elided.
      g_sink = allot::DecideJoint(scorer, agent, features, scores, 0.1, module_lambda, 0.0, priced)
                   .joint;
      us.push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
              .count());
    }
    // The mean, to two decimals, shows changes below the percentiles' clock resolution.
    double mean = 0;
    for (double t : us) mean += t / static_cast<double>(us.size());
    std::printf(
        "%-8s %-8s joint_actions=%-4zu requests=%-6d p50=%8.1fus p99=%8.1fus mean=%6.2fus\n",
        label.c_str(), config.agents[agent].name.c_str(), scores.value.size(), options.requests,
        Percentile(us, 0.50), Percentile(us, 0.99), mean);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    try {
      if (arg == "--help" || arg == "-h") return Usage("");
      if (arg == "--config")
        options.config_path = value();
      else if (arg == "--model-dir")
        options.model_dir = value();
      else if (arg == "--requests")
        options.requests = std::stoi(value());
      else if (arg == "--seed")
        options.seed = std::stoull(value());
      else if (arg == "--torch")
        options.torch = true;
      else if (arg == "--agent")
        options.agent = value();
      else if (arg == "--evict-kb")
        options.evict_kb = std::stoi(value());
      else
        return Usage("unknown argument " + arg);
    } catch (const std::exception& e) {
      return Usage(std::string("bad value for ") + arg + ": " + e.what());
    }
  }
  if (options.requests < 1) return Usage("--requests must be >= 1");
  if (options.evict_kb < 0) return Usage("--evict-kb must be >= 0");
  try {
    const allot::AllotConfig config = options.config_path.empty()
                                          ? allot::LoadEmbeddedDefaultConfig()
                                          : allot::LoadConfigFromFile(options.config_path);
    if (!options.agent.empty() &&
        std::none_of(config.agents.begin(), config.agents.end(),
                     [&](const allot::AgentConfig& a) { return a.name == options.agent; }))
      return Usage("--agent " + options.agent + " is not an agent of the config");
    const allot::AnalyticScorer analytic(config);
    Time("analytic", analytic, config, options);
    const auto bundles = allot::models::ListBundles(options.model_dir);
    if (bundles.empty()) {
      std::cerr << "allot-bench-decision: no bundle in " << options.model_dir << "\n";
      return 1;
    }
    std::printf("bundle %s\n", bundles.front().c_str());
    Time("bundle", *allot::models::LoadBundle(bundles.front(), config), config, options);
    if (options.torch) {
      Time("torch",
           *allot::models::LoadBundle(bundles.front(), config, allot::models::Inference::kTorch),
           config, options);
    }
  } catch (const std::exception& e) {
    std::cerr << "allot-bench-decision: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
