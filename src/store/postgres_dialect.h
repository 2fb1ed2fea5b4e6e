// What differs between SQLite and PostgreSQL, in one place, without libpq:
// the DDL shim that lets one migration text serve both, and the SQLSTATE
// codes that become devcycle::Error. Internal.
#pragma once

#include <string>
#include <string_view>

#include "devcycle/common/error.h"

namespace devcycle::internal {

// Rewrites SQLite column types in a schema script for PostgreSQL:
// INTEGER -> BIGINT (SQLite's INTEGER is 64-bit; ours hold microseconds),
// "INTEGER PRIMARY KEY" -> an identity column (SQLite's rowid alias numbers
// rows the same way), BLOB -> BYTEA, REAL -> DOUBLE PRECISION. Words inside
// '...' literals and "..." identifiers are left alone.
std::string postgres_ddl(std::string_view sqlite_ddl);

// SQLSTATE (five characters) -> ErrorCode: 23505 kAlreadyExists, other class
// 23 kInvalidArgument, 40xxx/55P03/57P01/class 08 kUnavailable (retry),
// 53xxx kResourceExhausted, 57014 kDeadlineExceeded, anything else kInternal.
ErrorCode code_from_sqlstate(std::string_view sqlstate) noexcept;

// The value of a bytea column in PostgreSQL's hex text format ("\x0a1b...").
// Throws Error{kInternal} when `text` is not in that format.
std::string decode_bytea_hex(std::string_view text);
// Bytes -> "\x..." for a parameter that PostgreSQL reads as bytea.
std::string encode_bytea_hex(std::string_view bytes);

}  // namespace devcycle::internal
