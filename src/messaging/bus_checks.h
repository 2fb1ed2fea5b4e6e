// Checks of what callers hand the bus (each throws Error{kInvalidArgument}
// naming the field), and the backends' factories. Internal.
#pragma once

#include <string>

#include "devcycle/messaging.h"

namespace devcycle::internal {

void check_topic(const std::string& topic, const std::string& field);
void check_group(const std::string& group, const std::string& field);
void check_message(const Message& m, std::size_t max_payload_bytes, const std::string& field);

std::unique_ptr<MessageBus> open_inproc_bus(Database& db, BusOptions options);

}  // namespace devcycle::internal
