// Flag parsing and the five commands. Each command validates its flags up front and fails with a
// message and exit code 2 before doing any work.
#include "sim/cli.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

#include "models/bundle.h"
#include "policy/analytic_scorer.h"
#include "sim/charts.h"
#include "sim/control_comparison.h"
#include "sim/controller_rows.h"
#include "sim/drive.h"
#include "sim/evaluation.h"
#include "sim/generate.h"
#include "sim/model_quality.h"
#include "sim/offpolicy_check.h"
#include "sim/report.h"
#include "sim/testbench.h"

namespace allot::sim {
namespace {

constexpr char kUsage[] =
    "usage: allot-sim COMMAND [flags]\n"
    "  generate  --out DIR [--requests N] [--shards K] [--seed S] [--epsilon E] [--bundle DIR]\n"
    "            training logs (length-delimited allot.v1.Transition, sharded) and "
    "DIR/manifest.json,\n"
    "            exploring around the analytic rule, or with --bundle around that bundle's\n"
    "            (the policy a platform serves logs its own decisions for the next training)\n"
    "  evaluate  [--requests N] [--seed S] [--csv FILE] [--charts DIR] [--bundles DIR,DIR...]\n"
    "            [--start-hour H] [--density K] [--oracle-window-s W]\n"
    "            [--offpolicy-requests N] [--offpolicy-epsilon E] [--noise-free-oracle 0|1]\n"
    "            [--features-oracle-samples K] [--max-table-mb M]\n"
    "            replays a held-out period through static, dcaf, analytic+fixed|pid|mpc and the "
    "oracle;\n"
    "            oracle-windowed holds each module at its CPU target in every W simulated seconds\n"
    "            (default ten control periods): the best a controller that holds its target can "
    "do;\n"
    "            oracle-noise-free decides on each request without its per-request noise (value,\n"
    "            coverage, yield, cost) and is scored on the truth: what that noise costs anyone\n"
    "            (--noise-free-oracle 0 skips it: on a fine queue grid it doubles the run);\n"
    "            oracle-features (K > 0, default 0: off) also knows the user's value only through\n"
    "            the user features, deciding on the mean over K draws from its exact posterior:\n"
    "            the ceiling of what the user features tell (2K table builds); oracle-all-\n"
    "            features also weighs the draws by the upstream top scores (every later agent's\n"
    "            view, given to all); each -windowed holds it to oracle-windowed's windows;\n"
    "            each bundle adds <algorithm>+dcaf, +windowed (the same windows on the bundle's\n"
    "            own scores: the most such a controller can make of the model), +pid and +mpc;\n"
    "            --density K simulates K times more requests per simulated second, each standing\n"
    "            for K times fewer real ones (less sampling noise in module CPU); with bundles,\n"
    "            the off-policy check below on N held-out requests (default 50000, 0: none);\n"
    "            a hindsight table projected past M MB (default: the memory available to this\n"
    "            process; 0: no limit) is refused before it is built, with the numbers\n"
    "  offpolicy --bundles DIR,DIR... [--requests N] [--seed S] [--epsilon E]\n"
    "            logs N held-out requests epsilon-greedy (E, default 0.1) around the analytic\n"
    "            rule at its budget-meeting lambdas, estimates each bundle (and the analytic "
    "rule)\n"
    "            from them with IPS, SNIPS and doubly robust, and replays each for the truth\n"
    "  control   [--requests N] [--seed S] [--csv FILE] [--start-hour H] [--density K]\n"
    "            the analytic model under the PID and the MPC controller on the same held-out\n"
    "            stream: mu and nu per module, overall and inside/outside promotions\n"
    "  drive     --target HOST:PORT [--qps Q] [--duration S] [--seed S] [--start-hour H] [--csv "
    "FILE]\n"
    "            [--export-load HOST:PORT] [--prices-csv FILE] [--steady-after S]\n"
    "            closed loop against a live server on the loopback interface; a comma-separated\n"
    "            list of 127.x.y.z:PORT replicas gets Allocate round-robin over the ready ones\n"
    "            and ReportLoad each, or with --export-load none: the load is served at\n"
    "            /metrics for a Prometheus that the replicas query. Prints how far the\n"
    "            replicas' prices spread from --steady-after on (default: a third of the run)\n"
    "            and where a restarted replica's price came back in\n"
    "  testbench --out FILE.csv [--seed S]\n"
    "            AutoBucket cost measurements (value bucket x option) for the cost map\n"
    "common flags: --world FILE (default: the embedded config/sim/world.yaml)\n"
    "              --config FILE (default: the embedded config/allot.yaml)\n";

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Flags {
  std::string command;
  std::map<std::string, std::string> values;

  bool Has(const std::string& k) const { return values.count(k) > 0; }
  std::string Str(const std::string& k, const std::string& fallback = "") const {
    const auto it = values.find(k);
    return it == values.end() ? fallback : it->second;
  }
  double Num(const std::string& k, double fallback, double min, double max) const {
    const auto it = values.find(k);
    if (it == values.end()) return fallback;
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(it->second, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != it->second.size() || !(v >= min && v <= max)) {
      throw UsageError("--" + k + " must be a number in [" + Trim(min) + ", " + Trim(max) +
                       "], got '" + it->second + "'");
    }
    return v;
  }
  int64_t Int(const std::string& k, int64_t fallback, int64_t min, int64_t max) const {
    const double v =
        Num(k, static_cast<double>(fallback), static_cast<double>(min), static_cast<double>(max));
    if (v != static_cast<double>(static_cast<int64_t>(v)))
      throw UsageError("--" + k + " must be an integer");
    return static_cast<int64_t>(v);
  }
  static std::string Trim(double v) {
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }
};

Flags Parse(int argc, const char* const* argv) {
  static const std::map<std::string, std::set<std::string>> kFlags = {
      {"generate", {"world", "config", "out", "requests", "shards", "seed", "epsilon", "bundle"}},
      {"evaluate",
       {"world", "config", "requests", "seed", "csv", "charts", "bundles", "start-hour", "density",
        "oracle-window-s", "offpolicy-requests", "offpolicy-epsilon", "noise-free-oracle",
        "features-oracle-samples", "max-table-mb"}},
      {"control", {"world", "config", "requests", "seed", "csv", "start-hour", "density"}},
      {"drive",
       {"world", "config", "target", "qps", "duration", "seed", "start-hour", "csv", "export-load",
        "prices-csv", "steady-after"}},
      {"testbench", {"world", "config", "out", "seed"}},
      {"offpolicy", {"world", "config", "bundles", "requests", "seed", "epsilon"}},
  };
  if (argc < 2) throw UsageError("a command is required");
  Flags f;
  f.command = argv[1];
  const auto allowed = kFlags.find(f.command);
  if (allowed == kFlags.end()) throw UsageError("unknown command '" + f.command + "'");
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + arg + "'");
    std::string key = arg.substr(2);
    std::string value;
    if (const size_t eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    } else {
      if (i + 1 >= argc) throw UsageError(arg + " needs a value");
      value = argv[++i];
    }
    if (!allowed->second.count(key))
      throw UsageError("unknown flag --" + key + " for " + f.command);
    if (f.values.count(key)) throw UsageError("--" + key + " given twice");
    f.values[key] = value;
  }
  return f;
}

std::unique_ptr<World> LoadWorld(const Flags& f) {
  AllotConfig config =
      f.Has("config") ? LoadConfigFromFile(f.Str("config")) : LoadEmbeddedDefaultConfig();
  WorldConfig world =
      f.Has("world") ? LoadWorldConfigFromFile(f.Str("world")) : LoadEmbeddedWorldConfig();
  if (f.command == "evaluate" || f.command == "control") {
    // The evaluated window and sampling density: the same world and the same real traffic.
    world.time.start_hour = f.Num("start-hour", world.time.start_hour, 0.0, 23.999);
    const double density = f.Num("density", 1.0, 0.01, 1000.0);
    world.traffic.mean_qps *= density;
    world.traffic.scale /= density;
  }
  return std::make_unique<World>(std::move(config), std::move(world));
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write '" + path + "'");
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int Generate(const Flags& f, std::ostream& out) {
  GenerateOptions o;
  if (!f.Has("out")) throw UsageError("generate needs --out DIR");
  o.out_dir = f.Str("out");
  o.requests = f.Int("requests", 200000, 1, 1'000'000'000);
  o.shards = static_cast<int>(f.Int("shards", 4, 1, 1024));
  o.seed = static_cast<uint64_t>(f.Int("seed", 1, 0, INT64_MAX));
  o.epsilon = f.Num("epsilon", 0.1, 0.0, 1.0);
  const auto world = LoadWorld(f);
  if (f.Has("bundle")) {
    try {
      o.scorer = models::LoadBundle(f.Str("bundle"), world->config());
    } catch (const models::BundleError& e) {
      throw UsageError(e.what());
    }
  }
  const auto start = std::chrono::steady_clock::now();
  const GenerateSummary s = Generate(*world, o);
  out << "generate: " << s.requests << " transitions in " << s.files.size() << " shards under "
      << o.out_dir << " (" << s.explored_steps << " of " << s.steps << " agent steps explored, "
      << s.cache_reuses << " cache reuses), " << SecondsSince(start)
      << " s\nmanifest: " << s.manifest << "\n";
  return 0;
}

// --bundles DIR,DIR...: a bundle that cannot be served is a usage error naming it.
std::vector<std::shared_ptr<const ActionScorer>> LoadBundles(const Flags& f, const World& world) {
  std::vector<std::shared_ptr<const ActionScorer>> scorers;
  if (!f.Has("bundles")) return scorers;
  std::stringstream list(f.Str("bundles"));
  for (std::string dir; std::getline(list, dir, ',');) {
    if (dir.empty()) continue;
    try {
      scorers.push_back(models::LoadBundle(dir, world.config()));
    } catch (const models::BundleError& e) {
      throw UsageError(e.what());
    }
  }
  return scorers;
}

// The analytic rule (the logging policy's base, a check of the check) and every bundle.
std::vector<Candidate> Candidates(const World& world,
                                  const std::vector<std::shared_ptr<const ActionScorer>>& scorers) {
  std::vector<Candidate> candidates{{"analytic", std::make_shared<AnalyticScorer>(world.config())}};
  for (const auto& scorer : scorers) candidates.emplace_back(scorer->version(), scorer);
  return candidates;
}

int OffPolicy(const Flags& f, std::ostream& out) {
  const auto world = LoadWorld(f);
  const std::vector<std::shared_ptr<const ActionScorer>> scorers = LoadBundles(f, *world);
  if (scorers.empty()) throw UsageError("offpolicy needs --bundles DIR[,DIR...]");
  OffPolicyCheckOptions o;
  o.seed = static_cast<uint64_t>(f.Int("seed", 1, 0, INT64_MAX));
  o.requests = static_cast<size_t>(f.Int("requests", 50'000, 1, 100'000'000));
  o.epsilon = f.Num("epsilon", 0.1, 1e-6, 1.0);
  const auto start = std::chrono::steady_clock::now();
  // The evaluation's held-out day and its budget-meeting lambdas, as `evaluate` prices it.
  const HeldOutStream held = MakeHeldOutStream(*world, o.seed, 0);
  const std::vector<double> lambdas =
      TuneDcafLambdas(*world, held.requests, world->Budgets(held.duration_s, held.scale),
                      world->config().controller.period_s, held.scale);
  out << FormatOffPolicyCheck(
      CheckOffPolicy(*world, held.requests, held.scale, lambdas, Candidates(*world, scorers), o));
  spdlog::info("offpolicy: {} requests, {:.1f} s", o.requests, SecondsSince(start));
  return 0;
}

// The memory this process may still use: the kernel's MemAvailable, capped by the cgroup (v2)
// limit less its usage when there is one, as in a container. 0 when neither can be read.
size_t AvailableMemoryBytes() {
  size_t available = 0;
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    std::istringstream fields(line);
    std::string key;
    size_t kb = 0;
    if (fields >> key >> kb && key == "MemAvailable:") available = kb * 1024;
  }
  std::ifstream max_file("/sys/fs/cgroup/memory.max"),
      current_file("/sys/fs/cgroup/memory.current");
  size_t limit = 0, current = 0;
  if (max_file >> limit && current_file >> current) {  // "max" (no limit) fails the read
    const size_t left = limit > current ? limit - current : 0;
    available = available == 0 ? left : std::min(available, left);
  }
  return available;
}

int Evaluate(const Flags& f, std::ostream& out) {
  EvalOptions o;
  o.max_table_bytes =
      f.Has("max-table-mb")
          ? static_cast<size_t>(f.Int("max-table-mb", 0, 0, INT64_MAX / 1'000'000)) * 1'000'000
          : AvailableMemoryBytes();
  o.seed = static_cast<uint64_t>(f.Int("seed", 1, 0, INT64_MAX));
  o.requests = static_cast<size_t>(f.Int("requests", 0, 0, 100'000'000));
  o.oracle_window_s = f.Num("oracle-window-s", 0.0, 0.0, 1e9);
  o.log_progress = true;
  o.noise_free_oracle = f.Int("noise-free-oracle", 1, 0, 1) == 1;
  o.features_oracle_samples = static_cast<uint32_t>(f.Int("features-oracle-samples", 0, 0, 256));
  OffPolicyCheckOptions offpolicy;
  offpolicy.seed = o.seed;
  offpolicy.requests = static_cast<size_t>(f.Int("offpolicy-requests", 50'000, 0, 100'000'000));
  offpolicy.epsilon = f.Num("offpolicy-epsilon", 0.1, 1e-6, 1.0);
  o.extra_rows.push_back(AnalyticControllerRows());
  const auto world = LoadWorld(f);
  // Learned bundles: each is evaluated offline (+dcaf) and under the PID and the MPC controller.
  const std::vector<std::shared_ptr<const ActionScorer>> scorers = LoadBundles(f, *world);
  for (const auto& scorer : scorers) o.extra_rows.push_back(BundleControllerRows(scorer));
  const auto start = std::chrono::steady_clock::now();
  const Evaluation ev = Evaluate(*world, o);
  const Table table = BuildTable(*world, ev);
  out << FormatTable(table) << FormatReuseBreakdown(*world, ev);
  {
    const HeldOutStream held = MakeHeldOutStream(*world, o.seed, o.requests, o.stream);
    constexpr size_t kQualityRequests = 1000;
    PrintModelQuality("analytic",
                      MeasureModelQuality(*world, held.requests, AnalyticScorer(world->config()),
                                          kQualityRequests),
                      out);
    for (const auto& scorer : scorers) {
      PrintModelQuality(scorer->version(),
                        MeasureModelQuality(*world, held.requests, *scorer, kQualityRequests), out);
    }
    if (!scorers.empty() && offpolicy.requests > 0) {
      out << FormatOffPolicyCheck(CheckOffPolicy(*world, held.requests, held.scale, ev.dcaf_lambdas,
                                                 Candidates(*world, scorers), offpolicy));
    }
  }
  if (f.Has("csv")) WriteFile(f.Str("csv"), FormatCsv(table));
  if (f.Has("charts")) {
    std::string message;
    if (!WriteCharts(f.Str("charts"), *world, ev, world->world().time.start_hour, &message)) {
      spdlog::warn("evaluate: charts skipped: {}", message);
    }
  }
  spdlog::info("evaluate: {} requests over {:.0f} simulated s, {:.1f} s",
               ev.runs.empty() ? 0 : ev.runs[0].requests, ev.duration_s, SecondsSince(start));
  return 0;
}

int Control(const Flags& f, std::ostream& out) {
  ControlOptions o;
  o.seed = static_cast<uint64_t>(f.Int("seed", 1, 0, INT64_MAX));
  o.requests = static_cast<size_t>(f.Int("requests", 0, 0, 100'000'000));
  const auto world = LoadWorld(f);
  const auto start = std::chrono::steady_clock::now();
  const ControlComparison c = CompareControllers(*world, o);
  out << FormatControlComparison(c);
  if (f.Has("csv")) WriteFile(f.Str("csv"), FormatControlComparisonCsv(c));
  spdlog::info("control: {:.0f} simulated s, {:.1f} s", c.duration_s, SecondsSince(start));
  return 0;
}

int Drive(const Flags& f, std::ostream& out) {
  DriveOptions o;
  if (!f.Has("target")) throw UsageError("drive needs --target HOST:PORT");
  o.target = f.Str("target");
  if (!IsLoopbackTarget(o.target))
    throw UsageError(
        "--target must be a loopback HOST:PORT, or 127.x.y.z:PORT replicas separated "
        "by commas, got '" +
        o.target + "'");
  o.qps = f.Num("qps", 200, 1e-3, 100000);
  o.duration_s = f.Num("duration", 30, 1e-3, 3600);
  o.seed = static_cast<uint64_t>(f.Int("seed", 1, 0, INT64_MAX));
  o.start_hour = f.Num("start-hour", 12, 0, 23.999);
  if (f.Has("export-load")) o.export_load = f.Str("export-load");
  const double steady_after = f.Num("steady-after", o.duration_s / 3, 0, o.duration_s);
  const auto world = LoadWorld(f);
  const DriveSummary s = Drive(*world, o);
  const Table table = BuildTable(*world, s.evaluation);
  out << FormatTable(table);
  std::vector<std::string> modules;
  for (const ModuleConfig& m : world->config().modules) modules.push_back(m.name);
  out << FormatPriceReport(s.prices, modules, steady_after);
  if (f.Has("prices-csv")) WriteFile(f.Str("prices-csv"), PricesCsv(s.prices, modules));
  out << "drive: " << s.requests << " requests, " << s.allocate_calls << " Allocate calls ("
      << s.allocate_ok << " ok, " << s.fallbacks << " fallbacks), " << s.report_calls
      << " ReportLoad calls (" << s.report_ok << " ok), " << s.wall_s << " s wall, at most "
      << s.max_behind_s << " s behind schedule\n";
  if (f.Has("csv")) WriteFile(f.Str("csv"), FormatCsv(table));
  return s.allocate_ok == s.allocate_calls && s.report_ok == s.report_calls ? 0 : 1;
}

int Testbench(const Flags& f, std::ostream& out) {
  if (!f.Has("out")) throw UsageError("testbench needs --out FILE.csv");
  const uint64_t seed = static_cast<uint64_t>(f.Int("seed", 1, 0, INT64_MAX));
  const auto world = LoadWorld(f);
  const std::vector<TestbenchRow> rows = RunTestbench(*world, seed);
  WriteFile(f.Str("out"), TestbenchCsv(rows));
  out << "testbench: " << rows.size() << " buckets measured on "
      << world->world().testbench.machines << " x " << world->world().testbench.cores
      << " cores at " << world->world().testbench.qps << " QPS -> " << f.Str("out") << "\n";
  return 0;
}

}  // namespace

int RunCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  if (argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" ||
                    std::string(argv[1]) == "help")) {
    out << kUsage;
    return 0;
  }
  try {
    const Flags f = Parse(argc, argv);
    if (f.command == "generate") return Generate(f, out);
    if (f.command == "evaluate") return Evaluate(f, out);
    if (f.command == "control") return Control(f, out);
    if (f.command == "drive") return Drive(f, out);
    if (f.command == "offpolicy") return OffPolicy(f, out);
    return Testbench(f, out);
  } catch (const UsageError& e) {
    err << "allot-sim: " << e.what() << "\n" << kUsage;
    return 2;
  } catch (const std::invalid_argument& e) {
    err << "allot-sim: " << e.what() << "\n";
    return 2;
  } catch (const ConfigError& e) {
    err << "allot-sim: config error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    err << "allot-sim: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace allot::sim
