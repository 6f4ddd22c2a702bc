// Shared helpers of the typed configs: parsing, reading and versioning their files.
#include "policy/yaml_map.h"

#include <fstream>
#include <sstream>

namespace allot {

YAML::Node ParseYamlDocument(const std::string& yaml) {
  try {
    return YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw ConfigError("<yaml>: parse error at line " + std::to_string(e.mark.line + 1) + ": " +
                      e.msg);
  }
}

std::string ReadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("<file>: cannot read '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ContentHash(std::string_view bytes) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char ch : bytes) hash = (hash ^ ch) * 1099511628211ull;
  std::ostringstream hex;
  hex << std::hex << hash;
  return hex.str();
}

}  // namespace allot
