#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <set>

#include "auth/sodium.h"
#include "common/utf8.h"
#include "devcycle/auth/auth.h"
#include "devcycle/common/error.h"

namespace devcycle {
namespace {

constexpr std::size_t kOwaspMinMemory = 19u * 1024 * 1024;
constexpr unsigned long long kOwaspMinPasses = 2;

class Argon2idHasher final : public PasswordHasher {
 public:
  explicit Argon2idHasher(const Argon2Options& o) : options_(o) {}

  std::string hash(std::string_view password) override {
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str_alg(out, password.data(), password.size(), options_.passes,
                              options_.memory_bytes, crypto_pwhash_ALG_ARGON2ID13) != 0) {
      throw Error(ErrorCode::kResourceExhausted, "password hashing ran out of memory");
    }
    return out;
  }

  bool verify(std::string_view password, std::string_view hash) override {
    const std::string h(hash);  // crypto_pwhash_str_verify wants a NUL-terminated string
    return crypto_pwhash_str_verify(h.c_str(), password.data(), password.size()) == 0;
  }

 private:
  Argon2Options options_;
};

const std::set<std::string, std::less<>>& common_passwords() {
  static const std::set<std::string, std::less<>> list = {
#include "auth/common_passwords.inc"
  };
  return list;
}

}  // namespace

std::string_view to_string(Role role) noexcept {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kDeveloper:
      return "developer";
    case Role::kViewer:
      return "viewer";
    case Role::kAgent:
      return "agent";
  }
  return "viewer";
}

Role parse_role(std::string_view text, std::string_view field) {
  for (auto r : {Role::kAdmin, Role::kDeveloper, Role::kViewer, Role::kAgent}) {
    if (text == to_string(r)) return r;
  }
  throw Error(ErrorCode::kInvalidArgument,
              std::string(field) + ": \"" + std::string(text.substr(0, 32)) +
                  "\" is not a role (admin, developer, viewer or agent)");
}

std::unique_ptr<PasswordHasher> make_argon2id_hasher(const Argon2Options& options) {
  internal::init_sodium();
  if (options.memory_bytes < kOwaspMinMemory || options.passes < kOwaspMinPasses) {
    throw Error(ErrorCode::kInvalidArgument,
                "argon2id options: at least 19 MiB and 2 passes are required (OWASP's minimum)");
  }
  return std::make_unique<Argon2idHasher>(options);
}

void check_password_policy(std::string_view password, std::string_view field) {
  const std::string f(field);
  if (password.size() > 4096)
    throw Error(ErrorCode::kInvalidArgument, f + ": longer than 4096 bytes");
  if (!internal::valid_utf8(password))
    throw Error(ErrorCode::kInvalidArgument, f + ": is not valid UTF-8");
  if (internal::utf8_length(password) < 12) {
    throw Error(ErrorCode::kInvalidArgument, f + ": must be at least 12 characters long");
  }
  std::string lower(password);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (common_passwords().count(lower)) {
    throw Error(ErrorCode::kInvalidArgument,
                f + ": is one of the most common passwords; choose another");
  }
}

}  // namespace devcycle
