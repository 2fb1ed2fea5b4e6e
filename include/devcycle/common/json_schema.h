// JSON Schema validation for agent configuration (and, later, workflow
// inputs), over a documented subset of draft 2020-12:
//   type (string or list), enum, const, properties, required,
//   additionalProperties (bool or schema), items, minItems, maxItems,
//   minimum, maximum, exclusiveMinimum, exclusiveMaximum, minLength,
//   maxLength (in code points), pattern (RE2 syntax: no backreferences or
//   lookaround, matched in time linear in the value; searched, not anchored;
//   values over 64 KiB are not matched), and the annotations title,
//   description, default, examples, $schema, $id, $comment.
// Any other keyword is refused when the schema is parsed, so that nobody
// believes a keyword (format, $ref, oneOf) is enforced when it is not.
//
// JSON crosses this API as text. Thread-safety: a JsonSchema is immutable
// and may be shared between threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace devcycle {

struct SchemaViolation {
  std::string path;     // JSON path of the offending value: $, $.limits.cpu, $.steps[2]
  std::string message;  // what is wrong, e.g. "must be at most 8"
};

class JsonSchema {
 public:
  // The schema that accepts everything ({}).
  JsonSchema();
  // Parses and checks `schema_json`. Throws Error{kInvalidArgument}
  // "<field>: ..." naming the JSON path of the first bad or unsupported part.
  static JsonSchema parse(std::string_view schema_json, std::string_view field = "schema");

  // Every violation of `document_json` (empty: valid). Text that is not JSON
  // is one violation at "$".
  std::vector<SchemaViolation> validate(std::string_view document_json) const;

  // The schema as compact JSON text.
  std::string to_string() const;

  struct Impl;
  const Impl& impl() const noexcept { return *impl_; }

 private:
  std::shared_ptr<const Impl> impl_;
};

// "$.a: must be a string; $.b: is required" — the violations joined for an
// error message.
std::string describe(const std::vector<SchemaViolation>& violations);

}  // namespace devcycle
