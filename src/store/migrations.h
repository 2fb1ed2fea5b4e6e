// Forward-only schema migrations, shared by every Database backend. Internal.
#pragma once

#include <span>
#include <string>

#include "devcycle/common/clock.h"
#include "devcycle/store/database.h"

namespace devcycle::internal {

// Checks that each module's migrations are numbered 1, 2, 3 ... in order and
// named. Throws Error{kInvalidArgument} naming the first bad migration.
void check_migrations(std::span<const Migration> migrations);

// FNV-1a 64 of the SQL that runs on `dialect`, as 16 hex digits.
std::string migration_checksum(const Migration& m, Dialect dialect);

// Creates schema_migrations if needed, then applies the pending migrations
// through `txn` (the caller's transaction, so all or none apply). Throws
// Error{kConflict} when the database has a newer migration of a module than
// `migrations` knows, Error{kInternal} when an applied one has changed.
void apply_migrations(Txn& txn, std::span<const Migration> migrations, Micros now);

}  // namespace devcycle::internal
