#include "devcycle/common/json_schema.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "support/error_matchers.h"

namespace devcycle {
namespace {

const char* kSchema = R"({
  "type": "object",
  "required": ["model", "limits"],
  "additionalProperties": false,
  "properties": {
    "model": {"type": "string", "enum": ["small", "large"]},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "retries": {"type": "integer", "exclusiveMinimum": -1, "exclusiveMaximum": 10},
    "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
    "limits": {"type": "object", "properties": {"cpu": {"type": "integer", "maximum": 8}}},
    "mode": {"const": "fast"},
    "odd key": {"type": ["string", "null"]}
  }
})";

std::vector<std::string> paths(const std::vector<SchemaViolation>& vs) {
  std::vector<std::string> out;
  for (const auto& v : vs) out.push_back(v.path + ": " + v.message);
  return out;
}

TEST(JsonSchemaTest, AcceptsAValidDocument) {
  const auto schema = JsonSchema::parse(kSchema);
  EXPECT_TRUE(schema
                  .validate(R"({"model": "small", "limits": {"cpu": 4}, "temperature": 0.5,
      "retries": 3.0, "name": "ab", "tags": ["x"], "mode": "fast", "odd key": null})")
                  .empty());
}

TEST(JsonSchemaTest, ReportsEveryViolationWithItsPath) {
  const auto schema = JsonSchema::parse(kSchema);
  const auto found = paths(schema.validate(R"({
      "model": "medium", "temperature": 3, "retries": 10, "name": "ABCDEFG",
      "tags": [], "limits": {"cpu": 9.5}, "mode": "slow", "extra": 1, "odd key": 5})"));
  const std::vector<std::string> expected = {
      "$.model: must be one of [\"small\",\"large\"]",
      "$.extra: is not an allowed property",
      "$.limits.cpu: must be an integer",
      "$.mode: must be \"fast\"",
      "$.name: must be at most 5 characters long",
      "$.name: must match the pattern \"^[a-z]+$\"",
      "$[\"odd key\"]: must be a string or null",
      "$.retries: must be less than 10",
      "$.tags: must have at least 1 items",
      "$.temperature: must be at most 2",
  };
  EXPECT_EQ(found.size(), expected.size()) << describe(schema.validate("{}"));
  for (const auto& e : expected) {
    EXPECT_NE(std::find(found.begin(), found.end(), e), found.end()) << "missing: " << e;
  }
}

TEST(JsonSchemaTest, RequiredTypeAndArrayItems) {
  const auto schema = JsonSchema::parse(kSchema);
  EXPECT_EQ(paths(schema.validate("{}")),
            (std::vector<std::string>{"$.model: is required", "$.limits: is required"}));
  EXPECT_EQ(paths(schema.validate("[]")), (std::vector<std::string>{"$: must be an object"}));
  const auto items =
      paths(schema.validate(R"({"model": "small", "limits": {}, "tags": ["a", 2]})"));
  EXPECT_EQ(items, (std::vector<std::string>{"$.tags[1]: must be a string"}));
}

TEST(JsonSchemaTest, LengthsCountCharactersNotBytes) {
  const auto schema = JsonSchema::parse(R"({"type": "string", "maxLength": 3})");
  EXPECT_TRUE(schema.validate("\"äöü\"").empty());
  EXPECT_FALSE(schema.validate("\"äöüß\"").empty());
}

TEST(JsonSchemaTest, BadDocumentsAreOneViolation) {
  const auto schema = JsonSchema::parse("{}");
  auto v = schema.validate("{not json");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].path, "$");
  EXPECT_NE(v[0].message.find("not valid JSON"), std::string::npos);
  v = schema.validate("\"\xff\"");
  ASSERT_EQ(v.size(), 1u);
  v = schema.validate(std::string(100, '[') + std::string(100, ']'));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].message.find("nested deeper"), std::string::npos);
}

TEST(JsonSchemaTest, RefusesUnsupportedOrMalformedSchemasNamingThePath) {
  EXPECT_DEVCYCLE_ERROR(
      JsonSchema::parse(R"({"properties": {"a": {"format": "email"}}})", "config_schema"),
      ErrorCode::kInvalidArgument, "config_schema", "$.properties.a.format",
      "unsupported keyword \"format\"");
  EXPECT_DEVCYCLE_ERROR(JsonSchema::parse(R"({"type": "text"})"), ErrorCode::kInvalidArgument,
                        "$.type");
  EXPECT_DEVCYCLE_ERROR(JsonSchema::parse(R"({"pattern": "("})"), ErrorCode::kInvalidArgument,
                        "$.pattern", "regular expression");
  EXPECT_DEVCYCLE_ERROR(JsonSchema::parse(R"({"minLength": -1})"), ErrorCode::kInvalidArgument,
                        "non-negative");
  EXPECT_DEVCYCLE_ERROR(JsonSchema::parse(R"({"$ref": "#/x"})"), ErrorCode::kInvalidArgument,
                        "$ref");
  EXPECT_DEVCYCLE_ERROR(JsonSchema::parse("[1]"), ErrorCode::kInvalidArgument,
                        "object or a boolean");
  EXPECT_DEVCYCLE_ERROR(JsonSchema::parse("{"), ErrorCode::kInvalidArgument, "not valid JSON");
}

TEST(JsonSchemaTest, BooleanSchemasAndRoundTrip) {
  EXPECT_TRUE(JsonSchema::parse("true").validate("42").empty());
  EXPECT_EQ(JsonSchema::parse("false").validate("42").size(), 1u);
  EXPECT_TRUE(JsonSchema().validate(R"({"any": ["thing"]})").empty());
  EXPECT_EQ(JsonSchema::parse(R"({ "type" : "string" })").to_string(), R"({"type":"string"})");
}

TEST(JsonSchemaTest, InputsOverSixtyFourKiBAreNotMatchedAgainstPatterns) {
  const auto schema = JsonSchema::parse(R"({"type": "string", "pattern": "^(a|b)*$"})");
  EXPECT_TRUE(schema.validate("\"" + std::string(10000, 'a') + "\"").empty());
  const auto v = schema.validate("\"" + std::string(70000, 'a') + "\"");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].message.find("longer than 65536"), std::string::npos);
}

// Issue #20: with std::regex, ^(a*)*$ against 4,000 a's and a b backtracked
// for minutes (or overflowed the stack). RE2 answers in linear time; no
// timing is asserted here (the suite runs on a shared machine), but this
// test does not finish with a backtracking matcher.
TEST(JsonSchemaTest, CatastrophicPatternsAnswerInLinearTime) {
  const auto schema = JsonSchema::parse(R"({"type": "string", "pattern": "^(a*)*$"})");
  EXPECT_EQ(schema.validate("\"" + std::string(4000, 'a') + "b\"").size(), 1u);
  EXPECT_TRUE(schema.validate("\"" + std::string(4000, 'a') + "\"").empty());
  const auto nested = JsonSchema::parse(R"({"type": "string", "pattern": "^((a+)+)+$"})");
  EXPECT_EQ(nested.validate("\"" + std::string(60000, 'a') + "!\"").size(), 1u);
}

TEST(JsonSchemaTest, PatternsThatNeedBacktrackingAreRefusedWithTheReason) {
  EXPECT_DEVCYCLE_ERROR(JsonSchema::parse(R"({"pattern": "(a)\\1"})"), ErrorCode::kInvalidArgument,
                        "$.pattern", "RE2");
  EXPECT_DEVCYCLE_ERROR(JsonSchema::parse(R"j({"pattern": "a(?=b)"})j"),
                        ErrorCode::kInvalidArgument, "$.pattern", "RE2");
}

}  // namespace
}  // namespace devcycle
