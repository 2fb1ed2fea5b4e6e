// Checking a message-bus URL (settings and MessageBus::open share it). Internal.
#pragma once

#include <string>
#include <string_view>

namespace devcycle::internal {

enum class BusKind { kInproc, kKafka };

// Throws Error{kInvalidArgument} "<label>: ..." when `url` is malformed or its
// scheme unknown.
BusKind check_bus_url(const std::string& url, std::string_view label);

}  // namespace devcycle::internal
