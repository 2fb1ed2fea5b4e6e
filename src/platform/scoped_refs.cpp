#include "platform/scoped_refs.h"

#include "common/bounded_json.h"
#include "devcycle/common/error.h"
#include "devcycle/workflow/executor.h"

namespace devcycle::internal {

bool runs_code(std::string_view executor) { return ExecutorSpec::parse(executor).runs_code(); }

ObjectRef agent_ref(Registry& registry, const Agent& a) {
  auto r = ref(Resource::kAgent, a.id, a.owner);
  if (a.active_version)
    r.runs_code = runs_code(registry.get_version(a.id, *a.active_version).executor);
  return r;
}

std::optional<std::string> definition_name(std::string_view definition_json) {
  try {
    const auto doc = parse_json(definition_json, "$");
    if (const auto it = doc.find("name"); doc.is_object() && it != doc.end() && it->is_string())
      return it->get<std::string>();
  } catch (const Error&) {
  }
  return std::nullopt;
}

}  // namespace devcycle::internal
