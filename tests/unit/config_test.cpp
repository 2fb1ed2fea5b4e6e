#include "devcycle/platform/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/error_matchers.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  std::string write_file(const std::string& text) {
    const auto path = dir_.file("devcycle.toml");
    std::ofstream(path) << text;
    return path;
  }
  testing::TempDir dir_;
};

TEST_F(ConfigTest, DefaultsAreTheEmbeddedBackends) {
  const auto o = resolve_options({});
  EXPECT_EQ(o.database, "sqlite://./devcycle.db");
  EXPECT_EQ(o.bus, "inproc://");
  EXPECT_EQ(o.cache, "memory://");
  EXPECT_EQ(o.log_level, "info");
  EXPECT_EQ(PlatformOptions{}.database, o.database);
}

TEST_F(ConfigTest, FlagsBeatEnvironmentBeatsFileBeatsDefaults) {
  ConfigSources s;
  s.config_file = write_file(
      "database = \"sqlite://./from-file.db\"\n"
      "bus = \"kafka://file-broker:9092\"\n"
      "cache = \"redis://file-redis:6379/0\"\n"
      "log_level = \"warn\"\n");
  auto o = resolve_options(s);
  EXPECT_EQ(o.database, "sqlite://./from-file.db");
  EXPECT_EQ(o.bus, "kafka://file-broker:9092");
  EXPECT_EQ(o.cache, "redis://file-redis:6379/0");
  EXPECT_EQ(o.log_level, "warn");

  s.environment = {{"DEVCYCLE_DATABASE", "sqlite://./from-env.db"},
                   {"DEVCYCLE_CACHE", "memory://"},
                   {"DEVCYCLE_LOG_LEVEL", "debug"}};
  o = resolve_options(s);
  EXPECT_EQ(o.database, "sqlite://./from-env.db");
  EXPECT_EQ(o.bus, "kafka://file-broker:9092");  // only in the file
  EXPECT_EQ(o.cache, "memory://");
  EXPECT_EQ(o.log_level, "debug");

  s.flags = {{"database", "sqlite::memory:"}, {"log_level", "error"}};
  o = resolve_options(s);
  EXPECT_EQ(o.database, "sqlite::memory:");
  EXPECT_EQ(o.cache, "memory://");  // from the environment
  EXPECT_EQ(o.log_level, "error");
}

TEST_F(ConfigTest, ConfigFileMayBeNamedByTheEnvironment) {
  ConfigSources s;
  s.environment = {{"DEVCYCLE_CONFIG", write_file("log_level = \"trace\"\n")}};
  EXPECT_EQ(resolve_options(s).log_level, "trace");
}

TEST_F(ConfigTest, CommandLineFlagsInBothFormsAndDashes) {
  const auto file = write_file("bus = \"inproc://\"\n");
  const char* argv[] = {
      "prog", "--database=sqlite::memory:", "--log-level", "warn", "--config", file.c_str()};
  const auto s = ConfigSources::from_command_line(6, argv);
  EXPECT_EQ(s.flags.at("database"), "sqlite::memory:");
  EXPECT_EQ(s.flags.at("log_level"), "warn");
  EXPECT_EQ(s.config_file, file);
  EXPECT_EQ(resolve_options(s).log_level, "warn");
}

TEST_F(ConfigTest, BadCommandLinesNameTheFlag) {
  const char* unknown[] = {"prog", "--databse=x"};
  EXPECT_DEVCYCLE_ERROR(ConfigSources::from_command_line(2, unknown), ErrorCode::kInvalidArgument,
                        "--databse", "unknown", "--database");
  const char* no_value[] = {"prog", "--cache"};
  EXPECT_DEVCYCLE_ERROR(ConfigSources::from_command_line(2, no_value), ErrorCode::kInvalidArgument,
                        "--cache", "needs a value");
  const char* positional[] = {"prog", "serve"};
  EXPECT_DEVCYCLE_ERROR(ConfigSources::from_command_line(2, positional),
                        ErrorCode::kInvalidArgument, "\"serve\"");
}

TEST_F(ConfigTest, BadValuesNameTheSettingTheSourceAndTheValue) {
  ConfigSources s;
  s.environment = {{"DEVCYCLE_DATABASE", "mysql://db/x"}};
  EXPECT_DEVCYCLE_ERROR(resolve_options(s), ErrorCode::kInvalidArgument, "database",
                        "DEVCYCLE_DATABASE", "mysql://db/x", "unknown scheme");

  s = {};
  s.flags = {{"bus", "rabbitmq://h"}};
  EXPECT_DEVCYCLE_ERROR(resolve_options(s), ErrorCode::kInvalidArgument, "bus", "--bus",
                        "rabbitmq://h");
  s.flags = {{"bus", "kafka://"}};
  EXPECT_DEVCYCLE_ERROR(resolve_options(s), ErrorCode::kInvalidArgument, "bus", "no broker");
  s.flags = {{"bus", "inproc://somewhere"}};
  EXPECT_DEVCYCLE_ERROR(resolve_options(s), ErrorCode::kInvalidArgument, "bus",
                        "exactly inproc://");

  s.flags = {{"cache", "redis://h:6379/zero"}};
  EXPECT_DEVCYCLE_ERROR(resolve_options(s), ErrorCode::kInvalidArgument, "cache", "--cache",
                        "zero");
  s.flags = {{"cache", "redis://h:70000"}};
  EXPECT_DEVCYCLE_ERROR(resolve_options(s), ErrorCode::kInvalidArgument, "cache", "70000");

  s.flags = {{"log_level", "loud"}};
  EXPECT_DEVCYCLE_ERROR(resolve_options(s), ErrorCode::kInvalidArgument, "log_level", "--log-level",
                        "loud");

  s.flags = {{"database", "sqlite://./x.db?synchronous=maybe"}};
  EXPECT_DEVCYCLE_ERROR(resolve_options(s), ErrorCode::kInvalidArgument, "database",
                        "synchronous=maybe");
  s.flags = {{"database", "postgresql://u:topsecret@h:port/db"}};
  try {
    resolve_options(s);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("topsecret"), std::string::npos) << e.what();
  }
}

TEST_F(ConfigTest, ConfigFileProblemsNameTheFileAndKey) {
  ConfigSources s;
  s.config_file = write_file("databse = \"sqlite::memory:\"\n");
  EXPECT_DEVCYCLE_ERROR(resolve_options(s), ErrorCode::kInvalidArgument, s.config_file,
                        "unknown key \"databse\"", "database");
  s.config_file = write_file("log_level = 3\n");
  EXPECT_DEVCYCLE_ERROR(resolve_options(s), ErrorCode::kInvalidArgument, "log_level",
                        "must be a string");
  s.config_file = write_file("cache = \"memcached://h\"\n");
  EXPECT_DEVCYCLE_ERROR(resolve_options(s), ErrorCode::kInvalidArgument, "cache", "config file",
                        "memcached://h");
  s.config_file = write_file("database = \n");
  EXPECT_DEVCYCLE_ERROR(resolve_options(s), ErrorCode::kInvalidArgument, s.config_file, "line 1");
  s.config_file = dir_.file("missing.toml");
  EXPECT_DEVCYCLE_ERROR(resolve_options(s), ErrorCode::kInvalidArgument, "missing.toml");
}

TEST_F(ConfigTest, UnknownFlagInSourcesIsRefused) {
  ConfigSources s;
  s.flags = {{"colour", "blue"}};
  EXPECT_DEVCYCLE_ERROR(resolve_options(s), ErrorCode::kInvalidArgument, "--colour", "unknown");
}

TEST_F(ConfigTest, KnownSettingsDescribeThemselves) {
  const auto settings = known_settings();
  ASSERT_EQ(settings.size(), 15u);
  for (const auto& s : settings) {
    EXPECT_FALSE(s.description.empty()) << s.name;
    EXPECT_TRUE(s.environment.starts_with("DEVCYCLE_")) << s.name;
  }
}

// Issue #20: every setting a program reads is the library's, one name each
// (the server used to read max_active_runs_per_user into
// max_active_runs_per_owner, and its own list of the rest).
TEST_F(ConfigTest, TypedSettingsFillThePlatformOptionsOfTheSameName) {
  ConfigSources s;
  s.flags = {{"max_active_runs_per_owner", "3"},
             {"max_agents_per_owner", "7"},
             {"retention_days", "2"},
             {"publish_events", "false"},
             {"capability_rate_limits", "deploy=0.5, codegen=10"},
             {"process_allow", "/bin/true,interpreter:/usr/bin/python3"},
             {"argon2_memory_kib", "19456"}};
  const auto o = resolve_options(s);
  EXPECT_EQ(o.max_active_runs_per_owner, 3);
  EXPECT_EQ(o.max_agents_per_owner, 7);
  EXPECT_EQ(o.retention, std::chrono::hours(48));
  EXPECT_EQ(o.publish_events, false);
  EXPECT_EQ(o.capability_rate_limits.at("deploy").per_second, 0.5);
  EXPECT_EQ(o.capability_rate_limits.at("codegen").burst, 10);
  ASSERT_EQ(o.processes.allow.size(), 2u);
  EXPECT_TRUE(o.processes.allow[1].interpreter);
  EXPECT_EQ(o.argon2_memory_bytes, 19456u * 1024);
  EXPECT_EQ(o.blob_store, "file://./devcycle-blobs");

  ConfigSources bad;
  bad.environment = {{"DEVCYCLE_MAX_AGENTS_PER_OWNER", "many"}};
  EXPECT_DEVCYCLE_ERROR(resolve_options(bad), ErrorCode::kInvalidArgument, "max_agents_per_owner",
                        "DEVCYCLE_MAX_AGENTS_PER_OWNER", "must be an integer", "many");
  bad.environment = {{"DEVCYCLE_ARGON2_MEMORY_KIB", "1024"}};
  EXPECT_DEVCYCLE_ERROR(resolve_options(bad), ErrorCode::kInvalidArgument, "argon2_memory_kib",
                        "between 19456");
  bad.environment = {};
  bad.flags = {{"max_active_runs_per_user", "3"}};  // the old, server-only name
  EXPECT_DEVCYCLE_ERROR(resolve_options(bad), ErrorCode::kInvalidArgument,
                        "--max_active_runs_per_user", "unknown");
}

TEST_F(ConfigTest, ValidateOptionsChecksAStructBuiltInCode) {
  PlatformOptions o;
  EXPECT_NO_THROW(validate_options(o));
  o.cache = "memory:/";
  EXPECT_DEVCYCLE_ERROR(validate_options(o), ErrorCode::kInvalidArgument, "cache", "memory:/");
}

}  // namespace
}  // namespace devcycle
