// YamlMap: typed reads with path-qualified errors, in the style of policy/config.cc.
#include "sim/yaml_reader.h"

#include <cmath>

namespace allot::sim {

YamlMap::YamlMap(YAML::Node node, std::string path)
    : node_(std::move(node)), path_(std::move(path)) {
  if (node_ && !node_.IsNull() && !node_.IsMap())
    Fail(path_.empty() ? "<root>" : path_, "must be a mapping");
}

std::string YamlMap::Child(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

void YamlMap::Fail(const std::string& path, const std::string& what) {
  throw ConfigError(path + ": " + what);
}

YAML::Node YamlMap::Get(const std::string& key) {
  seen_.insert(key);
  if (!node_ || node_.IsNull()) return YAML::Node();
  return node_[key];
}

YAML::Node YamlMap::Scalar(const std::string& key) {
  YAML::Node value = Get(key);
  if (!value || value.IsNull()) return YAML::Node();
  if (!value.IsScalar()) Fail(Child(key), "must be a scalar");
  return value;
}

void YamlMap::Read(const std::string& key, double& out) {
  const YAML::Node value = Scalar(key);
  if (!value || value.IsNull()) return;
  try {
    out = value.as<double>();
  } catch (const YAML::Exception&) {
    Fail(Child(key), "must be a number (got '" + value.Scalar() + "')");
  }
  if (!std::isfinite(out)) Fail(Child(key), "must be finite");
}

void YamlMap::Read(const std::string& key, int& out) {
  const YAML::Node value = Scalar(key);
  if (!value || value.IsNull()) return;
  try {
    out = value.as<int>();
  } catch (const YAML::Exception&) {
    Fail(Child(key), "must be an integer (got '" + value.Scalar() + "')");
  }
}

void YamlMap::Read(const std::string& key, bool& out) {
  const YAML::Node value = Scalar(key);
  if (!value || value.IsNull()) return;
  try {
    out = value.as<bool>();
  } catch (const YAML::Exception&) {
    Fail(Child(key), "must be true or false (got '" + value.Scalar() + "')");
  }
}

void YamlMap::Read(const std::string& key, std::string& out) {
  const YAML::Node value = Scalar(key);
  if (value && !value.IsNull()) out = value.Scalar();
}

void YamlMap::ReadDoubles(const std::string& key, std::vector<double>& out) {
  const YAML::Node value = Get(key);
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

void YamlMap::ReadStrings(const std::string& key, std::vector<std::string>& out) {
  const YAML::Node value = Get(key);
  if (!value || value.IsNull()) return;
  if (!value.IsSequence()) Fail(Child(key), "must be a list of strings");
  out.clear();
  for (size_t i = 0; i < value.size(); ++i) {
    if (!value[i].IsScalar()) Fail(Child(key) + "[" + std::to_string(i) + "]", "must be a string");
    out.push_back(value[i].Scalar());
  }
}

void YamlMap::ReadList(const std::string& key, const std::function<void(YamlMap&, size_t)>& fn) {
  const YAML::Node value = Get(key);
  if (!value || value.IsNull()) return;
  if (!value.IsSequence()) Fail(Child(key), "must be a list");
  for (size_t i = 0; i < value.size(); ++i) {
    YamlMap item(value[i], Child(key) + "[" + std::to_string(i) + "]");
    fn(item, i);
    item.RejectUnknownKeys();
  }
}

void YamlMap::ReadMap(const std::string& key, const std::function<void(YamlMap&)>& fn) {
  YamlMap sub(Get(key), Child(key));
  fn(sub);
  sub.RejectUnknownKeys();
}

void YamlMap::RejectUnknownKeys() const {
  if (!node_ || !node_.IsMap()) return;
  for (const auto& kv : node_) {
    const std::string key = kv.first.as<std::string>();
    if (!seen_.count(key)) Fail(Child(key), "is not a known key");
  }
}

}  // namespace allot::sim
