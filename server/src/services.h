// What the route handlers share: the platform, the identity services, and
// small helpers to answer with JSON.
#pragma once

#include <memory>
#include <string>

#include "devcycle/api_keys.h"
#include "devcycle/auth.h"
#include "devcycle/auth_service.h"
#include "devcycle/platform.h"
#include "devcycle/tokens.h"
#include "router.h"
#include "serialize.h"

namespace devcycle::server {

struct Services {
  Platform& platform;
  UserDirectory& users;
  TokenService& tokens;
  ApiKeyStore& keys;
  AuthService& auth;
};

// An object reference for authorize().
inline ObjectRef object(Resource r, std::string id = {}, std::string owner = {}) {
  return ObjectRef{r, std::move(id), std::move(owner), false, {}};
}

HttpResponse json_response(int status, const Json& body);
HttpResponse no_content();
// A body already written as JSON text.
HttpResponse json_text_response(int status, std::string body);
// {"items": [...], "next_page_token": "..." or null}
Json page(Json items, const std::string& next_page_token);

// The route groups, one file each.
void add_auth_routes(Router& router, Services& s);
void add_agent_routes(Router& router, Services& s);
void add_workflow_routes(Router& router, Services& s);
void add_run_routes(Router& router, Services& s);
void add_message_routes(Router& router, Services& s);

}  // namespace devcycle::server
