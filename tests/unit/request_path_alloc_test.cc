// The request path allocates nothing once warm: decoding into the handler's reused message,
// validation, the decision (scoring on the analytic model and on a learned bundle's fast path,
// argmax, cache-reuse choice, reservoir sampling), the response and the metrics. A global operator
// new counts allocations on this thread while a call runs; the binary holds only this test, so the
// replacement touches nothing else. gRPC's own transport allocations are outside this path and not
// counted.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "models/bundle.h"
#include "models/trainer.h"
#include "models/training_log.h"
#include "policy/allocation_engine.h"
#include "policy/analytic_scorer.h"
#include "server/metrics.h"
#include "server/proto_convert.h"
#include "server/request_validation.h"
#include "server/server_config.h"
#include "tests/models/synthetic.h"

namespace {
thread_local bool counting = false;
thread_local long allocations = 0;
}  // namespace

// GCC pairs a replaced operator new with its own delete only when both are replaced in one
// place; the pragma silences its check of the malloc/free pairing behind them.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  if (counting) ++allocations;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace allot {
namespace {

// Allocations on this thread during 1000 warm calls of each agent, in the order the handler
// makes them, with `scorer` deciding. Warm: every reservoir slot written by every agent.
std::vector<long> WarmCallAllocations(const ServerFileConfig& file,
                                      std::shared_ptr<const ActionScorer> scorer) {
  const std::shared_ptr<const AllotConfig>& config = file.allot;
  const auto policy = MakePolicySnapshot(config, std::move(scorer));
  AllocationEngine engine(policy, static_cast<size_t>(config->controller.reservoir_size),
                          static_cast<uint32_t>(config->controller.sample_every));
  ServerMetrics metrics("127.0.0.1:0");
  const std::vector<AgentMetrics> agent_metrics = metrics.ForPolicy(*policy);

  // One serialized request per agent, with a cached stage so that cache reuse is decided too.
  std::vector<std::string> bodies;
  for (const AgentConfig& agent : config->agents) {
    v1::AllocateRequest r;
    r.set_request_id("request-0123456789");
    r.set_user_id("user-0123456789");
    r.set_agent(agent.name);
    for (size_t f = 0; f < agent.features.size(); ++f) r.add_features(0.1f * static_cast<float>(f));
    v1::StageCache* cache = r.add_cache();
    cache->set_stage(v1::STAGE_RANK);
    cache->set_present(true);
    cache->set_age_seconds(5);
    cache->set_size(50);
    bodies.push_back(r.SerializeAsString());
  }

  // As the handler holds them: one message of each per thread, cleared and reused.
  v1::AllocateRequest request;
  v1::AllocateResponse response;
  std::vector<CachedStage> caches;
  const auto call = [&](const std::string& body) {
    ASSERT_TRUE(request.ParseFromString(body));
    size_t agent = 0;
    ASSERT_TRUE(ValidateAllocateRequest(request, *policy, file.server, &agent, &caches).ok());
    const Allocation a = engine.Decide(
        policy, agent, {request.features().data(), static_cast<size_t>(request.features_size())},
        caches);
    ASSERT_FALSE(a.fallback) << a.fallback_reason;
    response.Clear();
    response.set_request_id(request.request_id());
    FillAllocateResponse(a, &response);
    agent_metrics[agent].decision_seconds->Observe(1e-5);
    metrics.RecordAllocation(agent_metrics[agent], a, *policy);
    metrics.ObserveRpc(RpcMethod::kAllocate, 0, 2e-5);
  };
  const size_t warm = 3 * static_cast<size_t>(config->controller.reservoir_size) *
                      static_cast<size_t>(config->controller.sample_every);
  for (size_t i = 0; i < warm; ++i) call(bodies[i % bodies.size()]);

  // Each agent alone, after the others: buffers shared between agents must not grow again.
  std::vector<long> out;
  for (const std::string& body : bodies) {
    allocations = 0;
    counting = true;
    for (int i = 0; i < 1000; ++i) call(body);
    counting = false;
    out.push_back(allocations);
  }
  return out;
}

TEST(RequestPathAllocationTest, AWarmCallAllocatesNothingWithTheAnalyticModel) {
  const ServerFileConfig file = LoadEmbeddedServerConfig();
  EXPECT_EQ(WarmCallAllocations(file, std::make_shared<const AnalyticScorer>(*file.allot)),
            std::vector<long>(file.allot->agents.size(), 0));
}

// The fast path of a learned bundle: a small awrq bundle trained on a random log of the default
// chain, whose agents have 62, 4 and 8 joint actions (their per-request buffers differ in size).
TEST(RequestPathAllocationTest, AWarmCallAllocatesNothingOnTheFastPath) {
  const ServerFileConfig file = LoadEmbeddedServerConfig();
  char tmpl[] = "/tmp/allot-alloc-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  testing::WriteRandomLog(*file.allot, dir + "/log.binpb", 2000, 3);
  const models::TrainingLog log = models::ReadTrainingLog({dir + "/log.binpb"}, *file.allot, false);
  models::TrainOptions options = testing::SmallBundleOptions(4, 12);
  options.batch = 256;
  std::ostringstream progress;
  const models::TrainSummary summary =
      models::TrainBundle(log, *file.allot, options, dir + "/models", progress);
  const auto scorer = models::LoadBundle(summary.bundle_dir, *file.allot);
  ASSERT_STREQ(scorer->inference(), "fast");
  EXPECT_EQ(WarmCallAllocations(file, scorer), std::vector<long>(file.allot->agents.size(), 0));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace allot
