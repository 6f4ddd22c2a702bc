// allot-bench: latency and throughput of a live Allot server, with grpc.health.v1/Check on the
// same server as the baseline (same channel, transport and threads; only the handler differs).
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "bench/load_runner.h"
#include "client/allot_client.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace {

constexpr char kUsage[] =
    "usage: allot-bench --target HOST:PORT [--method allocate|health|compare] [--mode "
    "closed|open]\n"
    "                   [--concurrency N] [--rate QPS] [--duration S] [--warmup S] [--rounds R]\n"
    "                   [--agent NAME] [--timeout-ms MS] [--channels N] [--seed N] [--outcomes]\n"
    "  --outcomes: an Allocate succeeds when the server answers, fallbacks included, and each\n"
    "  round prints how calls ended (scored, server fallback by reason, client error by status)\n"
    "  compare (default) runs Allocate and health Check alternately R times and prints the ratio\n"
    "  of median QPS (closed loop) or of p99 latency (open loop).\n";

struct Flags {
  std::string target;
  std::string method = "compare";
  std::string mode = "closed";
  int concurrency = 16;
  double rate = 2000;
  double duration = 5;
  double warmup = 1;
  int rounds = 3;
  std::string agent;
  double timeout_ms = 100;
  int channels = 2;
  uint32_t seed = 42;
  bool outcomes = false;
};

[[noreturn]] void Usage(const std::string& message) {
  std::cerr << "allot-bench: " << message << "\n" << kUsage;
  std::exit(2);
}

Flags Parse(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--outcomes") {
      f.outcomes = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (i + 1 >= argc) Usage(arg + " needs a value");
    const std::string v = argv[++i];
    try {
      if (arg == "--target")
        f.target = v;
      else if (arg == "--method")
        f.method = v;
      else if (arg == "--mode")
        f.mode = v;
      else if (arg == "--concurrency")
        f.concurrency = std::stoi(v);
      else if (arg == "--rate")
        f.rate = std::stod(v);
      else if (arg == "--duration")
        f.duration = std::stod(v);
      else if (arg == "--warmup")
        f.warmup = std::stod(v);
      else if (arg == "--rounds")
        f.rounds = std::stoi(v);
      else if (arg == "--agent")
        f.agent = v;
      else if (arg == "--timeout-ms")
        f.timeout_ms = std::stod(v);
      else if (arg == "--channels")
        f.channels = std::stoi(v);
      else if (arg == "--seed")
        f.seed = static_cast<uint32_t>(std::stoul(v));
      else
        Usage("unknown argument '" + arg + "'");
    } catch (const std::logic_error&) {
      Usage("bad value '" + v + "' for " + arg);
    }
  }
  if (f.target.empty()) Usage("--target is required");
  if (f.method != "allocate" && f.method != "health" && f.method != "compare")
    Usage("bad --method");
  if (f.mode != "closed" && f.mode != "open") Usage("bad --mode");
  if (f.concurrency < 1 || f.rate <= 0 || f.duration <= 0 || f.warmup < 0 || f.rounds < 1 ||
      f.channels < 1) {
    Usage("--concurrency, --rate, --duration, --rounds and --channels must be positive");
  }
  return f;
}

// Several channels so that one HTTP/2 connection's ordering does not cap throughput.
std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(const Flags& f) {
  std::vector<std::shared_ptr<grpc::Channel>> out;
  for (int i = 0; i < f.channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", i);  // distinct args -> distinct subchannels
    out.push_back(grpc::CreateCustomChannel(f.target, grpc::InsecureChannelCredentials(), args));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = Parse(argc, argv);
  const auto channels = MakeChannels(flags);
  allot::ClientOptions client_options;
  client_options.allocate_timeout =
      std::chrono::microseconds(static_cast<int64_t>(flags.timeout_ms * 1000));
  std::vector<std::unique_ptr<allot::AllotClient>> clients;
  for (const auto& ch : channels)
    clients.push_back(std::make_unique<allot::AllotClient>(ch, client_options));
  if (grpc::Status s = clients[0]->LoadSchema(); !s.ok()) {
    std::cerr << "allot-bench: cannot read the schema from " << flags.target << ": "
              << s.error_message() << "\n";
    return 1;
  }
  for (size_t i = 1; i < clients.size(); ++i) clients[i]->LoadSchema();
  const allot::v1::ControlState& schema = clients[0]->schema();
  const std::string agent = flags.agent.empty() ? schema.agents(0).name() : flags.agent;
  int width = -1;
  for (const auto& a : schema.agents()) {
    if (a.name() == agent) width = a.features_size();
  }
  if (width < 0) {
    std::cerr << "allot-bench: the server has no agent '" << agent << "'\n";
    return 1;
  }

  // A fixed pool of realistic-looking requests, cycled; deterministic by --seed.
  std::mt19937 rng(flags.seed);
  std::normal_distribution<float> feature(0.0f, 0.7f);
  std::vector<allot::v1::AllocateRequest> requests(1024);
  for (size_t i = 0; i < requests.size(); ++i) {
    requests[i].set_agent(agent);
    requests[i].set_request_id("bench-" + std::to_string(i));
    requests[i].set_user_id("bench-user-" + std::to_string(i));  // spread over experiment arms
    for (int j = 0; j < width; ++j) requests[i].add_features(feature(rng));
  }

  std::vector<std::unique_ptr<grpc::health::v1::Health::Stub>> health;
  for (const auto& ch : channels) health.push_back(grpc::health::v1::Health::NewStub(ch));

  std::atomic<uint64_t> counter{0};
  std::mutex outcomes_mu;
  std::map<std::string, uint64_t> outcomes;  // guarded by outcomes_mu
  const allot::bench::IssueFn allocate = [&](std::function<void(bool)> done) {
    const uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
    clients[n % clients.size()]->AllocateAsync(
        requests[n % requests.size()], [&, done = std::move(done)](allot::AllocationResult r) {
          if (flags.outcomes) {
            const std::string how =
                !r.from_server          ? "client:" + std::to_string(r.status.error_code())
                : r.response.fallback() ? "fallback:" + r.response.fallback_reason()
                                        : "scored";
            std::lock_guard<std::mutex> lock(outcomes_mu);
            ++outcomes[how];
          }
          done(flags.outcomes ? r.from_server : r.from_server && !r.response.fallback());
        });
  };
  const auto print_outcomes = [&] {
    std::lock_guard<std::mutex> lock(outcomes_mu);
    if (!flags.outcomes) return;
    std::printf(
        "outcomes, warm-up included (client:N is a gRPC status code, 4 = DEADLINE_EXCEEDED):");
    for (const auto& [how, count] : outcomes)
      std::printf(" %s=%llu", how.c_str(), static_cast<unsigned long long>(count));
    std::printf("\n");
    outcomes.clear();
  };
  const allot::bench::IssueFn check = [&](std::function<void(bool)> done) {
    struct Call {
      grpc::ClientContext context;
      grpc::health::v1::HealthCheckRequest request;
      grpc::health::v1::HealthCheckResponse response;
    };
    const uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
    auto* call = new Call;
    call->context.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::microseconds(static_cast<int64_t>(flags.timeout_ms * 1000)));
    health[n % health.size()]->async()->Check(
        &call->context, &call->request, &call->response,
        [call, done = std::move(done)](grpc::Status s) {
          const bool ok =
              s.ok() && call->response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
          delete call;
          done(ok);
        });
  };

  allot::bench::LoadOptions options;
  options.open_loop = flags.mode == "open";
  options.concurrency = flags.concurrency;
  options.rate_qps = flags.rate;
  options.duration = std::chrono::duration<double>(flags.duration);
  options.warmup = std::chrono::duration<double>(flags.warmup);

  std::printf("allot-bench target=%s agent=%s mode=%s duration=%.1fs rounds=%d\n",
              flags.target.c_str(), agent.c_str(), flags.mode.c_str(), flags.duration,
              flags.rounds);
  std::vector<allot::bench::LoadResult> alloc_results, health_results;
  for (int round = 0; round < flags.rounds; ++round) {
    if (flags.method != "health") {
      alloc_results.push_back(allot::bench::RunLoad(allocate, options));
      std::printf("%s\n",
                  allot::bench::FormatResult("Allocate", options, alloc_results.back()).c_str());
      print_outcomes();
    }
    if (flags.method != "allocate") {
      health_results.push_back(allot::bench::RunLoad(check, options));
      std::printf(
          "%s\n",
          allot::bench::FormatResult("health.Check", options, health_results.back()).c_str());
    }
    std::fflush(stdout);
  }
  auto median = [](std::vector<allot::bench::LoadResult> rs, auto field) {
    std::sort(rs.begin(), rs.end(),
              [&](const auto& a, const auto& b) { return a.*field < b.*field; });
    return rs[rs.size() / 2].*field;
  };
  if (flags.method == "compare") {
    const double qa = median(alloc_results, &allot::bench::LoadResult::qps);
    const double qh = median(health_results, &allot::bench::LoadResult::qps);
    std::printf("median qps: Allocate=%.0f health.Check=%.0f ratio=%.3f\n", qa, qh,
                qh > 0 ? qa / qh : 0.0);
    std::printf(
        "median Allocate latency: p50=%.0fus p99=%.0fus (health.Check p50=%.0fus p99=%.0fus)\n",
        median(alloc_results, &allot::bench::LoadResult::p50_us),
        median(alloc_results, &allot::bench::LoadResult::p99_us),
        median(health_results, &allot::bench::LoadResult::p50_us),
        median(health_results, &allot::bench::LoadResult::p99_us));
  }
  uint64_t errors = 0;
  for (const auto& r : alloc_results) errors += r.errors;
  for (const auto& r : health_results) errors += r.errors;
  return errors == 0 ? 0 : 3;
}
