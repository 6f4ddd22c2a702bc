// The config reference: every key the parser reads, found by parsing the embedded default config
// with a recorder (so a new key cannot be missed), with its type, its default and what it is for.
// docs/config-reference.md is this, generated (`allot-server --config-reference`); a unit test
// keeps the two equal and every key documented.
#pragma once

#include <map>
#include <span>
#include <string>
#include <vector>

#include "policy/yaml_map.h"

namespace allot {

// Every key the config parser asks for, in path order ("agents[].decisions[].kind"), with the
// host's sections (the server's) read by the host's readers.
std::vector<ConfigKeyRecord> RecordConfigKeys(std::span<const HostSection> host = {});

// What each policy key is for and when to change it, by key path (policy/config_docs.cc).
const std::map<std::string, std::string>& ConfigKeyDocs();

// Keys the parser reads that have no documentation, and documented keys it does not read
// (policy's docs and the host sections').
std::vector<std::string> UndocumentedConfigKeys(std::span<const HostSection> host = {});
std::vector<std::string> StaleConfigKeyDocs(std::span<const HostSection> host = {});

// The reference as Markdown: one table per top-level section.
std::string FormatConfigReference(std::span<const HostSection> host = {});

}  // namespace allot
