#include "store/sqlite_errors.h"

#include <sqlite3.h>

#include <string>

namespace devcycle::internal {

ErrorCode code_from_sqlite(int extended_rc) noexcept {
  switch (extended_rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return ErrorCode::kAlreadyExists;
    default:
      break;
  }
  switch (extended_rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return ErrorCode::kInvalidArgument;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
      return ErrorCode::kUnavailable;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return ErrorCode::kResourceExhausted;
    case SQLITE_INTERRUPT:
      return ErrorCode::kDeadlineExceeded;
    default:
      return ErrorCode::kInternal;  // malformed SQL, corruption, misuse: our bug
  }
}

void throw_sqlite(sqlite3* db, int rc, std::string_view what) {
  const int extended = db ? sqlite3_extended_errcode(db) : rc;
  const char* msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  throw Error(code_from_sqlite(extended ? extended : rc),
              std::string(msg ? msg : sqlite3_errstr(rc)) + " (" + std::string(what) + ")");
}

}  // namespace devcycle::internal
