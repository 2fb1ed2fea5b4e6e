#include "common/sql_rows.h"

namespace devcycle::internal {

std::vector<std::string> multi_row_statements(std::string_view head, std::string_view row,
                                              std::string_view tail) {
  std::vector<std::string> out(65);
  for (std::size_t n = 1; n <= 64; ++n) {
    std::string sql(head);
    std::size_t param = 0;
    for (std::size_t r = 0; r < n; ++r) {
      if (r) sql += ", ";
      for (const char c : row) {
        if (c == '?') {
          sql += "$" + std::to_string(++param);
        } else {
          sql += c;
        }
      }
    }
    sql += tail;
    out[n] = std::move(sql);
  }
  return out;
}

}  // namespace devcycle::internal

namespace devcycle::internal {

void PgArray::add(std::string_view text) {
  next();
  out_ += '"';
  for (const char c : text) {
    if (c == '"' || c == '\\') out_ += '\\';
    out_ += c;
  }
  out_ += '"';
}

void PgArray::add_or_null(const std::string& text) {
  if (text.empty()) {
    add_null();
  } else {
    add(text);
  }
}

void PgArray::add_optional(const std::optional<std::string>& text) {
  if (text) {
    add(std::string_view(*text));
  } else {
    add_null();
  }
}

void PgArray::add(std::int64_t n) {
  next();
  out_ += std::to_string(n);
}

void PgArray::add(std::optional<std::int64_t> n) {
  if (n) {
    add(*n);
  } else {
    add_null();
  }
}

}  // namespace devcycle::internal
