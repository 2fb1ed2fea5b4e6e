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
