// How the CLI prints: aligned tables for people, the server's JSON for
// programs (--output json), colour only on a terminal and never with NO_COLOR.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace devcycle::cli {

using Json = nlohmann::json;

enum class Format { kTable, kJson };

// Columns two spaces apart, under upper-case headers.
void print_table(std::ostream& out, const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows);
// Key: value lines for one object.
void print_fields(std::ostream& out,
                  const std::vector<std::pair<std::string, std::string>>& fields);
// A JSON value as a cell: strings as they are, null as "-", others compact.
std::string cell(const Json& v);
// "2026-11-26T10:00:00.123456Z" -> "2026-11-26 10:00:00"; null -> "-".
std::string short_time(const Json& v);
// A run or task status, coloured when colour is on.
std::string status_text(const std::string& status);
bool color_enabled();
// Whether a run or task status is final.
bool terminal_status(const std::string& status);

}  // namespace devcycle::cli
