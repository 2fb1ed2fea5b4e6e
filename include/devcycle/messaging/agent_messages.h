// Direct agent-to-agent messages with delivery and read receipts, kept in
// the `messages` table: a message is `sent`, becomes `delivered` when its
// recipient receives it (delivered_at), and `read` when the recipient marks
// it so (read_at).
//
// Errors: an unknown sender or recipient is Error{kNotFound} naming which;
// a bad message type or payload is Error{kInvalidArgument} naming the
// field; only the recipient may mark a message read (kPermissionDenied);
// nothing is half-written.
//
// Thread-safety: may be used from any number of threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/common/clock.h"
#include "devcycle/registry/registry.h"
#include "devcycle/store/database.h"

namespace devcycle {

enum class MessageStatus { kSent, kDelivered, kRead };
std::string_view to_string(MessageStatus s) noexcept;

struct DirectMessage {
  std::string id;         // uuid v7
  std::string sender;     // agent id
  std::string recipient;  // agent id
  std::string message_type;
  std::string payload;  // JSON
  MessageStatus status = MessageStatus::kSent;
  Micros sent_at = 0;
  std::optional<Micros> delivered_at;
  std::optional<Micros> read_at;
};

class AgentMessages {
 public:
  static std::vector<Migration> migrations();
  // `db` and `registry` must outlive this object. With a `receipt_topic`,
  // every send, delivery and read is also announced on that bus topic (JSON
  // with "event": message.sent | message.delivered | message.read, keyed by
  // recipient) through the database's transactional outbox, in the same
  // transaction as the change: published if and only if it committed. The
  // outbox is relayed by an Engine that has a bus (Platform wires both).
  AgentMessages(Database& db, Registry& registry,
                std::shared_ptr<Clock> clock = SystemClock::instance(),
                std::string receipt_topic = {});

  // message_type: [a-z0-9][a-z0-9._-]*, up to 64; payload: JSON, up to 1 MiB.
  DirectMessage send(std::string_view sender, std::string_view recipient,
                     std::string_view message_type, std::string_view payload);
  // The recipient's messages not yet received, oldest first (up to `limit`),
  // now marked delivered.
  std::vector<DirectMessage> receive(std::string_view recipient, int limit = 100);
  // Marks a received message read; `reader` must be its recipient.
  DirectMessage mark_read(std::string_view message_id, std::string_view reader);
  DirectMessage get(std::string_view message_id);

 private:
  Database& db_;
  Registry& registry_;
  std::shared_ptr<Clock> clock_;
  std::string receipt_topic_;
};

}  // namespace devcycle
