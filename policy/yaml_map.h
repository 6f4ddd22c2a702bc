// Strict, path-naming YAML mapping reader for typed configs.
#pragma once

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "policy/config.h"
#include "policy/named_enum.h"

namespace allot {

// The values a numeric key accepts, declared where the key is read, so the key's name, its
// check and (through the struct it fills) its default are written once. Its text is both the
// error ("must be in (0, 1]") and the config reference's check column.
struct Range {
  static constexpr double kInf = std::numeric_limits<double>::infinity();
  double lo = -kInf;
  double hi = kInf;
  bool lo_open = false;
  bool hi_open = false;

  bool Holds(double v) const {
    return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  }
  // "> 0", ">= 1", "in (0, 1]".
  std::string Text() const {
    if (hi == kInf) return (lo_open ? "> " : ">= ") + Number(lo);
    return std::string("in ") + (lo_open ? "(" : "[") + Number(lo) + ", " + Number(hi) +
           (hi_open ? ")" : "]");
  }

 private:
  static std::string Number(double v) {
    if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
    char buf[32];
    const auto end = std::to_chars(buf, buf + sizeof(buf), v).ptr;
    return std::string(buf, end);
  }
};

constexpr Range Positive() { return {0, Range::kInf, true, false}; }
constexpr Range NonNegative() { return {0, Range::kInf, false, false}; }
constexpr Range AtLeast(double lo) { return {lo, Range::kInf, false, false}; }
constexpr Range Fraction() { return {0, 1, true, false}; }  // (0, 1]
constexpr Range Closed(double lo, double hi) { return {lo, hi, false, false}; }
constexpr Range Open(double lo, double hi) { return {lo, hi, true, true}; }
constexpr Range ClosedOpen(double lo, double hi) { return {lo, hi, false, true}; }

// A key the reader was asked for: its path with list indices dropped ("agents[].name"), its
// type, and the value it had before reading (the default when the key is absent).
struct ConfigKeyRecord {
  std::string key;
  std::string type;
  std::string default_value;
  std::string check;  // what values it accepts ("> 0", "mpc or pid"); empty: any of its type
  size_t order = 0;   // first asked for as the order-th key
};
using ConfigKeyRecorder = std::map<std::string, ConfigKeyRecord>;

// Reads one YAML mapping under a dotted key path. Missing keys keep the caller's default; keys
// never asked for are rejected by RejectUnknownKeys() (typos must not pass silently). Errors throw
// ConfigError("<path>: <what>"). Shared by the Allot config and the simulator's world config.
class YamlMap {
 public:
  // `recorder` (optional) learns every key asked for, here and in nested maps and lists.
  YamlMap(const YAML::Node& node, std::string path, ConfigKeyRecorder* recorder = nullptr)
      : node_(node), path_(std::move(path)), recorder_(recorder) {
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
    Record(key, TypeName<T>(), Format(out));
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

  // Reads a number and checks it against `range`.
  template <typename T>
  void Read(const std::string& key, T& out, const Range& range) {
    static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>);
    Record(key, TypeName<T>(), Format(out), range.Text());
    Read(key, out);
    if (!range.Holds(static_cast<double>(out))) Fail(Child(key), "must be " + range.Text());
  }

  // Reads one of the names in `names` (a kind: a controller, a telemetry source, a mode).
  template <typename E, size_t N>
  void ReadEnum(const std::string& key, E& out, const EnumNames<E, N>& names) {
    Record(key, "string", "\"" + std::string(NameOf(names, out)) + "\"", NameList(names));
    std::string text(NameOf(names, out));
    Read(key, text);
    const std::optional<E> parsed = ParseName(names, text);
    if (!parsed) Fail(Child(key), "must be " + NameList(names) + " (got '" + text + "')");
    out = *parsed;
  }

  // A key another reader owns (a host's section): accepted here, not read, not recorded.
  void Skip(const std::string& key) { seen_.insert(key); }

  // A key that was renamed: a config still using it fails with where it went, instead of
  // "is not a known key". Not part of the reference.
  void Moved(const std::string& key, const std::string& now_at) {
    if (!node_ || !node_.IsMap() || !node_[key]) return;
    Fail(Child(key), "moved to " + Child(now_at));
  }

  void ReadStrings(const std::string& key, std::vector<std::string>& out) {
    Record(key, "string list", FormatList(out));
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
    Record(key, "number list", FormatList(out));
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
    Record(key, "list", "[]");
    YAML::Node value = Get(key);
    if (!value || value.IsNull()) return;
    if (!value.IsSequence()) Fail(Child(key), "must be a list");
    for (size_t i = 0; i < value.size(); ++i) {
      YamlMap item(value[i], Child(key) + "[" + std::to_string(i) + "]", recorder_);
      fn(item, i);
      item.RejectUnknownKeys();
    }
  }

  void ReadMap(const std::string& key, const std::function<void(YamlMap&)>& fn) {
    Record(key, "section", "");
    YamlMap sub(Get(key), Child(key), recorder_);
    fn(sub);
    sub.RejectUnknownKeys();
  }

  // A mapping of names to numbers (feature weights, per-module costs); names are free-form.
  void ReadNumberMap(const std::string& key, std::map<std::string, double>& out) {
    Record(key, "name: number map", "{}");
    ConfigKeyRecorder* recorder = recorder_;
    recorder_ = nullptr;  // the names inside are free-form, not keys
    ReadMap(key, [&](YamlMap& m) {
      if (!m.node() || !m.node().IsMap()) return;
      for (const auto& kv : m.node()) {
        const std::string name = kv.first.as<std::string>();
        double value = 0;
        m.Read(name, value);
        out[name] = value;
      }
    });
    recorder_ = recorder;
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
  void Record(const std::string& key, std::string type, std::string default_value,
              std::string check = "") {
    if (!recorder_) return;
    std::string path;  // without list indices
    for (const char c : Child(key)) {
      if (!path.empty() && path.back() == '[' && c != ']') continue;
      path += c;
    }
    recorder_->try_emplace(path, ConfigKeyRecord{path, std::move(type), std::move(default_value),
                                                 std::move(check), recorder_->size()});
  }

  template <typename T>
  static const char* TypeName() {
    if constexpr (std::is_same_v<T, bool>) return "bool";
    if constexpr (std::is_integral_v<T>) return "integer";
    if constexpr (std::is_floating_point_v<T>) return "number";
    return "string";
  }

  template <typename T>
  static std::string Format(const T& value) {
    if constexpr (std::is_same_v<T, bool>) {
      return value ? "true" : "false";
    } else if constexpr (std::is_floating_point_v<T>) {
      if (value == std::numeric_limits<T>::max()) return "max";
      if (value == -std::numeric_limits<T>::max()) return "-max";
      char buf[32];
      const auto end = std::to_chars(buf, buf + sizeof(buf), value).ptr;  // shortest exact
      return std::string(buf, end);
    } else if constexpr (std::is_integral_v<T>) {
      return std::to_string(value);
    } else {
      return "\"" + std::string(value) + "\"";
    }
  }

  template <typename T>
  static std::string FormatList(const std::vector<T>& values) {
    std::string out = "[";
    for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + Format(values[i]);
    return out + "]";
  }

  YAML::Node node_;
  std::string path_;
  std::set<std::string> seen_;
  ConfigKeyRecorder* recorder_ = nullptr;
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
