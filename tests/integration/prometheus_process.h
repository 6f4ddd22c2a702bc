// A real Prometheus on 127.0.0.1 for tests, with its config and storage in a temp directory.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "tests/free_port.h"  // FreePort, for the ports of a test's servers

namespace allot::testing {

class PrometheusProcess {
 public:
  // `config_yaml` is the whole prometheus.yml; `rule_files` are copied beside it and listed under
  // its rule_files. Fails the test when the binary is missing.
  explicit PrometheusProcess(const std::string& config_yaml,
                             const std::vector<std::string>& rule_files = {});
  ~PrometheusProcess();
  PrometheusProcess(const PrometheusProcess&) = delete;
  PrometheusProcess& operator=(const PrometheusProcess&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
  // Prometheus's own log, for a failure message.
  std::string Log() const;

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace allot::testing
