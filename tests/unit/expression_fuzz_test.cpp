// A seeded randomized test of the expression parser and evaluator (the suite's
// stand-in for libFuzzer, which needs clang): inputs are the corpus in
// tests/fuzz/expression_corpus, random mutations of it, and random token
// soup. Parsing and evaluating must either succeed or throw devcycle::Error
// with kInvalidArgument — never crash, hang or throw anything else. ASan and
// UBSan watch the same run in the asan preset.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "devcycle/common/error.h"
#include "devcycle/workflow/expression.h"

namespace devcycle {
namespace {

const char* kContext = R"({"input": {"a": 1, "b": "x", "l": [1, 2, {"k": null}], "o": {"p": true}},
  "tasks": {"t": {"output": {"v": [1.5, "s"]}}}, "item": 3})";

std::vector<std::string> corpus() {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(DEVCYCLE_EXPRESSION_CORPUS)) {
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    out.push_back(ss.str());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void exercise(const std::string& text) {
  try {
    const auto e = Expression::parse(text);
    try {
      e.evaluate(kContext);
      e.references();
    } catch (const Error& err) {
      ASSERT_EQ(err.code(), ErrorCode::kInvalidArgument) << text;
    }
  } catch (const Error& err) {
    ASSERT_EQ(err.code(), ErrorCode::kInvalidArgument) << text;
  }
  try {
    Template::parse(text).render(kContext);
  } catch (const Error& err) {
    ASSERT_EQ(err.code(), ErrorCode::kInvalidArgument) << text;
  }
}

TEST(ExpressionFuzzTest, CorpusParsesAndEvaluates) {
  const auto seeds = corpus();
  ASSERT_GE(seeds.size(), 10u);
  for (const auto& s : seeds) {
    EXPECT_NO_THROW(Expression::parse(s).evaluate(kContext)) << s;
  }
}

TEST(ExpressionFuzzTest, MutationsNeverCrash) {
  const auto seeds = corpus();
  std::mt19937_64 rng(20261126);
  const std::string alphabet = "abcxyz_.[]()'\"\\=!<>&|, 0123456789-+eE{}\n\t\xff\x80";
  for (int round = 0; round < 20000; ++round) {
    std::string s = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 6);
    for (int e = 0; e < edits; ++e) {
      const auto pos = s.empty() ? 0 : rng() % (s.size() + 1);
      switch (rng() % 4) {
        case 0:
          s.insert(s.begin() + static_cast<std::ptrdiff_t>(pos), alphabet[rng() % alphabet.size()]);
          break;
        case 1:
          if (!s.empty() && pos < s.size()) s.erase(pos, 1 + rng() % 3);
          break;
        case 2:
          if (!s.empty() && pos < s.size()) s[pos] = alphabet[rng() % alphabet.size()];
          break;
        default:
          s.insert(pos, seeds[rng() % seeds.size()].substr(0, 1 + rng() % 8));
          break;
      }
    }
    exercise(s);
  }
}

TEST(ExpressionFuzzTest, TokenSoupNeverCrashes) {
  static const char* tokens[] = {"input", ".",     "a",    "[",     "]",    "(",    ")",
                                 "==",    "!=",    "<",    ">=",    "&&",   "||",   "!",
                                 "not",   "in",    "'s'",  "1",     "-2.5", "null", "true",
                                 ",",     "tasks", "item", "[1,2]", "{{",   "}}"};
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20000; ++round) {
    std::string s;
    const int n = 1 + static_cast<int>(rng() % 24);
    for (int i = 0; i < n; ++i)
      s += std::string(tokens[rng() % std::size(tokens)]) + (rng() % 2 ? " " : "");
    exercise(s);
  }
  exercise(std::string(5000, '['));
  exercise(std::string(60, '!') + "1");
  exercise(std::string(3000, '('));
}

}  // namespace
}  // namespace devcycle
