// The server's sections of the config file, and the reference of every key (server's included).
#include "server/server_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "policy/config_reference.h"
#include "tests/integration/test_server.h"

namespace allot {
namespace {

std::string ServerErrorFor(const std::string& from, const std::string& to) {
  try {
    LoadServerConfigFromString(testing::DefaultConfigWith(from, to), "test");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ServerConfigTest, ReadsItsSectionsBesideThePolicys) {
  const ServerFileConfig file = LoadEmbeddedServerConfig();
  ASSERT_NE(file.allot, nullptr);
  EXPECT_FALSE(file.allot->agents.empty());
  EXPECT_FALSE(file.server.listen.empty());
  EXPECT_EQ(file.logging.format, LogFormat::kText);
}

TEST(ServerConfigTest, BadValuesNameTheirKeys) {
  EXPECT_EQ(ServerErrorFor("  min_deadline_ms: 1.0", "  min_deadline_msec: 1.0"),
            "server.min_deadline_msec: is not a known key");
  EXPECT_EQ(ServerErrorFor("format: text", "format: xml"),
            "logging.format: must be text or json (got 'xml')");
  EXPECT_EQ(ServerErrorFor("  max_features: 1024", "  max_features: 2"),
            "agents[0].features: exceeds server.max_features");
  EXPECT_EQ(ServerErrorFor("  explain_per_caller_per_s: 2.0", "  explain_per_caller_per_s: -1"),
            "server.explain_per_caller_per_s: must be in [0, 1000000]");
  EXPECT_EQ(ServerErrorFor("  max_in_flight: 256", "  max_in_flight: -1"),
            "server.max_in_flight: must be >= 0");
  EXPECT_EQ(ServerErrorFor("overload_answer: safe_default", "overload_answer: drop"),
            "server.overload_answer: must be safe_default or resource_exhausted (got 'drop')");
  EXPECT_EQ(ServerErrorFor("max_concurrent_streams: 32", "max_concurrent_streams: 1.5"),
            "server.max_concurrent_streams: has the wrong type (got '1.5')");
}

// The reference cannot drift: every key the parser reads is documented, nothing else is, and
// docs/config-reference.md is what allot-server --config-reference prints.
TEST(ConfigReferenceTest, EveryKeyIsDocumentedAndTheReferenceFileIsCurrent) {
  const std::vector<ConfigKeyRecord> keys = RecordConfigKeys(ServerSectionsForReference());
  EXPECT_GT(keys.size(), 90u);
  for (const std::string& key : UndocumentedConfigKeys(ServerSectionsForReference()))
    ADD_FAILURE() << "config key " << key
                  << " has no entry in policy/config_docs.cc or server/server_config.cc";
  for (const std::string& key : StaleConfigKeyDocs(ServerSectionsForReference()))
    ADD_FAILURE() << "policy/config_docs.cc or server/server_config.cc documents " << key
                  << ", which the parser never reads";
  std::ifstream in(std::string(ALLOT_SOURCE_DIR) + "/docs/config-reference.md");
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(file, FormatServerConfigReference())
      << "regenerate: build/allot-server --config-reference > docs/config-reference.md";
}

TEST(ConfigReferenceTest, DefaultsAreTheParsersAndListKeysAreFound) {
  std::map<std::string, ConfigKeyRecord> by_key;
  for (const ConfigKeyRecord& k : RecordConfigKeys(ServerSectionsForReference())) by_key[k.key] = k;
  const AllotConfig defaults;
  ASSERT_TRUE(by_key.count("controller.reservoir_size"));
  EXPECT_EQ(by_key["controller.reservoir_size"].default_value,
            std::to_string(defaults.controller.reservoir_size));
  EXPECT_EQ(by_key["controller.forecast.day_length_s"].default_value, "86400");
  EXPECT_EQ(by_key["lambda.max_step"].default_value, "0.05");
  // Each key's check is declared where it is read, and the reference lists it.
  EXPECT_EQ(by_key["controller.mpc.horizon"].check, "in [1, 100]");
  EXPECT_EQ(by_key["controller.mpc.alpha"].check, "in (0, 1]");
  EXPECT_EQ(by_key["lambda.max_step"].check, "> 0");
  EXPECT_EQ(by_key["controller.kind"].check, "mpc or pid");
  EXPECT_EQ(by_key["controller.kind"].default_value, "\"mpc\"");
  EXPECT_EQ(by_key["server.listen"].check, "");
  EXPECT_EQ(by_key["models.serve_analytic"].default_value, "true");
  EXPECT_EQ(by_key["server.listen"].type, "string");
  EXPECT_TRUE(by_key.count("agents[].decisions[].options[].length"));
  EXPECT_TRUE(by_key.count("agents[].feature_bounds[].action"));
  EXPECT_FALSE(by_key.count("value_model.weights.ctr_7d")) << "free-form names are not keys";
  // In the parser's order: sections as the config file has them.
  EXPECT_EQ(RecordConfigKeys(ServerSectionsForReference()).front().key, "server");
}

}  // namespace
}  // namespace allot
