#include "auth/address_throttle.h"

#include <arpa/inet.h>

#include <algorithm>

#include "devcycle/auth/identity.h"

namespace devcycle {

std::string address_group(std::string_view client_address) {
  const std::string text(client_address);
  unsigned char v6[16];
  if (text.find(':') == std::string::npos || inet_pton(AF_INET6, text.c_str(), v6) != 1) {
    return text;
  }
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char out[INET6_ADDRSTRLEN];
  if (std::equal(kMapped, kMapped + 12, v6)) {  // ::ffff:a.b.c.d is the IPv4 address
    return inet_ntop(AF_INET, v6 + 12, out, sizeof out) ? std::string(out) : text;
  }
  std::fill(v6 + 8, v6 + 16, 0);  // one customer's /64
  if (!inet_ntop(AF_INET6, v6, out, sizeof out)) return text;
  return std::string(out) + "/64";
}

namespace internal {

std::string AddressThrottle::key(std::string_view address) const {
  return name_ + ":address:" + address_group(address);
}

void AddressThrottle::check(std::string_view address) {
  if (address.empty()) return;
  const auto v = cache_.get(key(address));
  if (!v) return;
  long long n = 0;
  try {
    n = std::stoll(*v);
  } catch (const std::exception&) {
    return;  // not a count: the next increment says so
  }
  if (n >= max_) refuse();
}

bool AddressThrottle::count(std::string_view address) {
  if (address.empty()) return false;
  return cache_.increment(key(address), 1, window_) > max_;
}

void AddressThrottle::give_back(std::string_view address) {
  if (address.empty()) return;
  cache_.increment(key(address), -1, window_);
}

void AddressThrottle::refuse() const {
  const auto seconds = std::max<long long>(1, window_.count() / 1000);
  throw Error(ErrorCode::kResourceExhausted,
              "too many failed authentications from this address; retry after " +
                  std::to_string(seconds) + " s");
}

}  // namespace internal
}  // namespace devcycle
