#include "tests/integration/prometheus_process.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace allot::testing {

PrometheusProcess::PrometheusProcess(const std::string& config_yaml,
                                     const std::vector<std::string>& rule_files) {
  if (system("command -v prometheus >/dev/null") != 0) {
    ADD_FAILURE() << "prometheus is not installed";
    return;
  }
  char tmpl[] = "/tmp/allot-prom-XXXXXX";
  dir_ = mkdtemp(tmpl);
  std::ofstream config(dir_ + "/prometheus.yml");
  config << config_yaml;
  if (!rule_files.empty()) config << "\nrule_files:\n";
  for (size_t i = 0; i < rule_files.size(); ++i) {
    const std::string copy = dir_ + "/rules-" + std::to_string(i) + ".yaml";
    std::filesystem::copy_file(rule_files[i], copy);
    config << "  - " << copy << "\n";
  }
  config.close();
  port_ = FreePort();
  pid_ = fork();
  if (pid_ == 0) {
    const std::string file = "--config.file=" + dir_ + "/prometheus.yml";
    const std::string storage = "--storage.tsdb.path=" + dir_ + "/data";
    const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
    if (!freopen((dir_ + "/prometheus.log").c_str(), "w", stderr)) _exit(126);
    execlp("prometheus", "prometheus", file.c_str(), storage.c_str(), listen.c_str(), nullptr);
    _exit(127);
  }
}

PrometheusProcess::~PrometheusProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  if (!dir_.empty()) std::filesystem::remove_all(dir_);
}

std::string PrometheusProcess::Log() const {
  std::ifstream in(dir_ + "/prometheus.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace allot::testing
