#include "devcycle/workflow/expression.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "support/error_matchers.h"

namespace devcycle {
namespace {

const char* kContext = R"({
  "input": {"env": "prod", "count": 3, "ratio": 0.5, "files": ["a.c", "b.c"], "flags": {"fast": true},
            "empty": [], "odd key": "yes", "nothing": null},
  "tasks": {"build": {"output": {"url": "http://x/1", "ok": true, "sizes": [10, 20]}}},
  "item": "a.c", "index": 0
})";

std::string eval(std::string_view e) { return Expression::parse(e).evaluate(kContext); }
bool cond(std::string_view e) { return Expression::parse(e).evaluate_condition(kContext); }

TEST(ExpressionTest, LiteralsAndFieldAccess) {
  EXPECT_EQ(eval("null"), "null");
  EXPECT_EQ(eval("true"), "true");
  EXPECT_EQ(eval("-12.5e1"), "-125.0");
  EXPECT_EQ(eval("'it\\'s'"), "\"it's\"");
  EXPECT_EQ(eval("\"tab\\there\""), "\"tab\\there\"");
  EXPECT_EQ(eval("['a', 1, [true]]"), "[\"a\",1,[true]]");
  EXPECT_EQ(eval("input.env"), "\"prod\"");
  EXPECT_EQ(eval("input.files[1]"), "\"b.c\"");
  EXPECT_EQ(eval("input[\"odd key\"]"), "\"yes\"");
  EXPECT_EQ(eval("tasks.build.output.sizes[index]"), "10");
  EXPECT_EQ(eval("input.missing.deeper"), "null");
  EXPECT_EQ(eval("input.files[7]"), "null");
  EXPECT_EQ(eval("input.files['x']"), "null");
  EXPECT_EQ(eval("nobody"), "null");
}

TEST(ExpressionTest, ComparisonsAndLogic) {
  EXPECT_TRUE(cond("input.env == 'prod'"));
  EXPECT_TRUE(cond("input.count == 3.0"));
  EXPECT_TRUE(cond("input.count > 2 && input.ratio <= 0.5"));
  EXPECT_TRUE(cond("input.env != 'dev' and not input.nothing"));
  EXPECT_TRUE(cond("input.count < 1 || tasks.build.output.ok"));
  EXPECT_TRUE(cond("'b' < 'c'"));
  EXPECT_TRUE(cond("item in input.files"));
  EXPECT_TRUE(cond("'fast' in input.flags"));
  EXPECT_TRUE(cond("'ro' in input.env"));
  EXPECT_FALSE(cond("'x' in input.nothing"));
  EXPECT_TRUE(cond("input.files == ['a.c', 'b.c']"));
  EXPECT_TRUE(cond("!(input.count > 5)"));
  EXPECT_FALSE(cond("input.empty"));
  EXPECT_FALSE(cond("''"));
  EXPECT_FALSE(cond("0"));
  EXPECT_TRUE(cond("input.files"));
  EXPECT_EQ(eval("input.count > 1 && 'yes'"), "true");  // && yields a boolean
}

TEST(ExpressionTest, ShortCircuitSkipsErrors) {
  EXPECT_FALSE(cond("false && (input.files < 3)"));
  EXPECT_TRUE(cond("true || (input.files < 3)"));
}

TEST(ExpressionTest, TypeErrorsNameTheField) {
  EXPECT_DEVCYCLE_ERROR(Expression::parse("input.files < 3", "tasks[1].when").evaluate(kContext),
                        ErrorCode::kInvalidArgument, "tasks[1].when",
                        "cannot order a list and a number");
  EXPECT_DEVCYCLE_ERROR(eval("1 in 2"), ErrorCode::kInvalidArgument, "'in' needs");
  EXPECT_DEVCYCLE_ERROR(Expression::parse("true").evaluate("{oops"), ErrorCode::kInvalidArgument,
                        "not valid JSON");
}

TEST(ExpressionTest, SyntaxErrorsSayWhere) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "at character 1: expected a value"},
      {"input.", "at character 7: expected a field name"},
      {"a = 1", "at character 3: unexpected character '=' (use == to compare)"},
      {"(a", "expected ')'"},
      {"a[1", "expected ']'"},
      {"'open", "unterminated string"},
      {"a == b == c", "do not chain"},
      {"a b", "at character 3: unexpected \"b\""},
      {"[1 2]", "expected ',' or ']'"},
      {"1.2.3", "is not a number"},
      {"a $ b", "unexpected character '$'"},
      {"'\\q'", "unknown escape"},
      {"a & b", "unexpected character '&'"},
  };
  for (const auto& [text, message] : cases) {
    EXPECT_DEVCYCLE_ERROR(Expression::parse(text, "when"), ErrorCode::kInvalidArgument,
                          "when: ", message);
  }
  EXPECT_DEVCYCLE_ERROR(Expression::parse(std::string(100, '(') + "1" + std::string(100, ')')),
                        ErrorCode::kInvalidArgument, "nested deeper than 64");
  EXPECT_DEVCYCLE_ERROR(Expression::parse(std::string(5000, '1')), ErrorCode::kInvalidArgument,
                        "longer than 4096");
}

TEST(ExpressionTest, ReferencesAreTheConstantPrefixes) {
  const auto refs =
      Expression::parse("input.a.b == tasks['build'].output[input.i] || item && x[0].y")
          .references();
  const std::vector<std::vector<std::string>> expected = {
      {"input", "a", "b"}, {"input", "i"}, {"tasks", "build", "output"}, {"item"}, {"x"}};
  EXPECT_EQ(refs.size(), expected.size());
  for (const auto& e : expected) {
    EXPECT_NE(std::find(refs.begin(), refs.end(), e), refs.end()) << ::testing::PrintToString(e);
  }
}

TEST(TemplateTest, WholeExpressionKeepsItsType) {
  EXPECT_EQ(Template::parse("{{ input.files }}").render(kContext), "[\"a.c\",\"b.c\"]");
  EXPECT_EQ(Template::parse("  {{input.count}}").render(kContext), "\"  3\"");
  EXPECT_EQ(Template::parse("{{ input.count }}").render(kContext), "3");
}

TEST(TemplateTest, MixedTextInterpolates) {
  EXPECT_EQ(
      Template::parse("deploy {{ input.env }} from {{ tasks.build.output.url }}!").render(kContext),
      "\"deploy prod from http://x/1!\"");
  EXPECT_EQ(Template::parse("n={{input.count}} list={{input.files}} none={{input.nothing}}")
                .render(kContext),
            "\"n=3 list=[\\\"a.c\\\",\\\"b.c\\\"] none=\"");
  EXPECT_EQ(Template::parse("literal {{ '{{' }} braces }}").render(kContext),
            "\"literal {{ braces }}\"");
  EXPECT_EQ(Template::parse("{{ '}}' }}").render(kContext), "\"}}\"");
  EXPECT_EQ(Template::parse("no templates here").render(kContext), "\"no templates here\"");
  EXPECT_TRUE(Template::parse("plain").is_constant());
}

TEST(TemplateTest, ErrorsPointIntoTheWholeString) {
  EXPECT_DEVCYCLE_ERROR(Template::parse("abc {{ input. }}", "tasks[0].input.x"),
                        ErrorCode::kInvalidArgument, "tasks[0].input.x: at character 15");
  EXPECT_DEVCYCLE_ERROR(Template::parse("abc {{ input", "t"), ErrorCode::kInvalidArgument,
                        "at character 5: unclosed {{");
}

}  // namespace
}  // namespace devcycle
