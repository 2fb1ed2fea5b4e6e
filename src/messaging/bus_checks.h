// Checks of what callers hand the bus (each throws Error{kInvalidArgument}
// naming the field), and the backends' factories. Internal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/common/error.h"
#include "devcycle/messaging/messaging.h"

namespace devcycle::internal {

void check_topic(const std::string& topic, const std::string& field);
void check_group(const std::string& group, const std::string& field);
// `with_topic` false: the topic was checked already.
void check_message(const Message& m, std::size_t max_payload_bytes, const std::string& field,
                   bool with_topic = true);
// check_message() for each of a batch; a refusal names messages[i].
// Returns the batch's topics in order of first appearance and, in
// `topic_of` when given, each message's index into them.
std::vector<std::string> check_batch(const std::vector<Message>& messages,
                                     std::size_t max_payload_bytes,
                                     std::vector<std::uint32_t>* topic_of = nullptr);
void check_consume(const ConsumeOptions& o);
// dead_letters()'s topic, group and limit (1..1000).
void check_dead_letters_query(const std::string& topic, const std::string& group, int limit);
// redrive()'s ids: each a message id (uuid), else Error naming ids[i].
void check_message_ids(const std::vector<std::string>& ids);

// A refusal reason as stored: well-formed UTF-8 without NUL, at most 4 KiB,
// cut on a character boundary.
std::string clean_reason(std::string_view reason);
// Error{kNotFound} for acknowledging or refusing a delivery that is no
// longer pending.
Error not_pending(const Delivery& d);

std::unique_ptr<MessageBus> open_inproc_bus(Database& db, BusOptions options);

}  // namespace devcycle::internal
