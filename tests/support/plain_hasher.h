// A PasswordHasher without cost, for suites that create users but do not
// test hashing: "plain:" + the password.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "devcycle/auth/auth.h"

namespace devcycle::testing {

class PlainHasher final : public PasswordHasher {
 public:
  std::string hash(std::string_view p) override { return "plain:" + std::string(p); }
  bool verify(std::string_view p, std::string_view h) override {
    return h == "plain:" + std::string(p);
  }
};

inline std::shared_ptr<PasswordHasher> plain_hasher() { return std::make_shared<PlainHasher>(); }

}  // namespace devcycle::testing
