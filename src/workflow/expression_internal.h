// Evaluation of expressions and templates over parsed JSON. Internal.
#pragma once

#include <nlohmann/json.hpp>

#include "devcycle/workflow/expression.h"

namespace devcycle::internal {

nlohmann::json evaluate(const Expression& e, const nlohmann::json& context);
nlohmann::json render(const Template& t, const nlohmann::json& context);
bool truthy(const nlohmann::json& v) noexcept;

}  // namespace devcycle::internal
