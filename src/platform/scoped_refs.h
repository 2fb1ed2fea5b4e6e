// Small helpers of the authorizing facade (scoped.h). Internal.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "devcycle/auth/authz.h"
#include "devcycle/registry/registry.h"

namespace devcycle::internal {

inline ObjectRef ref(Resource r, std::string id = {}, std::string owner = {}) {
  return ObjectRef{r, std::move(id), std::move(owner), false, {}};
}

// Executors that run code on the host or call URLs: configuring them is
// admin-only (docs/security.md).
bool runs_code(std::string_view executor);

// An agent as the matrix sees it: runs_code when its active version does.
ObjectRef agent_ref(Registry& registry, const Agent& a);

// The "name" of a workflow definition, when the text is a JSON object with a
// string name; nullopt otherwise (the catalog then reports what is wrong).
std::optional<std::string> definition_name(std::string_view definition_json);

}  // namespace devcycle::internal
