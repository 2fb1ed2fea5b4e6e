// The one place where sqlite3 result codes become devcycle::Error. Internal.
#pragma once

#include <string_view>

#include "devcycle/common/error.h"

struct sqlite3;

namespace devcycle::internal {

ErrorCode code_from_sqlite(int extended_rc) noexcept;

// Throws Error with the code for `rc` and "<sqlite message> (<what>)".
[[noreturn]] void throw_sqlite(sqlite3* db, int rc, std::string_view what);

}  // namespace devcycle::internal
