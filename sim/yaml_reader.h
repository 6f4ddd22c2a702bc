// Strict YAML mapping reader for the world config: every error names the dotted key path.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "policy/config.h"

namespace allot::sim {

// Reads keys of one YAML mapping under a key path. Missing keys keep the caller's default;
// keys that were never asked for are rejected by RejectUnknownKeys() (typos must not pass
// silently). Errors throw allot::ConfigError("<path>: <what>").
class YamlMap {
 public:
  YamlMap(YAML::Node node, std::string path);

  std::string Child(const std::string& key) const;

  void Read(const std::string& key, double& out);
  void Read(const std::string& key, int& out);
  void Read(const std::string& key, bool& out);
  void Read(const std::string& key, std::string& out);
  void ReadDoubles(const std::string& key, std::vector<double>& out);
  void ReadStrings(const std::string& key, std::vector<std::string>& out);
  // Calls fn for each mapping of a list; the list replaces the default when present.
  void ReadList(const std::string& key, const std::function<void(YamlMap&, size_t)>& fn);
  void ReadMap(const std::string& key, const std::function<void(YamlMap&)>& fn);
  void RejectUnknownKeys() const;

  [[noreturn]] static void Fail(const std::string& path, const std::string& what);

 private:
  YAML::Node Get(const std::string& key);
  YAML::Node Scalar(const std::string& key);

  YAML::Node node_;
  std::string path_;
  std::set<std::string> seen_;
};

}  // namespace allot::sim
