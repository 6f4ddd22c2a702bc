// Strict, path-naming YAML mapping reader for typed configs.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "policy/config.h"

namespace allot {

// Reads one YAML mapping under a dotted key path. Missing keys keep the caller's default; keys
// never asked for are rejected by RejectUnknownKeys() (typos must not pass silently). Errors throw
// ConfigError("<path>: <what>"). Shared by the Allot config and the simulator's world config.
class YamlMap {
 public:
  YamlMap(const YAML::Node& node, std::string path) : node_(node), path_(std::move(path)) {
    if (node_ && !node_.IsNull() && !node_.IsMap()) Fail(path_, "must be a mapping");
  }

  std::string Child(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

  YAML::Node Get(const std::string& key) {
    seen_.insert(key);
    if (!node_ || node_.IsNull()) return YAML::Node();
    return node_[key];
  }

  template <typename T>
  void Read(const std::string& key, T& out) {
    YAML::Node value = Get(key);
    if (!value || value.IsNull()) return;
    if (!value.IsScalar()) Fail(Child(key), "must be a scalar");
    try {
      out = value.as<T>();
    } catch (const YAML::Exception&) {
      Fail(Child(key), "has the wrong type (got '" + value.Scalar() + "')");
    }
    if constexpr (std::is_floating_point_v<T>) {
      if (!std::isfinite(out)) Fail(Child(key), "must be finite");
    }
  }

  void ReadStrings(const std::string& key, std::vector<std::string>& out) {
    YAML::Node value = Get(key);
    if (!value || value.IsNull()) return;
    if (value.IsScalar()) {
      out = {value.Scalar()};
      return;
    }
    if (!value.IsSequence()) Fail(Child(key), "must be a list of strings");
    out.clear();
    for (size_t i = 0; i < value.size(); ++i) {
      if (!value[i].IsScalar())
        Fail(Child(key) + "[" + std::to_string(i) + "]", "must be a string");
      out.push_back(value[i].Scalar());
    }
  }

  void ReadDoubles(const std::string& key, std::vector<double>& out) {
    YAML::Node value = Get(key);
    if (!value || value.IsNull()) return;
    if (!value.IsSequence()) Fail(Child(key), "must be a list of numbers");
    out.clear();
    for (size_t i = 0; i < value.size(); ++i) {
      const std::string item = Child(key) + "[" + std::to_string(i) + "]";
      double d = 0;
      try {
        d = value[i].as<double>();
      } catch (const YAML::Exception&) {
        Fail(item, "must be a number");
      }
      if (!std::isfinite(d)) Fail(item, "must be finite");
      out.push_back(d);
    }
  }

  // Calls fn(reader, index) for each element of a list of mappings.
  void ReadList(const std::string& key, const std::function<void(YamlMap&, size_t)>& fn) {
    YAML::Node value = Get(key);
    if (!value || value.IsNull()) return;
    if (!value.IsSequence()) Fail(Child(key), "must be a list");
    for (size_t i = 0; i < value.size(); ++i) {
      YamlMap item(value[i], Child(key) + "[" + std::to_string(i) + "]");
      fn(item, i);
      item.RejectUnknownKeys();
    }
  }

  void ReadMap(const std::string& key, const std::function<void(YamlMap&)>& fn) {
    YamlMap sub(Get(key), Child(key));
    fn(sub);
    sub.RejectUnknownKeys();
  }

  // A mapping of names to numbers (feature weights, per-module costs); names are free-form.
  void ReadNumberMap(const std::string& key, std::map<std::string, double>& out) {
    ReadMap(key, [&](YamlMap& m) {
      if (!m.node() || !m.node().IsMap()) return;
      for (const auto& kv : m.node()) {
        const std::string name = kv.first.as<std::string>();
        double value = 0;
        m.Read(name, value);
        out[name] = value;
      }
    });
  }

  void RejectUnknownKeys() const {
    if (!node_ || !node_.IsMap()) return;
    for (const auto& kv : node_) {
      const std::string key = kv.first.as<std::string>();
      if (!seen_.count(key)) Fail(Child(key), "is not a known key");
    }
  }

  const YAML::Node& node() const { return node_; }
  const std::string& path() const { return path_; }

  [[noreturn]] static void Fail(const std::string& path, const std::string& what) {
    throw ConfigError(path + ": " + what);
  }

 private:
  YAML::Node node_;
  std::string path_;
  std::set<std::string> seen_;
};

// Parses one YAML document; a syntax error becomes ConfigError("<yaml>: parse error at line N:
// ...").
YAML::Node ParseYamlDocument(const std::string& yaml);
// The whole file as text; ConfigError("<file>: cannot read 'PATH'") when it cannot be read.
std::string ReadConfigFile(const std::string& path);
// FNV-1a of the bytes as hex: stable across builds and hosts, so replicas with the same file
// report the same version.
std::string ContentHash(std::string_view bytes);

}  // namespace allot
