// AddressThrottle: failures counted per client address group
// (address_group(): an IPv4 address, an IPv6 /64) in the shared Cache, in
// fixed windows, so that every server sharing the cache sees one count. Each
// kind of failure (logins, presented credentials) has its own name and so
// its own count.
//
// An empty address is a trusted in-process caller: never counted, never
// refused.
//
// Thread-safety: as the Cache. Errors: check() and refuse() throw
// Error{kResourceExhausted} with "retry after N s" (the window: an upper
// bound).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "devcycle/cache/cache.h"
#include "devcycle/common/error.h"

namespace devcycle::internal {

class AddressThrottle {
 public:
  AddressThrottle(Cache& cache, std::string name, int max_failures,
                  std::chrono::milliseconds window)
      : cache_(cache), name_(std::move(name)), max_(max_failures), window_(window) {}

  // Throws when the address has reached its limit (one cache read).
  void check(std::string_view address);
  // Counts one failure; returns whether the address is now over its limit.
  bool count(std::string_view address);
  // Gives back one counted attempt (a login that succeeded).
  void give_back(std::string_view address);
  [[noreturn]] void refuse() const;

 private:
  std::string key(std::string_view address) const;

  Cache& cache_;
  std::string name_;
  int max_;
  std::chrono::milliseconds window_;
};

// Thrown where a presented credential proves not to be genuine: malformed,
// unknown, forged or with a wrong secret. A genuine credential that has ended
// (expired, revoked, its account changed) throws a plain Error: clients meet
// that in normal use, and it is not counted against their address.
class ForgedCredential : public Error {
 public:
  explicit ForgedCredential(const std::string& message)
      : Error(ErrorCode::kUnauthenticated, message) {}
};

}  // namespace devcycle::internal
