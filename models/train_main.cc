// allot-train: trains a model bundle from Transition logs (thin entry point over trainer.h).
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "models/collective.h"
#include "models/log_check.h"
#include "models/trainer.h"
#include "models/training_log.h"
#include "models/training_source.h"
#include "policy/config.h"

namespace {

constexpr char kUsage[] =
    "usage: allot-train --logs PATH [--logs PATH ...] [--config FILE] [--out DIR] [--algorithm "
    "NAME]\n"
    "                   [--seed N] [--epochs N] [--heads K] [--batch N] [--lr X] [--hidden N]\n"
    "                   [--gamma X] [--td-lambda X] [--mixer-weight X] [--target-update N]\n"
    "                   [--validation X] [--threads N] [--skip-bad] [--quiet] [--testbench CSV]\n"
    "                   [--q-weighting relative|revenue] [--network "
    "algorithm|factorised|distilled]\n"
    "                   [--distil-epochs N] [--distil-actions N] [--distil-pessimism X]\n"
    "                   [--check-logs] [--chunk-rows N] [--max-validation-rows N]\n"
    "                   [--world-size N --rank R --master-addr HOST --master-port P]\n"
    "  --logs PATH      a log file or a directory of shards (repeatable)\n"
    "  --config FILE    schema to check records against (default: the embedded default config)\n"
    "  --out DIR        model directory; the bundle goes to DIR/<version> (default var/models)\n"
    "  --algorithm NAME one of the methods below (default awrq)\n"
    "  --threads N      LibTorch intra-op threads (default 1: the models' tensors are small)\n"
    "  --td-lambda X    each agent's target: X * revenue + (1 - X) * the next agent's value\n"
    "  --q-weighting W  relative (default): every request's options count alike in the\n"
    "                   action-value loss; revenue: requests count by their revenue\n"
    "  --network N      distilled (default): the algorithm's own networks trained, then\n"
    "                   two-tower ones fitted to them over their joint actions and served, about\n"
    "                   ten times faster (one dot product per action); algorithm: each method's\n"
    "                   own action-value network (GRU or MLP) and a DCN cost model served;\n"
    "                   factorised: two-tower action-value and cost networks trained directly\n"
    "  --distil-epochs N passes of the distillation over the training rows (default 6)\n"
    "  --distil-actions N joint actions per agent the distillation fits per batch, sampled\n"
    "                   afresh each batch (default 8; 0: all of them)\n"
    "  --distil-pessimism X the student learns the teacher's heads' mean less X standard\n"
    "                   deviations across them: a lower bound where they disagree (default 1;\n"
    "                   0: each head as it is)\n"
    "  --check-logs     only read the logs and print, per agent, how often each joint action and\n"
    "                   option was logged; exit 1 when an option never occurs (a wrong encoding)\n"
    "  --skip-bad       skip and count records that do not fit the schema instead of failing\n"
    "  --testbench CSV  AutoBucket measurements (allot-sim testbench): fit the cost map and serve\n"
    "                   it for the agents whose logged costs it predicts better\n"
    "  --chunk-rows N   training rows in memory at a time (default 65536), read as 8 chunks from\n"
    "                   random places in the logs and shuffled together: logs are streamed, so\n"
    "                   memory is this plus the validation rows\n"
    "  --max-validation-rows N  held-out rows kept in memory for the validation metrics\n"
    "                   (default 100000; a sample by request hash, alike on every rank)\n"
    "data-parallel training (torchrun's environment; a flag wins over its variable):\n"
    "  --world-size N   WORLD_SIZE: processes in the run (default 1)\n"
    "  --rank R         RANK, else JOB_COMPLETION_INDEX (a Kubernetes Indexed Job): this process;\n"
    "                   rank r reads shards r, r + N, ... of the sorted files; rank 0 writes\n"
    "  --master-addr H  MASTER_ADDR: where rank 0 serves the rendezvous\n"
    "  --master-port P  MASTER_PORT (default 29500)\n"
    "  --dist-timeout S seconds to wait for every rank and each exchange (default 300)\n";

void PrintUsage(std::ostream& out) {
  out << kUsage << "methods:\n";
  size_t width = 0;  // the longest name, so that the summaries line up
  for (const allot::models::AlgorithmTraits& a : allot::models::AlgorithmTable())
    width = std::max(width, a.name.size());
  for (const allot::models::AlgorithmTraits& a : allot::models::AlgorithmTable())
    out << "  " << a.name << std::string(width + 1 - a.name.size(), ' ') << a.summary << "\n";
}

int Usage(const std::string& message) {
  std::cerr << "allot-train: " << message << "\n";
  PrintUsage(std::cerr);
  return 2;
}

void PrintLogSummary(const allot::models::LogStatistics& stats, bool skip_bad, int world_size) {
  std::cerr << "allot-train: " << stats.rows << " transitions from " << stats.files.size()
            << " file(s)";
  if (world_size > 1) std::cerr << " over " << world_size << " ranks";
  std::cerr << " (" << stats.validation_rows << " held out for validation)";
  if (skip_bad) std::cerr << ", " << stats.skipped << " bad record(s) skipped";
  if (stats.partial)
    std::cerr << ", " << stats.partial << " cache-reuse record(s) training the agents that ran";
  if (stats.reused)
    std::cerr << ", " << stats.reused << " served wholly from the cache (no decision to learn)";
  std::cerr << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  allot::models::TrainOptions options;
  std::vector<std::string> logs;
  std::string config_path, out = "var/models";
  bool skip_bad = false, check_logs = false;
  allot::models::DistributedOptions distributed;
  try {
    distributed = allot::models::DistributedOptionsFromEnvironment();  // flags override it
  } catch (const std::invalid_argument& e) {
    return Usage(e.what());
  }
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
      else if (arg == "--network")
        options.network = v;
      else if (arg == "--distil-epochs")
        options.distil_epochs = std::stoi(v);
      else if (arg == "--distil-actions")
        options.distil_actions = std::stoi(v);
      else if (arg == "--distil-pessimism")
        options.distil_pessimism = std::stod(v);
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
      else if (arg == "--chunk-rows")
        options.chunk_rows = std::stoull(v);
      else if (arg == "--max-validation-rows")
        options.max_validation_rows = std::stoull(v);
      else if (arg == "--world-size")
        distributed.world_size = std::stoi(v);
      else if (arg == "--rank")
        distributed.rank = std::stoi(v);
      else if (arg == "--master-addr")
        distributed.master_addr = v;
      else if (arg == "--master-port")
        distributed.master_port = std::stoi(v);
      else if (arg == "--dist-timeout")
        distributed.timeout_s = std::stod(v);
      else
        return Usage("unknown argument '" + arg + "'");
    } catch (const std::logic_error&) {
      return Usage("bad value '" + v + "' for " + arg);
    }
  }
  if (logs.empty()) return Usage("--logs is required");
  try {
    allot::models::ValidateTrainOptions(options);
    allot::models::ValidateDistributedOptions(distributed);
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    return Usage(std::isupper(static_cast<unsigned char>(what[0])) ? what : "--" + what);
  }
  try {
    const allot::AllotConfig config = config_path.empty() ? allot::LoadEmbeddedDefaultConfig()
                                                          : allot::LoadConfigFromFile(config_path);
    const std::unique_ptr<allot::models::Collective> ranks = allot::models::Connect(distributed);
    const bool lead = ranks->rank() == 0;
    allot::models::ShardedSource source(logs, config, skip_bad,
                                        allot::models::SplitOptionsFor(options), *ranks);
    const allot::models::LogStatistics& stats = source.statistics();
    if (lead) PrintLogSummary(stats, skip_bad, ranks->world_size());
    if (source.chunks() == 0 && ranks->world_size() > 1) {
      std::cerr << "allot-train: warning: rank " << ranks->rank() << " has no training rows ("
                << stats.files.size() << " file(s) for " << ranks->world_size()
                << " ranks): it adds nothing and waits on every step\n";
    }
    const allot::models::LogCheck check = allot::models::CheckLogs(stats.logged, config);
    if (check_logs) {
      if (lead) std::cout << allot::models::FormatLogCheck(check);
      return check.flagged() ? 1 : 0;
    }
    if (check.flagged() && lead) {
      std::cerr << "allot-train: warning: some options never occur in the logs (run with "
                   "--check-logs to see which)\n";
    }
    const auto summary =
        allot::models::TrainBundle(source, *ranks, config, options, out, std::cerr);
    if (!lead) {
      std::cout << "rank " << ranks->rank() << " of " << ranks->world_size()
                << ": trained; rank 0 writes the bundle\n";
      return 0;
    }
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
