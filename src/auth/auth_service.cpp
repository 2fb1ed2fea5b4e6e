#include "devcycle/auth_service.h"

namespace devcycle {

TokenPair AuthService::login(std::string_view login, std::string_view password,
                             std::string_view client_address) {
  return tokens_.issue(users_.authenticate(login, password, client_address));
}

Principal AuthService::principal(std::string_view access_token) {
  const auto claims = tokens_.verify_access(access_token);
  return Principal{claims.subject, parse_role(claims.role, "token role"), {}, ""};
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
