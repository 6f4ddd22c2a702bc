// allot-cli: operator tool on top of the client library (schema, one allocation, load reports,
// and a demo that shows decisions moving with request value).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "client/allot_client.h"

namespace {

constexpr char kUsage[] =
    "usage: allot-cli --target HOST:PORT [TLS FLAGS] COMMAND [ARGS]\n"
    "  TLS flags (a server with server.tls): --tls-ca FILE (its CA), --tls-cert FILE and\n"
    "  --tls-key FILE (this client's, for mutual TLS), --tls-server-name NAME (the name in the\n"
    "  server's certificate when the target address is not)\n"
    "  state                                    modules, compute price, load and agent schemas\n"
    "  allocate AGENT [--user ID] [FEATURE=VALUE ...]\n"
    "                                           one Allocate call (unset features are 0; the\n"
    "                                           user id picks the experiment arm)\n"
    "  report-load MODULE CPU QPS [LEVEL]       one ReportLoad call (CPU as a fraction)\n"
    "  explain AGENT [--user ID] [FEATURE=VALUE ...]\n"
    "                                           one Allocate call with every option's value,\n"
    "                                           cost per module and priced score\n"
    "  demo                                     allocations for low- to high-value requests\n";

int Fail(const std::string& message, int code = 1) {
  std::cerr << "allot-cli: " << message << "\n";
  return code;
}

std::string Describe(const allot::v1::AllocateResponse& r) {
  std::ostringstream out;
  for (const auto& d : r.decisions()) {
    out << d.name() << "=";
    for (int i = 0; i < d.selected_size(); ++i) out << (i ? "+" : "") << d.selected(i);
    out << " ";
  }
  char buf[200];
  std::snprintf(buf, sizeof(buf), "| value=%.3f cost=%.1fms price=%.3f bucket=%u%s",
                r.predicted_value(), r.predicted_cost(), r.compute_price(), r.value_bucket(),
                r.fallback() ? (" FALLBACK(" + r.fallback_reason() + ")").c_str() : "");
  return out.str() + buf + (r.arm().empty() ? "" : " arm=" + r.arm());
}

void PrintState(const allot::v1::ControlState& s) {
  std::printf("config %s, bundle %s\n", s.config_version().c_str(), s.bundle_version().c_str());
  for (const auto& m : s.modules()) {
    std::printf("module %-8s target=%.2f price=%.3f controller=%s", m.name().c_str(),
                m.cpu_target(), m.compute_price(), m.controller().c_str());
    if (m.has_last_load()) {
      std::printf(" cpu=%.2f qps=%.0f age=%.1fs%s", m.last_load().cpu_utilization(),
                  m.last_load().qps(), m.last_load().age_seconds(),
                  m.last_load().stale() ? " STALE" : "");
    }
    std::printf("\n");
  }
  for (const auto& arm : s.arms()) {
    std::printf("arm %-10s bundle=%s weight=%.3f", arm.name().c_str(), arm.bundle_version().c_str(),
                arm.weight());
    for (const auto& m : arm.modules()) {
      std::printf(" | %s price=%.3f %s share=%.2f", m.module().c_str(), m.compute_price(),
                  m.controller().c_str(), m.load_share());
    }
    std::printf("\n");
  }
  if (s.has_shadow()) {
    std::printf("shadow %s on %.1f%% of calls:", s.shadow().bundle_version().c_str(),
                100.0 * s.shadow().sample_rate());
    for (const auto& a : s.shadow().agents()) {
      const uint64_t decided = a.agree() + a.differ();
      std::printf(
          " %s agrees %.1f%% of %llu", a.agent().c_str(),
          decided ? 100.0 * static_cast<double>(a.agree()) / static_cast<double>(decided) : 0.0,
          static_cast<unsigned long long>(decided));
      if (a.failed()) std::printf(" (%llu failed)", static_cast<unsigned long long>(a.failed()));
      std::printf(";");
    }
    std::printf("\n");
  }
  for (const auto& a : s.agents()) {
    std::printf("agent %-8s module=%s joint_actions=%u features=[", a.name().c_str(),
                a.module().c_str(), a.joint_actions());
    for (int i = 0; i < a.features_size(); ++i)
      std::printf("%s%s", i ? " " : "", a.features(i).c_str());
    std::printf("]\n");
    for (const auto& d : a.decisions()) {
      std::printf("  %-15s %-6s options=[", d.name().c_str(),
                  allot::v1::ActionKind_Name(d.kind()).substr(12).c_str());
      for (int i = 0; i < d.options_size(); ++i)
        std::printf("%s%s", i ? " " : "", d.options(i).c_str());
      std::printf("]\n");
    }
  }
}

// Every option of one explained decision, highest priced score first: why the chosen one won.
void PrintOptions(const allot::v1::Explanation& e, const std::string& who, size_t max_rows) {
  // "actor": the bundle's actor chose (MADDPG), so the starred option need not be the top one.
  const std::string chosen_by = e.chosen_by().empty() ? "rule" : e.chosen_by();
  std::printf("%s, scored by %s (%s): user_value=%.3f bucket=%u cost cap=%s chosen by=%s\n",
              who.c_str(), e.model().c_str(), e.inference().c_str(), e.user_value(),
              e.value_bucket(),
              e.max_cost_ms() > 0 ? (std::to_string(e.max_cost_ms()) + "ms").c_str() : "none",
              chosen_by.c_str());
  std::printf("  %5s %-44s %9s %9s  %s\n", "index", "option", "value", "priced",
              "cost x compute_price");
  const size_t rows = std::min<size_t>(max_rows, static_cast<size_t>(e.options_size()));
  for (size_t i = 0; i < rows; ++i) {
    const allot::v1::OptionScore& o = e.options(static_cast<int>(i));
    std::string costs;
    for (const auto& c : o.costs()) {
      char buf[96];
      std::snprintf(buf, sizeof(buf), "%s%s %.2fms x %.4f", costs.empty() ? "" : ", ",
                    c.module().c_str(), c.cost_ms(), c.compute_price());
      costs += buf;
    }
    std::printf("%s %5u %-44s %9.4f %9.4f  %s%s%s\n", o.chosen() ? "*" : " ", o.joint_action(),
                o.label().c_str(), o.value(), o.priced_score(), costs.c_str(),
                o.over_cap() ? "  OVER CAP" : "", o.unlogged() ? "  UNLOGGED" : "");
  }
  if (rows < static_cast<size_t>(e.options_size()))
    std::printf("  ... %d more options\n", e.options_size() - static_cast<int>(rows));
}

void PrintExplanation(const allot::v1::AllocateResponse& r, size_t max_rows) {
  PrintOptions(r.explanation(), "agent " + r.agent(), max_rows);
  if (r.has_shadow_explanation()) {
    PrintOptions(r.shadow_explanation(), "shadow candidate (never answered)", max_rows);
  }
}

// A request of a user whose historical value is `hist` (log scale). Later stages also see what
// the earlier ones produced: a typical candidate count and a top score that rises with the
// user's value. Features the agent lacks are skipped.
allot::v1::AllocateRequest DemoRequest(const allot::AllotClient& client,
                                       const allot::v1::AgentSchema& agent, float hist,
                                       const std::string& request_id) {
  auto builder = client.NewRequest(agent.name());
  const std::vector<std::pair<const char*, float>> features = {
      {"user_hist_value_log", hist},
      {"user_activity", hist > 0 ? 1.0f : 0.2f},
      {"ctr_7d", hist > 1 ? 0.08f : 0.02f},
      {"recall_candidates_log", 6.5f},
      {"recall_top_score", 0.5f + 0.12f * hist},
      {"prerank_candidates_log", 6.0f},
      {"prerank_top_score", 0.5f + 0.12f * hist}};
  const auto& names = agent.features();
  for (const auto& [name, value] : features) {
    if (std::find(names.begin(), names.end(), name) != names.end()) builder.Set(name, value);
  }
  builder.RequestId(request_id);
  return builder.request();
}

int Demo(allot::AllotClient& client) {
  // Request value rises with the user's historical value; each agent answers for the same users.
  const std::vector<std::pair<const char*, float>> users = {
      {"new, low value", -1.5f}, {"average", 0.0f}, {"engaged", 1.0f}, {"top spender", 2.2f}};
  for (const auto& agent : client.schema().agents()) {
    std::printf("\n== agent %s ==\n", agent.name().c_str());
    for (const auto& [label, hist] : users) {
      const allot::AllocationResult r =
          client.Allocate(DemoRequest(client, agent, hist, std::string("demo-") + label));
      if (!r.from_server) return Fail("Allocate failed: " + r.status.error_message());
      std::printf("%-15s %s\n", label, Describe(r.response).c_str());
    }
  }
  // Why: the last agent's options for the lowest- and the highest-value user, as explain shows
  // them (two calls: within the default per-caller explain limit).
  const allot::v1::AgentSchema& last = client.schema().agents(client.schema().agents_size() - 1);
  for (const auto& [label, hist] : {users.front(), users.back()}) {
    std::printf("\n== why: agent %s, %s user (best 5 options by priced score; * = chosen) ==\n",
                last.name().c_str(), label);
    allot::v1::AllocateRequest request =
        DemoRequest(client, last, hist, std::string("demo-explain-") + label);
    request.set_explain(true);
    const allot::AllocationResult r = client.Allocate(request);
    if (!r.from_server) return Fail("explain failed: " + r.status.error_message());
    PrintExplanation(r.response, 5);
  }
  std::printf("\n== repeat request with cached stage outputs (recall agent, engaged user) ==\n");
  for (double age : {2.0, 20.0, 60.0}) {
    auto builder = client.NewRequest("recall");
    builder.Set("user_hist_value_log", 1.0f).Set("user_activity", 1.0f).Set("ctr_7d", 0.02f);
    builder.Cache(allot::v1::STAGE_PRERANK, age, 100)
        .Cache(allot::v1::STAGE_RANK, age, 30)
        .Cache(allot::v1::STAGE_RECALL, age, 200);
    const allot::AllocationResult r = client.Allocate(builder.request());
    if (!r.from_server) return Fail("Allocate failed: " + r.status.error_message());
    std::printf("cache age %5.0fs -> reuse %s\n", age,
                allot::v1::CacheReuse_Name(r.response.cache_reuse()).c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string target;
  allot::ClientTls tls;
  const std::map<std::string, std::string*> flags = {{"--target", &target},
                                                     {"--tls-ca", &tls.ca_file},
                                                     {"--tls-cert", &tls.cert_file},
                                                     {"--tls-key", &tls.key_file},
                                                     {"--tls-server-name", &tls.server_name}};
  while (!args.empty() && flags.count(args[0])) {
    if (args.size() < 2) return Fail(args[0] + " needs a value\n" + kUsage, 2);
    *flags.at(args[0]) = args[1];
    args.erase(args.begin(), args.begin() + 2);
  }
  if (target.empty() || args.empty())
    return Fail(std::string("missing --target or command\n") + kUsage, 2);
  if (tls.cert_file.empty() != tls.key_file.empty())
    return Fail("--tls-cert and --tls-key go together", 2);
  allot::ClientOptions options;
  options.allocate_timeout = std::chrono::milliseconds(1000);
  std::shared_ptr<grpc::Channel> channel;
  try {
    channel = allot::MakeChannel(target, tls);
  } catch (const std::exception& e) {
    return Fail(e.what(), 2);
  }
  allot::AllotClient client(channel, options);
  if (grpc::Status s = client.LoadSchema(); !s.ok())
    return Fail("cannot reach " + target + ": " + s.error_message());
  const std::string& command = args[0];
  try {
    if (command == "state") {
      PrintState(client.schema());
      return 0;
    }
    if (command == "demo") return Demo(client);
    if ((command == "allocate" || command == "explain") && args.size() >= 2) {
      auto builder = client.NewRequest(args[1]);
      for (size_t i = 2; i < args.size(); ++i) {
        if (args[i] == "--user" && i + 1 < args.size()) {
          builder.UserId(args[++i]);
          continue;
        }
        const size_t eq = args[i].find('=');
        if (eq == std::string::npos)
          return Fail("expected FEATURE=VALUE, got '" + args[i] + "'", 2);
        builder.Set(args[i].substr(0, eq), std::stof(args[i].substr(eq + 1)));
      }
      allot::v1::AllocateRequest request = builder.request();
      request.set_explain(command == "explain");
      const allot::AllocationResult r = client.Allocate(request);
      if (!r.from_server) return Fail(r.status.error_message());
      std::printf("%s\n", Describe(r.response).c_str());
      if (command == "explain") PrintExplanation(r.response, SIZE_MAX);
      return 0;
    }
    if (command == "report-load" && args.size() >= 4) {
      allot::v1::LoadReport report;
      report.set_module(args[1]);
      report.set_cpu_utilization(std::stod(args[2]));
      report.set_qps(std::stod(args[3]));
      if (args.size() >= 5)
        report.set_degradation_level(static_cast<uint32_t>(std::stoul(args[4])));
      const grpc::Status s = client.ReportLoad(report);
      if (!s.ok()) return Fail(s.error_message());
      return 0;
    }
  } catch (const std::invalid_argument& e) {
    return Fail(e.what(), 2);
  } catch (const std::out_of_range& e) {
    return Fail(std::string("number out of range: ") + e.what(), 2);
  }
  return Fail("unknown command or missing arguments\n" + std::string(kUsage), 2);
}
