#include <gtest/gtest.h>

#include "devcycle/workflow/executor.h"

namespace devcycle {
namespace {

using Kind = ExecutorSpec::Kind;

TEST(ExecutorSpecTest, EachKindKeepsWhatFollowsItsPrefix) {
  EXPECT_EQ(ExecutorSpec::parse("inproc:build").kind, Kind::kInproc);
  EXPECT_EQ(ExecutorSpec::parse("inproc:build").target, "build");
  EXPECT_EQ(ExecutorSpec::parse("process:/usr/bin/make -j2").kind, Kind::kProcess);
  EXPECT_EQ(ExecutorSpec::parse("process:/usr/bin/make -j2").target, "/usr/bin/make -j2");
  EXPECT_EQ(ExecutorSpec::parse("bus:devcycle.tasks.review").kind, Kind::kBus);
  EXPECT_EQ(ExecutorSpec::parse("bus:devcycle.tasks.review").target, "devcycle.tasks.review");
  EXPECT_EQ(ExecutorSpec::parse("bus:").target, "");  // the default topic
  EXPECT_EQ(ExecutorSpec::parse("remote").kind, Kind::kRemote);
  EXPECT_EQ(ExecutorSpec::parse("https://example.test/v1").kind, Kind::kHttp);
  EXPECT_EQ(ExecutorSpec::parse("https://example.test/v1").target, "https://example.test/v1");
}

TEST(ExecutorSpecTest, AnythingElseIsUnknownAndRunsNoCode) {
  for (const auto* text : {"", "remote:x", "Remote", "inproc", "docker:alpine", " process:x"}) {
    const auto spec = ExecutorSpec::parse(text);
    EXPECT_EQ(spec.kind, Kind::kUnknown) << text;
    EXPECT_FALSE(spec.runs_code()) << text;
  }
  EXPECT_EQ(to_string(Kind::kUnknown), "unknown");
}

TEST(ExecutorSpecTest, ProcessesAndEndpointsRunCode) {
  EXPECT_TRUE(ExecutorSpec::parse("process:/bin/true").runs_code());
  EXPECT_TRUE(ExecutorSpec::parse("http://127.0.0.1:9/").runs_code());
  EXPECT_FALSE(ExecutorSpec::parse("inproc:f").runs_code());
  EXPECT_FALSE(ExecutorSpec::parse("bus:t").runs_code());
  EXPECT_FALSE(ExecutorSpec::parse("remote").runs_code());
}

}  // namespace
}  // namespace devcycle
