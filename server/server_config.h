// The server's own sections of the config file (`server`, `logging`): the endpoint, request
// limits, lifecycle and logs. policy/ parses the rest of the same file (AllotConfig) and hands
// these sections to this reader, so one file and one version describe a running server.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "policy/config.h"

namespace allot {

// TLS on the gRPC port, with gRPC's own credentials. The files are re-read every refresh_s, so
// certificates rotate without a restart; the other settings take effect at the next start.
struct TlsConfig {
  std::string cert_file;       // PEM certificate chain; empty = plaintext (no TLS)
  std::string key_file;        // PEM private key of cert_file
  std::string client_ca_file;  // set: mutual TLS, callers need a certificate signed by it
  int refresh_s = 60;
  // With mutual TLS: the certificate identities (subject alternative names, else the common name)
  // allowed to call ReportLoad; empty = any caller with a valid certificate.
  std::vector<std::string> reporter_identities;

  bool enabled() const { return !cert_file.empty(); }
  bool operator==(const TlsConfig&) const = default;
};

// What a shed Allocate call gets: the agent's safe default (fallback_reason=overload), or
// RESOURCE_EXHAUSTED for callers that retry on another replica.
enum class OverloadAnswer { kSafeDefault, kResourceExhausted };
inline constexpr EnumNames<OverloadAnswer, 2> kOverloadAnswers{
    {{OverloadAnswer::kSafeDefault, "safe_default"},
     {OverloadAnswer::kResourceExhausted, "resource_exhausted"}}};

struct ServerConfig {
  std::string listen = "0.0.0.0:50051";
  std::string metrics_listen = "0.0.0.0:9464";
  double min_deadline_ms = 1.0;  // answer with the safe default when less time remains
  // Allocate calls held at once, from the handler's start until the answer is written; a call
  // beyond it is shed (answered at once, without scoring). 0 = no limit.
  int max_in_flight = 256;
  OverloadAnswer overload_answer = OverloadAnswer::kSafeDefault;
  int max_concurrent_streams = 32;  // per connection (HTTP/2 SETTINGS); 0 = gRPC's default
  int max_features = 1024;
  int max_behavior_ids = 512;
  int max_id_length = 256;
  int max_cache_entries = 8;
  double drain_delay_s = 0.0;        // NOT_SERVING before shutdown, for load balancers to notice
  double shutdown_timeout_s = 10.0;  // at most this long for calls in the handlers to finish
  double reload_poll_s = 2.0;        // config file change check interval (0 = SIGHUP only)
  // Allocate calls with explain set, per caller (peer address) and second; 0 refuses them all.
  // Explaining scores the request twice and answers with every option, so it is rate-limited.
  double explain_per_caller_per_s = 2.0;
  TlsConfig tls;

  bool operator==(const ServerConfig&) const = default;
};

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kCritical, kOff };
inline constexpr EnumNames<LogLevel, 7> kLogLevels{{{LogLevel::kTrace, "trace"},
                                                    {LogLevel::kDebug, "debug"},
                                                    {LogLevel::kInfo, "info"},
                                                    {LogLevel::kWarn, "warn"},
                                                    {LogLevel::kError, "error"},
                                                    {LogLevel::kCritical, "critical"},
                                                    {LogLevel::kOff, "off"}}};
enum class LogFormat { kText, kJson };
inline constexpr EnumNames<LogFormat, 2> kLogFormats{
    {{LogFormat::kText, "text"}, {LogFormat::kJson, "json"}}};

struct LoggingConfig {
  LogLevel level = LogLevel::kInfo;
  LogFormat format = LogFormat::kText;

  // As spdlog and server/logging.h spell them.
  std::string level_name() const { return std::string(NameOf(kLogLevels, level)); }
  std::string format_name() const { return std::string(NameOf(kLogFormats, format)); }
  bool operator==(const LoggingConfig&) const = default;
};

// Everything a server reads from its config file.
struct ServerFileConfig {
  std::shared_ptr<const AllotConfig> allot;  // decisions, control, models, experiments
  ServerConfig server;
  LoggingConfig logging;
};

// Parse and validate the whole file; throw ConfigError naming the key.
ServerFileConfig LoadServerConfigFromString(const std::string& yaml, const std::string& source);
ServerFileConfig LoadServerConfigFromFile(const std::string& path);
ServerFileConfig LoadEmbeddedServerConfig();

// The reference of every key, the server's sections included (allot-server --config-reference).
std::string FormatServerConfigReference();
// The server's sections for the config reference and its tests (they read into scratch values).
std::vector<HostSection> ServerSectionsForReference();

}  // namespace allot
