#include "devcycle/messaging/agent_messages.h"

#include "common/field_checks.h"
#include "common/json_schema_internal.h"
#include "devcycle/common/error.h"
#include "devcycle/common/uuid.h"
#include "messaging/bus_checks.h"
#include "messaging/outbox.h"

namespace devcycle {

namespace {

constexpr std::string_view kColumns =
    "id, sender, recipient, message_type, payload, status, sent_at, delivered_at, read_at";

MessageStatus parse_status(const std::string& s) {
  if (s == "delivered") return MessageStatus::kDelivered;
  if (s == "read") return MessageStatus::kRead;
  return MessageStatus::kSent;
}

DirectMessage from_row(const Row& r) {
  DirectMessage m;
  m.id = r[0].as_text();
  m.sender = r[1].as_text();
  m.recipient = r[2].as_text();
  m.message_type = r[3].as_text();
  m.payload = r[4].as_text();
  m.status = parse_status(r[5].as_text());
  m.sent_at = r[6].as_int();
  m.delivered_at = r[7].as_optional_int();
  m.read_at = r[8].as_optional_int();
  return m;
}

// Payloads up to this travel in the message.sent receipt; a larger one is
// announced by its size (read it with get()), so that a receipt stays well
// within a bus's payload limit (1 MiB by default, like a message's payload).
constexpr std::size_t kPayloadInReceipt = 64 * 1024;

// What a receipt announces: the message and its state, the payload only when it is sent.
Message receipt(const std::string& topic, const DirectMessage& m) {
  nlohmann::json j = {{"event", "message." + std::string(to_string(m.status))},
                      {"id", m.id},
                      {"sender", m.sender},
                      {"recipient", m.recipient},
                      {"message_type", m.message_type},
                      {"status", to_string(m.status)},
                      {"sent_at", m.sent_at}};
  if (m.status == MessageStatus::kSent) {
    if (m.payload.size() <= kPayloadInReceipt) {
      j["payload"] = nlohmann::json::parse(m.payload);
    } else {
      j["payload_bytes"] = m.payload.size();
    }
  }
  if (m.delivered_at) j["delivered_at"] = *m.delivered_at;
  if (m.read_at) j["read_at"] = *m.read_at;
  return {topic, m.recipient, {}, j.dump()};
}

Error message_not_found(std::string_view id) {
  return Error(ErrorCode::kNotFound, "message \"" + std::string(id.substr(0, 64)) + "\" not found");
}

}  // namespace

std::string_view to_string(MessageStatus s) noexcept {
  switch (s) {
    case MessageStatus::kSent:
      return "sent";
    case MessageStatus::kDelivered:
      return "delivered";
    case MessageStatus::kRead:
      return "read";
  }
  return "sent";
}

std::vector<Migration> AgentMessages::migrations() {
  return {{"agent_messages", 1, "direct agent-to-agent messages with receipts",
           "CREATE TABLE messages ("
           " id TEXT PRIMARY KEY, sender TEXT NOT NULL, recipient TEXT NOT NULL,"
           " message_type TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL,"
           " sent_at BIGINT NOT NULL, delivered_at BIGINT, read_at BIGINT);"
           "CREATE INDEX messages_inbox ON messages (recipient, status, id)",
           ""}};
}

AgentMessages::AgentMessages(Database& db, Registry& registry, std::shared_ptr<Clock> clock,
                             std::string receipt_topic)
    : db_(db),
      registry_(registry),
      clock_(std::move(clock)),
      receipt_topic_(std::move(receipt_topic)) {
  if (!clock_) throw Error(ErrorCode::kInvalidArgument, "clock: must not be null");
  if (!receipt_topic_.empty()) internal::check_topic(receipt_topic_, "receipt_topic");
  db_.migrate(migrations());
  if (!receipt_topic_.empty()) db_.migrate(internal::Outbox::migrations());
}

DirectMessage AgentMessages::send(std::string_view sender, std::string_view recipient,
                                  std::string_view message_type, std::string_view payload) {
  internal::check_lower_name("message_type", message_type, 64);
  if (payload.size() > 1024 * 1024)
    throw Error(ErrorCode::kInvalidArgument, "payload: larger than 1 MiB");
  const auto canonical = internal::parse_json(payload, "payload").dump();
  auto known = [&](std::string_view id, const char* field) {
    if (!is_uuid(id))
      throw Error(
          ErrorCode::kInvalidArgument,
          std::string(field) + ": \"" + std::string(id.substr(0, 64)) + "\" is not an agent id");
    try {
      registry_.get(id);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kNotFound) throw;
      throw Error(ErrorCode::kNotFound,
                  std::string(field) + ": agent " + std::string(id) + " not found");
    }
  };
  known(sender, "sender");
  known(recipient, "recipient");
  DirectMessage m;
  m.id = new_uuid_v7();
  m.sender = sender;
  m.recipient = recipient;
  m.message_type = message_type;
  m.payload = canonical;
  m.sent_at = clock_->now();
  db_.write([&](Txn& t) {
    t.execute("INSERT INTO messages (" + std::string(kColumns) +
                  ") VALUES ($1, $2, $3, $4, $5, 'sent', $6, NULL, NULL)",
              {m.id, m.sender, m.recipient, m.message_type, m.payload, m.sent_at});
    if (!receipt_topic_.empty()) internal::Outbox::add(t, {receipt(receipt_topic_, m)}, m.sent_at);
  });
  return m;
}

std::vector<DirectMessage> AgentMessages::receive(std::string_view recipient, int limit) {
  if (!is_uuid(recipient))
    throw Error(ErrorCode::kInvalidArgument,
                "recipient: \"" + std::string(recipient.substr(0, 64)) + "\" is not an agent id");
  if (limit < 1 || limit > 1000) throw Error(ErrorCode::kInvalidArgument, "limit: must be 1..1000");
  try {
    registry_.get(recipient);  // outside the write: the registry reads the database
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
    throw Error(ErrorCode::kNotFound, "recipient: agent " + std::string(recipient) + " not found");
  }
  const Micros at = clock_->now();
  return db_.write([&](Txn& t) {
    std::vector<DirectMessage> out;
    // On PostgreSQL, servers receiving for one agent at once take different
    // messages: rows another transaction is delivering are skipped (SQLite
    // has one writer).
    const char* lock = t.dialect() == Dialect::kPostgres ? " FOR UPDATE SKIP LOCKED" : "";
    for (const auto& r : t.query("SELECT " + std::string(kColumns) +
                                     " FROM messages WHERE recipient = $1 AND status = 'sent' "
                                     "ORDER BY id LIMIT $2" +
                                     lock,
                                 {recipient, limit})) {
      out.push_back(from_row(r));
    }
    std::vector<Message> receipts;
    for (auto& m : out) {
      t.execute("UPDATE messages SET status = 'delivered', delivered_at = $2 WHERE id = $1",
                {m.id, at});
      m.status = MessageStatus::kDelivered;
      m.delivered_at = at;
      if (!receipt_topic_.empty()) receipts.push_back(receipt(receipt_topic_, m));
    }
    if (!receipts.empty()) internal::Outbox::add(t, receipts, at);
    return out;
  });
}

DirectMessage AgentMessages::mark_read(std::string_view message_id, std::string_view reader) {
  if (!is_uuid(message_id)) throw message_not_found(message_id);
  const Micros at = clock_->now();
  return db_.write([&](Txn& t) {
    // Locked (PostgreSQL), so that a receive() in another server cannot
    // take the message back to `delivered` after it is read here.
    auto rs = t.query("SELECT " + std::string(kColumns) + " FROM messages WHERE id = $1" +
                          (t.dialect() == Dialect::kPostgres ? " FOR UPDATE" : ""),
                      {message_id});
    if (rs.empty()) throw message_not_found(message_id);
    auto m = from_row(rs[0]);
    if (m.recipient != reader) {
      throw Error(ErrorCode::kPermissionDenied,
                  "reader: only the recipient may mark message " + m.id + " read");
    }
    if (m.status == MessageStatus::kRead) return m;  // idempotent
    // Reading implies delivery, even if the recipient skipped receive().
    if (!m.delivered_at) m.delivered_at = at;
    m.status = MessageStatus::kRead;
    m.read_at = at;
    t.execute("UPDATE messages SET status = 'read', delivered_at = $2, read_at = $3 WHERE id = $1",
              {m.id, *m.delivered_at, at});
    if (!receipt_topic_.empty()) internal::Outbox::add(t, {receipt(receipt_topic_, m)}, at);
    return m;
  });
}

DirectMessage AgentMessages::get(std::string_view message_id) {
  if (!is_uuid(message_id)) throw message_not_found(message_id);
  return db_.read([&](Txn& t) {
    auto rs =
        t.query("SELECT " + std::string(kColumns) + " FROM messages WHERE id = $1", {message_id});
    if (rs.empty()) throw message_not_found(message_id);
    return from_row(rs[0]);
  });
}

}  // namespace devcycle
