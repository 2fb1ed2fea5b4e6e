// The expression language of workflow definitions: `when` conditions,
// `for_each` lists and the {{ ... }} parts of input templates.
//
// Deliberately small and safe: literals (null, true, false, numbers,
// 'strings', "strings", [lists]), field access (input.files[0],
// tasks.build.output["odd key"]), comparisons (== != < <= > >=), membership
// (in), and boolean logic (&& || ! or and not), with parentheses. There is no
// arithmetic, no function call, no assignment, no loop and no way to reach
// the host: evaluation is a pure function of the context, bounded by the
// size of the expression.
//
// Semantics: a missing field is null; == compares JSON values (1 == 1.0);
// ordering compares two numbers or two strings, anything else is an error;
// `a in b` tests list membership, substring, or object key; && and || short-
// circuit and yield booleans; truthiness: null, false, 0, "", [] and {} are
// false. See docs/workflows.md.
//
// JSON crosses this API as text. Thread-safety: parsed expressions and
// templates are immutable and may be shared between threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace devcycle {

class Expression {
 public:
  // Throws Error{kInvalidArgument} "<field>: at character N: <reason>" for
  // malformed text, text over 4096 bytes or nesting deeper than 64.
  static Expression parse(std::string_view text, std::string_view field = "expression");

  // Evaluates against `context_json` (an object whose keys are the roots,
  // e.g. {"input": {...}, "tasks": {...}}) and returns the value as JSON
  // text. Throws Error{kInvalidArgument} "<field>: <reason>" when a value has
  // the wrong type for an operator.
  std::string evaluate(std::string_view context_json) const;
  // evaluate() and then truthiness.
  bool evaluate_condition(std::string_view context_json) const;

  // Every field path the expression reads, as its constant prefix:
  // "input.files", "tasks.build.output". Used to validate definitions.
  std::vector<std::vector<std::string>> references() const;

  const std::string& text() const noexcept;

  struct Node;

 private:
  std::shared_ptr<const Node> root_;
  std::string text_;
  std::string field_;
  friend struct ExpressionAccess;
};

// A string with {{ expression }} parts. A string that is exactly one
// {{ expression }} renders to that expression's value of any type (a list
// stays a list); otherwise the parts are rendered into the text (strings as
// they are, other values as compact JSON). Write {{ '{{' }} for a literal {{.
class Template {
 public:
  static Template parse(std::string_view text, std::string_view field = "template");
  // Renders against `context_json`; returns JSON text.
  std::string render(std::string_view context_json) const;
  std::vector<std::vector<std::string>> references() const;
  bool is_constant() const noexcept { return parts_.empty(); }

  struct Part;

 private:
  std::string text_;
  std::string field_;
  std::vector<std::shared_ptr<const Part>> parts_;  // empty: no {{ }}
  bool whole_ = false;                              // the text is exactly one {{ expression }}
  friend struct ExpressionAccess;
};

}  // namespace devcycle
