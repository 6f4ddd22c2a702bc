// allot-train: trains a model bundle from Transition logs (thin entry point over trainer.h).
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "models/log_check.h"
#include "models/trainer.h"
#include "models/training_log.h"
#include "policy/config.h"

namespace {

constexpr char kUsage[] =
    "usage: allot-train --logs PATH [--logs PATH ...] [--config FILE] [--out DIR] [--algorithm "
    "NAME]\n"
    "                   [--seed N] [--epochs N] [--heads K] [--batch N] [--lr X] [--hidden N]\n"
    "                   [--gamma X] [--td-lambda X] [--mixer-weight X] [--target-update N]\n"
    "                   [--validation X] [--threads N] [--skip-bad] [--quiet] [--testbench CSV]\n"
    "                   [--q-weighting relative|revenue] [--check-logs]\n"
    "  --logs PATH      a log file or a directory of shards (repeatable)\n"
    "  --config FILE    schema to check records against (default: the embedded default config)\n"
    "  --out DIR        model directory; the bundle goes to DIR/<version> (default var/models)\n"
    "  --algorithm NAME one of the methods below (default awrq)\n"
    "  --threads N      LibTorch intra-op threads (default 1: the models' tensors are small)\n"
    "  --td-lambda X    each agent's target: X * revenue + (1 - X) * the next agent's value\n"
    "  --q-weighting W  relative (default): every request's options count alike in the\n"
    "                   action-value loss; revenue: requests count by their revenue\n"
    "  --check-logs     only read the logs and print, per agent, how often each joint action and\n"
    "                   option was logged; exit 1 when an option never occurs (a wrong encoding)\n"
    "  --skip-bad       skip and count records that do not fit the schema instead of failing\n"
    "  --testbench CSV  AutoBucket measurements (allot-sim testbench): fit the cost map and serve\n"
    "                   it for the agents whose logged costs it predicts better\n";

void PrintUsage(std::ostream& out) {
  out << kUsage << "methods:\n";
  for (const allot::models::AlgorithmTraits& a : allot::models::AlgorithmTable())
    out << "  " << a.name << std::string(6 - std::min<size_t>(a.name.size(), 5), ' ') << a.summary
        << "\n";
}

int Usage(const std::string& message) {
  std::cerr << "allot-train: " << message << "\n";
  PrintUsage(std::cerr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  allot::models::TrainOptions options;
  std::vector<std::string> logs;
  std::string config_path, out = "var/models";
  bool skip_bad = false, check_logs = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      PrintUsage(std::cout);
      return 0;
    }
    if (arg == "--skip-bad") {
      skip_bad = true;
      continue;
    }
    if (arg == "--check-logs") {
      check_logs = true;
      continue;
    }
    if (arg == "--quiet") {
      options.progress = false;
      continue;
    }
    if (i + 1 >= argc) return Usage(arg + " needs a value");
    const std::string v = argv[++i];
    try {
      if (arg == "--logs")
        logs.push_back(v);
      else if (arg == "--config")
        config_path = v;
      else if (arg == "--out")
        out = v;
      else if (arg == "--algorithm")
        options.algorithm = v;
      else if (arg == "--seed")
        options.seed = std::stoull(v);
      else if (arg == "--epochs")
        options.epochs = std::stoi(v);
      else if (arg == "--heads")
        options.heads = std::stoi(v);
      else if (arg == "--batch")
        options.batch = std::stoi(v);
      else if (arg == "--lr")
        options.lr = std::stod(v);
      else if (arg == "--hidden")
        options.hidden = std::stoll(v);
      else if (arg == "--gamma")
        options.gamma = std::stod(v);
      else if (arg == "--td-lambda")
        options.td_lambda = std::stod(v);
      else if (arg == "--q-weighting")
        options.q_weighting = v;
      else if (arg == "--mixer-weight")
        options.mixer_weight = std::stod(v);
      else if (arg == "--target-update")
        options.target_update = std::stoi(v);
      else if (arg == "--validation")
        options.validation_fraction = std::stod(v);
      else if (arg == "--threads")
        options.threads = std::stoi(v);
      else if (arg == "--testbench")
        options.testbench_csv = v;
      else
        return Usage("unknown argument '" + arg + "'");
    } catch (const std::logic_error&) {
      return Usage("bad value '" + v + "' for " + arg);
    }
  }
  if (logs.empty()) return Usage("--logs is required");
  try {
    allot::models::ValidateTrainOptions(options);
  } catch (const std::runtime_error& e) {
    return Usage(std::string("--") + e.what());
  }
  try {
    const allot::AllotConfig config = config_path.empty() ? allot::LoadEmbeddedDefaultConfig()
                                                          : allot::LoadConfigFromFile(config_path);
    const allot::models::TrainingLog log = allot::models::ReadTrainingLog(logs, config, skip_bad);
    std::cerr << "allot-train: " << log.rows << " transitions from " << log.files.size()
              << " file(s)";
    if (skip_bad) std::cerr << ", " << log.skipped << " bad record(s) skipped";
    if (log.partial)
      std::cerr << ", " << log.partial << " cache-reuse record(s) training the agents that ran";
    if (log.reused)
      std::cerr << ", " << log.reused << " served wholly from the cache (no decision to learn)";
    std::cerr << "\n";
    const allot::models::LogCheck check = allot::models::CheckLogs(log, config);
    if (check_logs) {
      std::cout << allot::models::FormatLogCheck(check);
      return check.flagged() ? 1 : 0;
    }
    if (check.flagged()) {
      std::cerr << "allot-train: warning: some options never occur in the logs (run with "
                   "--check-logs to see which)\n";
    }
    const auto summary = allot::models::TrainBundle(log, config, options, out, std::cerr);
    std::cout << "bundle " << summary.version << " written to " << summary.bundle_dir << "\n";
    for (const auto& [k, v] : summary.metrics) std::cout << "  " << k << " = " << v << "\n";
    if (summary.offpolicy) std::cout << allot::models::FormatOffPolicyReport(*summary.offpolicy);
    return 0;
  } catch (const allot::ConfigError& e) {
    std::cerr << "allot-train: invalid config: " << e.what() << "\n";
  } catch (const allot::models::LogError& e) {
    std::cerr << "allot-train: bad training log: " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "allot-train: " << e.what() << "\n";
  }
  return 1;
}
