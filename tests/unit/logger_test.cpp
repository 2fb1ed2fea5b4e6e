#include "devcycle/observability/logger.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "support/error_matchers.h"

namespace devcycle {
namespace {

using nlohmann::json;

class LoggerTest : public ::testing::Test {
 protected:
  std::shared_ptr<MemoryLogSink> sink_ = std::make_shared<MemoryLogSink>();
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(1'764'119'470'123'456);
  Logger logger_{"devcycle", sink_, LogLevel::kDebug, clock_};

  json line(std::size_t i) { return json::parse(sink_->lines().at(i)); }
};

TEST_F(LoggerTest, WritesEveryStandardFieldInOrder) {
  logger_.with_request("req-1", "4bf92f3577b34da6a3ce929d0e0e4736").info("run started");
  const auto text = sink_->lines().at(0);
  EXPECT_EQ(
      text,
      R"({"ts":"2025-11-26T01:11:10.123456Z","level":"info","msg":"run started",)"
      R"("logger":"devcycle","request_id":"req-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"})");
}

TEST_F(LoggerTest, OmitsIdsThatAreNotSet) {
  logger_.warn("no request");
  const auto j = line(0);
  EXPECT_EQ(j["level"], "warn");
  EXPECT_FALSE(j.contains("request_id"));
  EXPECT_FALSE(j.contains("trace_id"));
}

TEST_F(LoggerTest, FieldsKeepTheirTypes) {
  logger_.named("db").error("commit failed", {{"attempt", 3},
                                              {"ratio", 0.5},
                                              {"retryable", true},
                                              {"url", "sqlite://x"},
                                              {"big", std::int64_t{1} << 40}});
  const auto j = line(0);
  EXPECT_EQ(j["logger"], "devcycle.db");
  EXPECT_EQ(j["level"], "error");
  EXPECT_EQ(j["attempt"], 3);
  EXPECT_EQ(j["ratio"], 0.5);
  EXPECT_EQ(j["retryable"], true);
  EXPECT_EQ(j["url"], "sqlite://x");
  EXPECT_EQ(j["big"], std::int64_t{1} << 40);
}

TEST_F(LoggerTest, FieldsCannotOverwriteStandardOnes) {
  logger_.info("real", {{"msg", "fake"}, {"level", "error"}, {"ts", 1}});
  const auto j = line(0);
  EXPECT_EQ(j["msg"], "real");
  EXPECT_EQ(j["msg_"], "fake");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["level_"], "error");
  EXPECT_EQ(j["ts_"], 1);
}

TEST_F(LoggerTest, EscapesAndRepairsText) {
  logger_.info("quote \" newline \n tab \t bad \xff utf8");
  const auto text = sink_->lines().at(0);
  EXPECT_EQ(text.find('\n'), std::string::npos);
  const auto j = json::parse(text);
  EXPECT_EQ(j["msg"].get<std::string>().substr(0, 23), "quote \" newline \n tab \t");
}

TEST_F(LoggerTest, DropsRecordsBelowTheLevel) {
  logger_.trace("hidden");
  logger_.debug("shown");
  ASSERT_EQ(sink_->records().size(), 1u);
  EXPECT_EQ(sink_->records()[0].msg, "shown");
  EXPECT_FALSE(logger_.enabled(LogLevel::kTrace));
}

TEST_F(LoggerTest, TimestampsComeFromTheInjectedClock) {
  logger_.info("a");
  clock_->advance(std::chrono::seconds(1));
  logger_.info("b");
  EXPECT_EQ(line(1)["ts"], "2025-11-26T01:11:11.123456Z");
}

TEST_F(LoggerTest, ParsesLevels) {
  EXPECT_EQ(parse_log_level("trace"), LogLevel::kTrace);
  EXPECT_EQ(parse_log_level("error"), LogLevel::kError);
  EXPECT_DEVCYCLE_ERROR(parse_log_level("INFO", "--log-level"), ErrorCode::kInvalidArgument,
                        "--log-level", "\"INFO\"");
}

TEST(JsonLinesSinkTest, WritesOneWholeLinePerRecord) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  Logger logger("svc", std::make_shared<JsonLinesSink>(f), LogLevel::kInfo);
  logger.info("one");
  logger.info("two", {{"n", 2}});
  std::rewind(f);
  char buf[512];
  std::vector<json> lines;
  while (std::fgets(buf, sizeof buf, f)) lines.push_back(json::parse(buf));
  std::fclose(f);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["msg"], "one");
  EXPECT_EQ(lines[1]["n"], 2);
  EXPECT_EQ(lines[1]["logger"], "svc");
}

TEST(LoggerCtorTest, RefusesNullParts) {
  EXPECT_DEVCYCLE_ERROR(Logger("x", nullptr), ErrorCode::kInvalidArgument, "sink");
}

}  // namespace
}  // namespace devcycle
