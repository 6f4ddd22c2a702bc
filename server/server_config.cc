// Reads the server's sections with the same strict reader as policy's, and checks what relates
// them to the rest of the file (each agent's feature count against max_features).
#include "server/server_config.h"

#include "policy/config_reference.h"
#include "policy/yaml_map.h"

namespace allot {
namespace {

void ReadServer(YamlMap& s, ServerConfig& c) {
  s.Read("listen", c.listen);
  s.Read("metrics_listen", c.metrics_listen);
  s.Read("min_deadline_ms", c.min_deadline_ms, NonNegative());
  s.Read("max_in_flight", c.max_in_flight, NonNegative());
  s.ReadEnum("overload_answer", c.overload_answer, kOverloadAnswers);
  s.Read("max_concurrent_streams", c.max_concurrent_streams, NonNegative());
  s.Read("max_features", c.max_features, Positive());
  s.Read("max_behavior_ids", c.max_behavior_ids, NonNegative());
  s.Read("max_id_length", c.max_id_length, Positive());
  s.Read("max_cache_entries", c.max_cache_entries, NonNegative());
  s.Read("drain_delay_s", c.drain_delay_s, NonNegative());
  s.Read("shutdown_timeout_s", c.shutdown_timeout_s, Positive());
  s.Read("reload_poll_s", c.reload_poll_s, NonNegative());
  s.Read("explain_per_caller_per_s", c.explain_per_caller_per_s, Closed(0, 1e6));
  s.ReadMap("tls", [&](YamlMap& t) {
    t.Read("cert_file", c.tls.cert_file);
    t.Read("key_file", c.tls.key_file);
    t.Read("client_ca_file", c.tls.client_ca_file);
    t.Read("refresh_s", c.tls.refresh_s, Closed(1, 86400));
    t.ReadStrings("reporter_identities", c.tls.reporter_identities);
  });
}

void ReadLogging(YamlMap& s, LoggingConfig& c) {
  s.ReadEnum("level", c.level, kLogLevels);
  s.ReadEnum("format", c.format, kLogFormats);
}

const std::map<std::string, std::string>& ServerKeyDocs() {
  static const std::map<std::string, std::string> docs = {
      // server
      {"server", "The gRPC endpoint, request limits and lifecycle."},
      {"server.listen", "gRPC address. Restart to change (a reload logs and ignores it)."},
      {"server.metrics_listen", "Prometheus /metrics address. Restart to change."},
      {"server.min_deadline_ms",
       "A call with less time left before its deadline is answered with the safe default "
       "(fallback_reason=deadline) without scoring. Raise it if decisions near the deadline "
       "arrive too late for your stage to use."},
      {"server.max_in_flight",
       "Most Allocate calls the server holds at once, counted from the handler's start until the "
       "answer is written to the transport. A call beyond it is shed: answered at once, without "
       "scoring, as server.overload_answer says (allot_shed_calls_total counts them). 0: no "
       "limit. Calls that wait in the kernel or in HTTP/2 flow control before the server reads "
       "them are not counted: bound those with max_concurrent_streams."},
      {"server.overload_answer",
       "What a shed Allocate call gets: safe_default (the agent's safe default, fallback=true, "
       "fallback_reason=overload) or resource_exhausted (the gRPC status, for callers that retry "
       "on another replica)."},
      {"server.max_concurrent_streams",
       "Most calls one connection may have open (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); a "
       "client's further calls wait on its side, where its deadline sees them. Calls the server "
       "has accepted but not read wait in its socket buffers, where no deadline check sees them: "
       "keep caller connections x this limit near capacity x latency budget (about 250 for one "
       "core at 70k calls/s and a 4 ms budget; bench/overload.sh). 0: gRPC's default (no limit), "
       "under which a server past saturation answered nothing within 10 ms. Restart to change."},
      {"server.max_features", "Largest features list accepted (INVALID_ARGUMENT above)."},
      {"server.max_behavior_ids", "Largest behavior_ids list accepted."},
      {"server.max_id_length", "Longest request_id, user_id or ReportLoad reporter name accepted."},
      {"server.max_cache_entries", "Most cached stage outputs one request may describe."},
      {"server.drain_delay_s",
       "On SIGTERM, readiness turns NOT_SERVING this long before the server stops taking calls. "
       "Set it above your load balancer's endpoint propagation time (Kubernetes: a few s)."},
      {"server.shutdown_timeout_s", "At most this long for calls in flight to finish at shutdown."},
      {"server.reload_poll_s",
       "How often the config file is checked for changes (0: only on SIGHUP)."},
      {"server.tls",
       "TLS on the gRPC port (gRPC's own credentials). Without it the port is plaintext: keep it "
       "inside the cluster's network policy. Changing these settings needs a restart; the "
       "certificate files themselves are re-read every refresh_s."},
      {"server.tls.cert_file", "PEM certificate chain of the server; empty: no TLS."},
      {"server.tls.key_file", "PEM private key of cert_file."},
      {"server.tls.client_ca_file",
       "PEM CA bundle; set, every caller must present a certificate it signed (mutual TLS)."},
      {"server.tls.refresh_s",
       "How often the three files are re-read: rotate certificates by replacing the files."},
      {"server.tls.reporter_identities",
       "With mutual TLS: certificate identities (subject alternative names, else the common "
       "name) allowed to call ReportLoad; others get PERMISSION_DENIED. Empty: any caller with "
       "a valid certificate. This authenticates who reports load, which telemetry.report_load."
       "reporters (a self-declared name) cannot."},
      {"server.explain_per_caller_per_s",
       "Allocate calls with explain=true allowed per caller (peer address) and second; bursts of "
       "one second's worth. Explaining scores a request twice and answers with every option. "
       "0 refuses explain."},
      // logging
      {"logging", "Server log output (stderr)."},
      {"logging.level",
       "How much the server logs; debug also logs every fallback and every shadow decision."},
      {"logging.format", "json for log pipelines (one object per line)."},
  };
  return docs;
}

std::vector<HostSection> Sections(ServerConfig& server, LoggingConfig& logging) {
  return {{"server", [&server](YamlMap& s) { ReadServer(s, server); }, &ServerKeyDocs()},
          {"logging", [&logging](YamlMap& s) { ReadLogging(s, logging); }, &ServerKeyDocs()}};
}

[[noreturn]] void Fail(const std::string& path, const std::string& what) {
  YamlMap::Fail(path, what);
}

void Validate(const ServerFileConfig& c) {
  if (c.server.listen.empty()) Fail("server.listen", "must not be empty");
  const TlsConfig& tls = c.server.tls;
  if (tls.cert_file.empty() != tls.key_file.empty())
    Fail(tls.cert_file.empty() ? "server.tls.cert_file" : "server.tls.key_file",
         "cert_file and key_file go together");
  if (!tls.client_ca_file.empty() && !tls.enabled())
    Fail("server.tls.client_ca_file", "needs server.tls.cert_file (mutual TLS is TLS)");
  if (!tls.reporter_identities.empty() && tls.client_ca_file.empty())
    Fail("server.tls.reporter_identities",
         "needs server.tls.client_ca_file: without client certificates there is no identity");
  for (size_t i = 0; i < tls.reporter_identities.size(); ++i) {
    if (tls.reporter_identities[i].empty())
      Fail("server.tls.reporter_identities[" + std::to_string(i) + "]", "is empty");
  }
  for (size_t i = 0; i < c.allot->agents.size(); ++i) {
    if (static_cast<int>(c.allot->agents[i].features.size()) > c.server.max_features) {
      Fail("agents[" + std::to_string(i) + "].features", "exceeds server.max_features");
    }
  }
}

template <typename LoadAllot>
ServerFileConfig Load(LoadAllot load_allot) {
  ServerFileConfig out;
  const std::vector<HostSection> sections = Sections(out.server, out.logging);
  out.allot = std::make_shared<const AllotConfig>(load_allot(sections));
  Validate(out);
  return out;
}

}  // namespace

ServerFileConfig LoadServerConfigFromString(const std::string& yaml, const std::string& source) {
  return Load(
      [&](std::span<const HostSection> host) { return LoadConfigFromString(yaml, source, host); });
}

ServerFileConfig LoadServerConfigFromFile(const std::string& path) {
  return Load([&](std::span<const HostSection> host) { return LoadConfigFromFile(path, host); });
}

ServerFileConfig LoadEmbeddedServerConfig() {
  return Load([](std::span<const HostSection> host) { return LoadEmbeddedDefaultConfig(host); });
}

std::vector<HostSection> ServerSectionsForReference() {
  // Each read fills a fresh scratch value: the recorder takes a key's default from the value
  // before reading, and a sink kept between reads would hold the last file's values.
  return {{"server",
           [](YamlMap& s) {
             ServerConfig scratch;
             ReadServer(s, scratch);
           },
           &ServerKeyDocs()},
          {"logging",
           [](YamlMap& s) {
             LoggingConfig scratch;
             ReadLogging(s, scratch);
           },
           &ServerKeyDocs()}};
}

std::string FormatServerConfigReference() {
  return FormatConfigReference(ServerSectionsForReference());
}

}  // namespace allot
