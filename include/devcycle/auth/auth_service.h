// The login flow over UserDirectory and TokenService: log in for tokens,
// refresh, log out, and the account changes that must end sessions (a
// password change or a deactivation revokes every refresh token of the user).
//
// Thread-safety: as its parts.
#pragma once

#include <string_view>

#include "devcycle/auth/auth.h"
#include "devcycle/auth/authz.h"
#include "devcycle/auth/tokens.h"

namespace devcycle {

class AuthService {
 public:
  // Both must outlive the service.
  AuthService(UserDirectory& users, TokenService& tokens) : users_(users), tokens_(tokens) {}

  // UserDirectory::authenticate, then a new token pair.
  TokenPair login(std::string_view login, std::string_view password,
                  std::string_view client_address);
  TokenPair refresh(std::string_view refresh_token) { return tokens_.refresh(refresh_token); }
  void logout(std::string_view access_token, std::string_view refresh_token) {
    tokens_.revoke(access_token, refresh_token);
  }
  // The principal an access token speaks for. Throws kUnauthenticated.
  Principal principal(std::string_view access_token);

  User change_password(std::string_view user_id, std::string_view current_password,
                       std::string_view new_password);
  User deactivate(std::string_view user_id);

 private:
  UserDirectory& users_;
  TokenService& tokens_;
};

}  // namespace devcycle
