#include <algorithm>

#include "common/field_checks.h"
#include "common/url.h"
#include "common/utf8.h"
#include "devcycle/common/error.h"
#include "devcycle/common/uuid.h"
#include "devcycle/messaging/messaging.h"
#include "messaging/bus_checks.h"
#ifdef DEVCYCLE_WITH_KAFKA
#include "messaging/kafka/kafka_bus.h"
#endif
#include "messaging/bus_url.h"

namespace devcycle {

namespace internal {

void check_topic(const std::string& topic, const std::string& field) {
  check_name(field, topic, 200, "a-zA-Z0-9._-", "a-zA-Z0-9._-", "[a-zA-Z0-9._-]+");
  // Kafka refuses these two, and keeps names starting with __ for its own
  // topics (__consumer_offsets, __transaction_state); refused on every
  // backend alike.
  if (topic == "." || topic == "..")
    throw Error(ErrorCode::kInvalidArgument, field + ": \"" + topic + "\" is not a topic name");
  if (topic.starts_with("__"))
    throw Error(ErrorCode::kInvalidArgument,
                field + ": \"" + topic + "\": names starting with __ are Kafka's own");
}

void check_group(const std::string& group, const std::string& field) {
  check_name(field, group, 200, "a-zA-Z0-9._-", "a-zA-Z0-9._-", "[a-zA-Z0-9._-]+");
}

void check_message(const Message& m, std::size_t max_payload_bytes, const std::string& field,
                   bool with_topic) {
  if (with_topic) check_topic(m.topic, field + ".topic");
  check_text(field + ".key", m.key, 1024);
  if (m.headers.size() > 64)
    throw Error(ErrorCode::kInvalidArgument, field + ".headers: more than 64 headers");
  for (const auto& [k, v] : m.headers) {
    check_text(field + ".headers key", k, 256, true);
    if (k.starts_with("devcycle-"))
      throw Error(ErrorCode::kInvalidArgument,
                  field + ".headers: \"" + k + "\": names starting with devcycle- are reserved");
    check_text(field + ".headers[\"" + k + "\"]", v, 4096);
  }
  if (m.payload.size() > max_payload_bytes) {
    throw Error(ErrorCode::kInvalidArgument,
                field + ".payload: " + std::to_string(m.payload.size()) +
                    " bytes, more than the limit of " + std::to_string(max_payload_bytes));
  }
}

std::vector<std::string> check_batch(const std::vector<Message>& messages,
                                     std::size_t max_payload_bytes,
                                     std::vector<std::uint32_t>* topic_of) {
  // One pass, reading each message's topic once: in a large batch that
  // read is a cache miss per message.
  std::vector<std::string> topics;
  if (topic_of) topic_of->resize(messages.size());
  std::size_t current = 0;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    bool with_topic = false;
    if (topics.empty() || topics[current] != m.topic) {
      const auto known = std::find(topics.begin(), topics.end(), m.topic);
      with_topic = known == topics.end();
      current = static_cast<std::size_t>(known - topics.begin());
    }
    try {
      check_message(m, max_payload_bytes, "message", with_topic);  // no allocation for names
    } catch (const Error&) {
      check_message(m, max_payload_bytes, "messages[" + std::to_string(i) + "]");
      throw;
    }
    if (with_topic) topics.push_back(m.topic);
    if (topic_of) (*topic_of)[i] = static_cast<std::uint32_t>(current);
  }
  return topics;
}

void check_consume(const ConsumeOptions& o) {
  if (o.visibility_timeout.count() <= 0 || o.visibility_timeout > std::chrono::hours(24 * 30))
    throw Error(ErrorCode::kInvalidArgument,
                "visibility_timeout: must be positive and at most 30 days");
  if (o.max_deliveries < 1 || o.max_deliveries > 1000)
    throw Error(ErrorCode::kInvalidArgument, "max_deliveries: must be 1..1000");
}

void check_dead_letters_query(const std::string& topic, const std::string& group, int limit) {
  check_topic(topic, "topic");
  check_group(group, "group");
  if (limit < 1 || limit > 1000) throw Error(ErrorCode::kInvalidArgument, "limit: must be 1..1000");
}

void check_message_ids(const std::vector<std::string>& ids) {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (!is_uuid(ids[i]))
      throw Error(ErrorCode::kInvalidArgument, "ids[" + std::to_string(i) + "]: \"" +
                                                   ids[i].substr(0, 64) + "\" is not a message id");
  }
}

std::string clean_reason(std::string_view reason) {
  std::string out;
  std::size_t i = 0;
  while (i < reason.size() && out.size() < 4096) {
    const auto c = static_cast<unsigned char>(reason[i]);
    const std::size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    const auto seq = reason.substr(i, len);
    if (c == 0 || seq.size() != len || !valid_utf8(seq)) {
      out += '?';
      ++i;
      continue;
    }
    if (out.size() + len > 4096) break;
    out += seq;
    i += len;
  }
  return out;
}

Error not_pending(const Delivery& d) {
  return Error(ErrorCode::kNotFound,
               "delivery of " + d.message.topic + " offset " + std::to_string(d.offset) +
                   " to group " + d.group +
                   " is not pending (already acknowledged, or dead-lettered)");
}

}  // namespace internal

std::vector<Migration> MessageBus::migrations() {
  auto schema = [](const char* blob) {
    return std::string(
               "CREATE TABLE bus_topics (topic TEXT PRIMARY KEY, next_offset BIGINT NOT NULL);"
               "CREATE TABLE bus_messages (topic TEXT NOT NULL, msg_offset BIGINT NOT NULL,"
               " id TEXT NOT NULL, msg_key TEXT NOT NULL, headers TEXT NOT NULL,"
               " payload ") +
           blob +
           " NOT NULL, published_at BIGINT NOT NULL, PRIMARY KEY (topic, msg_offset));"
           "CREATE INDEX bus_messages_time ON bus_messages (topic, published_at);"
           "CREATE TABLE bus_groups (topic TEXT NOT NULL, grp TEXT NOT NULL,"
           " position BIGINT NOT NULL, PRIMARY KEY (topic, grp));"
           "CREATE TABLE bus_pending (topic TEXT NOT NULL, grp TEXT NOT NULL,"
           " msg_offset BIGINT NOT NULL, msg_key TEXT NOT NULL, delivery_count BIGINT NOT NULL,"
           " visible_at BIGINT NOT NULL, reason TEXT, PRIMARY KEY (topic, grp, msg_offset));"
           "CREATE TABLE bus_dead (topic TEXT NOT NULL, grp TEXT NOT NULL,"
           " msg_offset BIGINT NOT NULL, delivery_count BIGINT NOT NULL, reason TEXT NOT NULL,"
           " dead_at BIGINT NOT NULL, PRIMARY KEY (topic, grp, msg_offset))";
  };
  // Version 2: messages are kept in segments of consecutive offsets of one
  // topic, published together (docs/decisions/0025-bus-segments.md). A
  // segment of one message keeps it in plain columns, so the old rows move
  // over as they are.
  auto segments = [](const char* blob) {
    return std::string(
               "CREATE TABLE bus_segments (topic TEXT NOT NULL, first_offset BIGINT NOT NULL,"
               " msg_count BIGINT NOT NULL, published_at BIGINT NOT NULL, id TEXT NOT NULL,"
               " msg_key TEXT NOT NULL, headers TEXT NOT NULL, body ") +
           blob +
           " NOT NULL, PRIMARY KEY (topic, first_offset));"
           "CREATE INDEX bus_segments_time ON bus_segments (topic, published_at);"
           "INSERT INTO bus_segments (topic, first_offset, msg_count, published_at, id, msg_key,"
           " headers, body) SELECT topic, msg_offset, 1, published_at, id, msg_key, headers,"
           " payload FROM bus_messages;"
           "DROP TABLE bus_messages";
  };
  return {
      {"messaging", 1, "message bus: topics, messages, groups, pending, dead letters",
       schema("BLOB"), schema("BYTEA")},
      {"messaging", 2, "message bus: messages in segments", segments("BLOB"), segments("BYTEA")}};
}

std::unique_ptr<MessageBus> MessageBus::open(const std::string& url, Database& db,
                                             BusOptions options) {
  switch (internal::check_bus_url(url, "bus")) {
    case internal::BusKind::kInproc:
      return internal::open_inproc_bus(db, std::move(options));
    case internal::BusKind::kKafka:
#ifdef DEVCYCLE_WITH_KAFKA
      return internal::open_kafka_bus(url, std::move(options));
#else
      break;
#endif
  }
  throw Error(ErrorCode::kInvalidArgument,
              "bus: \"" + url +
                  "\": this build has no Kafka backend (configure with -DDEVCYCLE_WITH_KAFKA=ON); "
                  "use inproc://");
}

}  // namespace devcycle
