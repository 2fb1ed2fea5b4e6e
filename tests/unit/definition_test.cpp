#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "devcycle/workflow/workflow.h"
#include "support/error_matchers.h"

namespace devcycle {
namespace {

using namespace std::chrono_literals;

const char* kGood = R"({
  "name": "build-and-ship",
  "description": "Builds, tests and deploys",
  "labels": {"team": "core"},
  "timeout": "1h",
  "input_schema": {"type": "object", "required": ["repo"]},
  "tasks": [
    {"id": "build", "capability": "codegen", "version": "^2.0",
     "input": {"repo": "{{ input.repo }}", "files": "{{ input.files }}"},
     "retry": {"max_attempts": 5, "initial": "2s", "multiplier": 3, "max": "1m", "jitter": 0.2},
     "timeouts": {"schedule_to_start": "10m", "start_to_close": "30m", "heartbeat": "30s"},
     "priority": 10},
    {"id": "test", "capability": "test", "depends_on": ["build"], "for_each": "tasks.build.output.suites",
     "input": {"suite": "{{ item }}", "n": "{{ index }}", "artifact": "{{ tasks.build.output.url }}"}},
    {"id": "deploy", "agent": "ops/deployer", "depends_on": ["test"],
     "when": "input.env == 'prod' && tasks.build.output.ok",
     "input": {"note": "deploying {{ input.repo }} built at {{ tasks['build'].output.url }}"}}
  ]
})";

std::vector<std::string> problems(std::string_view json) {
  auto [def, report] = validate_definition(json);
  std::vector<std::string> out;
  for (const auto& p : report.problems) out.push_back(p.path + ": " + p.message);
  return out;
}

::testing::AssertionResult has(const std::vector<std::string>& found, const std::string& wanted) {
  for (const auto& f : found) {
    if (f.find(wanted) != std::string::npos) return ::testing::AssertionSuccess();
  }
  std::string all;
  for (const auto& f : found) all += "\n  " + f;
  return ::testing::AssertionFailure() << "no problem contains \"" << wanted << "\"; found:" << all;
}

TEST(DefinitionTest, ParsesEveryField) {
  auto [def, report] = validate_definition(kGood);
  ASSERT_TRUE(def) << report.describe();
  EXPECT_TRUE(report.problems.empty());
  EXPECT_EQ(def->name, "build-and-ship");
  EXPECT_EQ(def->timeout, 1h);
  ASSERT_EQ(def->tasks.size(), 3u);
  const auto& build = def->tasks[0];
  EXPECT_EQ(build.capability, "codegen");
  EXPECT_EQ(build.version_range, "^2.0");
  EXPECT_EQ(build.retry.max_attempts, 5);
  EXPECT_EQ(build.retry.initial, 2s);
  EXPECT_EQ(build.retry.max, 1min);
  EXPECT_DOUBLE_EQ(build.retry.multiplier, 3);
  EXPECT_DOUBLE_EQ(build.retry.jitter, 0.2);
  EXPECT_EQ(build.timeouts.heartbeat, 30s);
  EXPECT_EQ(build.priority, 10);
  EXPECT_EQ(def->tasks[1].for_each, "tasks.build.output.suites");
  EXPECT_EQ(def->tasks[2].agent, "ops/deployer");
  EXPECT_EQ(def->tasks[2].depends_on, (std::vector<std::string>{"test"}));
}

TEST(DefinitionTest, CanonicalJsonRoundTrips) {
  auto [def, report] = validate_definition(kGood);
  ASSERT_TRUE(def);
  const auto text = def->to_json();
  auto [again, report2] = validate_definition(text);
  ASSERT_TRUE(again) << report2.describe();
  EXPECT_EQ(again->to_json(), text);
}

TEST(DefinitionTest, ReportsEveryStructuralProblemWithItsPath) {
  const auto found = problems(R"({
    "name": "Bad Name", "colour": "red", "timeout": "soon",
    "tasks": [
      {"id": "a", "capability": "x", "retry": {"max_attempts": 0, "initial": "1m", "max": "1s"}},
      {"capability": "y"},
      {"id": "c", "capability": "z", "agent": "o/n", "priority": 5000, "timeouts": {"heartbeat": "0s"}},
      {"id": "d"},
      {"id": "e", "agent": "nobody", "version": "^1"},
      "not a task"
    ]})");
  EXPECT_TRUE(has(found, "$.name: \"Bad Name\" must match"));
  EXPECT_TRUE(has(found, "$.colour: is not an allowed property"));
  EXPECT_TRUE(has(found, "$.timeout: \"soon\" is not a duration"));
  EXPECT_TRUE(has(found, "$.tasks[0].retry.max_attempts: must be at least 1"));
  EXPECT_TRUE(has(found, "$.tasks[0].retry: initial (1m) is longer than max (1s)"));
  EXPECT_TRUE(has(found, "$.tasks[1].id: is required"));
  EXPECT_TRUE(
      has(found, "$.tasks[2]: give one of capability, agent, workflow, sleep, until and signal"));
  EXPECT_TRUE(has(found, "$.tasks[2].priority: must be at most 1000"));
  EXPECT_TRUE(has(found, "$.tasks[2].timeouts.heartbeat: must be longer than 0s"));
  EXPECT_TRUE(has(found, "$.tasks[3]: needs a capability"));
  EXPECT_TRUE(has(found, "$.tasks[4].agent: \"nobody\" must be owner/name"));
  EXPECT_TRUE(has(found, "$.tasks[4].version: applies only to a capability"));
  EXPECT_TRUE(has(found, "$.tasks[5]: must be an object"));
}

TEST(DefinitionTest, ReportsDependencyProblemsAndNamesCycles) {
  const auto found = problems(R"({"name": "w", "tasks": [
    {"id": "a", "capability": "x", "depends_on": ["c"]},
    {"id": "b", "capability": "x", "depends_on": ["a", "a", "ghost", "b"]},
    {"id": "c", "capability": "x", "depends_on": ["b"]},
    {"id": "a", "capability": "x"}
  ]})");
  EXPECT_TRUE(has(found, "$.tasks[1].depends_on[1]: \"a\" is listed twice"));
  EXPECT_TRUE(has(found, "$.tasks[1].depends_on[2]: unknown task \"ghost\""));
  EXPECT_TRUE(has(found, "$.tasks[1].depends_on[3]: a task cannot depend on itself"));
  EXPECT_TRUE(has(found, "$.tasks[3].id: duplicate id \"a\" (first used at $.tasks[0])"));
  EXPECT_TRUE(has(found, "cycle: a -> c -> b -> a"));
}

TEST(DefinitionTest, ChecksTemplatesConditionsAndWhatTheyRead) {
  const auto found = problems(R"({"name": "w", "tasks": [
    {"id": "a", "capability": "x", "input": {"v": "{{ input. }}", "w": "{{ tasks.b.output }}",
                                             "deep": [{"x": "{{ secrets }}", "y": "{{ secrets.token }}"}],
                                             "z": "{{ vault.token }}"}},
    {"id": "b", "capability": "x", "depends_on": ["a"], "when": "input.x = 1",
     "input": {"i": "{{ item }}", "s": "{{ tasks.a.status }}", "all": "{{ tasks }}", "g": "{{ tasks.zz.output }}"}},
    {"id": "c", "capability": "x", "for_each": "item", "when": "input.flag ==",
     "input": {"ok": "{{ item }} {{ index }}"}}
  ]})");
  EXPECT_TRUE(has(found, "$.tasks[0].input.v: at character 11: expected a field name"));
  EXPECT_TRUE(
      has(found, "$.tasks[0].input.w: references task \"b\", which is not upstream of \"a\""));
  // Secrets: secrets.NAME in an input (deep[0].y is fine), nothing else.
  EXPECT_TRUE(has(found, "$.tasks[0].input.deep[0].x: read a secret as secrets.NAME"));
  EXPECT_FALSE(has(found, "$.tasks[0].input.deep[0].y"));
  EXPECT_TRUE(has(found, "$.tasks[0].input.z: \"vault\" is not something a definition can read"));
  EXPECT_TRUE(has(found, "$.tasks[1].when: at character 9: unexpected character '='"));
  EXPECT_TRUE(has(found, "$.tasks[1].input.i: \"item\" exists only in tasks with for_each"));
  EXPECT_TRUE(has(found, "$.tasks[1].input.s: tasks.a.status does not exist"));
  EXPECT_TRUE(has(found, "$.tasks[1].input.all: read tasks.<id>.output"));
  EXPECT_TRUE(has(found, "$.tasks[1].input.g: references unknown task \"zz\""));
  EXPECT_TRUE(has(found, "$.tasks[2].for_each: \"item\" exists only in tasks with for_each"));
  EXPECT_TRUE(has(found, "$.tasks[2].when: at character 14: expected a value"));
  EXPECT_FALSE(has(found, "$.tasks[2].input.ok"));
  EXPECT_FALSE(has(found, "expression:"));  // each syntax error is reported once, at its path
}

TEST(DefinitionTest, TransitiveUpstreamOutputsMayBeRead) {
  const auto found = problems(R"({"name": "w", "tasks": [
    {"id": "a", "capability": "x"},
    {"id": "b", "capability": "x", "depends_on": ["a"]},
    {"id": "c", "capability": "x", "depends_on": ["b"], "input": {"from_a": "{{ tasks.a.output.v }}"}}
  ]})");
  EXPECT_TRUE(found.empty()) << ::testing::PrintToString(found);
}

TEST(DefinitionTest, NotJsonAndBadSchemasAreReported) {
  EXPECT_TRUE(has(problems("{\"name\": "), "$: not valid JSON"));
  EXPECT_TRUE(has(problems("[]"), "$: must be an object"));
  EXPECT_TRUE(has(
      problems(
          R"({"name": "w", "input_schema": {"format": "x"}, "tasks": [{"id": "a", "capability": "x"}]})"),
      "$.input_schema: $.format: unsupported keyword"));
  EXPECT_TRUE(
      has(problems(R"({"name": "w", "tasks": []})"), "$.tasks: must have at least 1 items"));
}

TEST(DefinitionTest, BuilderMakesTheSameDefinitionAsJson) {
  const auto built =
      WorkflowBuilder("build-and-ship")
          .description("Builds, tests and deploys")
          .label("team", "core")
          .timeout(1h)
          .input_schema(R"({"type": "object", "required": ["repo"]})")
          .task("build")
          .capability("codegen", "^2.0")
          .input(R"({"repo": "{{ input.repo }}", "files": "{{ input.files }}"})")
          .retry({5, 2s, 3, 1min, 0.2})
          .timeouts({10min, 30min, 30s})
          .priority(10)
          .done()
          .task("test")
          .capability("test")
          .depends_on({"build"})
          .for_each("tasks.build.output.suites")
          .input(
              R"({"suite": "{{ item }}", "n": "{{ index }}", "artifact": "{{ tasks.build.output.url }}"})")
          .done()
          .task("deploy")
          .agent("ops/deployer")
          .depends_on({"test"})
          .when("input.env == 'prod' && tasks.build.output.ok")
          .input(
              R"({"note": "deploying {{ input.repo }} built at {{ tasks['build'].output.url }}"})")
          .done()
          .build();
  auto [from_json, report] = validate_definition(kGood);
  ASSERT_TRUE(from_json);
  EXPECT_EQ(built.to_json(), from_json->to_json());
  EXPECT_DEVCYCLE_ERROR(
      WorkflowBuilder("w").task("a").capability("x").depends_on({"nope"}).done().build(),
      ErrorCode::kInvalidArgument, "workflow w", "unknown task \"nope\"");
  EXPECT_DEVCYCLE_ERROR(
      WorkflowBuilder("w").task("a").capability("x").input("{broken").done().build(),
      ErrorCode::kInvalidArgument, "not valid JSON");
}

TEST(DefinitionTest, SchemaIsTheDocumentedOne) {
  const auto schema = nlohmann::json::parse(definition_schema());
  EXPECT_EQ(schema["required"], nlohmann::json::array({"name", "tasks"}));
  EXPECT_TRUE(schema["properties"]["tasks"]["items"]["properties"].contains("for_each"));
}

}  // namespace
}  // namespace devcycle

namespace devcycle {
namespace {

TEST(DefinitionDocsTest, DocsShowTheEnforcedSchema) {
  std::ifstream in(DEVCYCLE_DOCS_DIR "/workflows.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const auto text = ss.str();
  const auto marker = text.find("<!-- definition-schema -->");
  ASSERT_NE(marker, std::string::npos);
  const auto start = text.find("```json\n", marker) + 8;
  const auto end = text.find("```", start);
  EXPECT_EQ(nlohmann::json::parse(text.substr(start, end - start)),
            nlohmann::json::parse(definition_schema()));
}

}  // namespace
}  // namespace devcycle
