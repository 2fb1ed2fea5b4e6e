// Helpers for SQL rows shared by the stores: multi-row statements (one
// prepared statement for up to 64 rows instead of one statement per row),
// PostgreSQL array parameters (one statement text whatever the number of
// rows), and the ""-as-NULL convention of optional text columns. Internal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/store/value.h"

namespace devcycle::internal {

// The statements `head` + n copies of `row` + `tail` for n = 1..64 (index
// n of the result; index 0 is empty), each '?' of `row` numbered on as $1,
// $2, ... across the rows. E.g. row "(?, ?, 0)" gives "($1, $2, 0), ($3, $4, 0)".
std::vector<std::string> multi_row_statements(std::string_view head, std::string_view row,
                                              std::string_view tail = {});

// An optional text column read back: NULL as "".
inline std::string text_or_empty(const Value& v) {
  return v.is_null() ? std::string() : v.as_text();
}
// An optional text column written: "" as NULL.
inline Value null_if_empty(const std::string& s) { return s.empty() ? Value() : Value(s); }

// A PostgreSQL array literal built element by element, for statements whose
// text stays the same whatever the number of rows (one prepared statement).
class PgArray {
 public:
  void add(std::string_view text);
  // "" as NULL, as null_if_empty() writes it.
  void add_or_null(const std::string& text);
  void add_optional(const std::optional<std::string>& text);
  void add(std::int64_t n);
  void add(std::optional<std::int64_t> n);
  std::string str() const { return "{" + out_ + "}"; }

 private:
  void next() {
    if (!out_.empty()) out_ += ',';
  }
  void add_null() {
    next();
    out_ += "NULL";
  }
  std::string out_;
};

}  // namespace devcycle::internal
