#pragma once

#include <string_view>

#include "devcycle/store/database.h"

namespace devcycle::internal {

// Makes the checks of one owner's quota take turns across servers until the
// transaction ends, so that two servers cannot both count room for the last
// object. On PostgreSQL a transaction-scoped advisory lock on (quota, owner);
// SQLite has one writer at a time already. Call before counting; a caller
// locking several owners locks them in sorted order.
void lock_quota(Txn& t, std::string_view quota, std::string_view owner);

}  // namespace devcycle::internal
