#include "common/quota_lock.h"

#include <string>

namespace devcycle::internal {

void lock_quota(Txn& t, std::string_view quota, std::string_view owner) {
  if (t.dialect() != Dialect::kPostgres) return;
  // A 64-bit hash of the name: a collision only makes two owners wait for
  // each other.
  t.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
          {"devcycle." + std::string(quota) + "/" + std::string(owner)});
}

}  // namespace devcycle::internal
