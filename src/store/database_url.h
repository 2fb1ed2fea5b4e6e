// Checking a database URL without opening it. Internal.
#pragma once

#include <string>
#include <string_view>

namespace devcycle::internal {

enum class DatabaseKind { kSqlite, kPostgres };

// Throws Error{kInvalidArgument} "<label>: ..." when `url` is malformed or its
// scheme unknown.
DatabaseKind check_database_url(const std::string& url, std::string_view label);

}  // namespace devcycle::internal
