// Multi-row statements: one prepared statement for up to 64 rows instead of
// one statement per row. Internal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace devcycle::internal {

// The statements `head` + n copies of `row` + `tail` for n = 1..64 (index
// n of the result; index 0 is empty), each '?' of `row` numbered on as $1,
// $2, ... across the rows. E.g. row "(?, ?, 0)" gives "($1, $2, 0), ($3, $4, 0)".
std::vector<std::string> multi_row_statements(std::string_view head, std::string_view row,
                                              std::string_view tail = {});

}  // namespace devcycle::internal
