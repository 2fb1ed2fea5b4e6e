#include "devcycle/auth/auth_service.h"

#include "devcycle/common/error.h"

namespace devcycle {

TokenPair AuthService::login(std::string_view login, std::string_view password,
                             std::string_view client_address) {
  return tokens_.issue(users_.authenticate(login, password, client_address));
}

Principal AuthService::principal(std::string_view access_token) {
  const auto claims = tokens_.verify_access(access_token);
  // The signature says who; the account's state now says whether, and as what.
  UserState state;
  try {
    state = users_.state(claims.subject);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
    throw Error(ErrorCode::kUnauthenticated, "token: its user no longer exists");
  }
  if (!state.active) throw Error(ErrorCode::kUnauthenticated, "token: the account is deactivated");
  if (state.generation != claims.generation) {
    throw Error(ErrorCode::kUnauthenticated,
                "token: the account's role, password or activation changed after it was issued; "
                "refresh it or log in again");
  }
  return Principal{claims.subject, state.role, {}, "", state.must_change_password};
}

User AuthService::change_password(std::string_view user_id, std::string_view current_password,
                                  std::string_view new_password) {
  auto user = users_.change_password(user_id, current_password, new_password);
  tokens_.revoke_user(user.id);  // every other session must log in again
  return user;
}

User AuthService::deactivate(std::string_view user_id) {
  auto user = users_.deactivate(user_id);
  tokens_.revoke_user(user.id);
  return user;
}

}  // namespace devcycle
