// Messaging: an at-least-once message bus and direct agent-to-agent messages.
//
// MessageBus: topics hold messages in offset order. A consumer group sees
// every message of a topic; within a group each message is delivered to one
// handler at a time and stays pending until it is acknowledged. A delivery
// that is neither acknowledged nor refused within the visibility timeout is
// delivered again; after `max_deliveries` the message is dead-lettered with
// the reason and the delivery count, and can be redriven. Messages with the
// same non-empty key are delivered in offset order: a message is not handed
// out while an earlier one with its key is pending in the group. A group
// can be moved back to an offset or a time to replay.
//
// Backends, chosen by URL: `inproc://` keeps everything in the platform's
// Database (durable on a SQLite file, entirely in memory on sqlite::memory:).
// A publish's future resolves after the message is committed.
//
// Errors: bad topic or group names, oversized payloads and headers are
// Error{kInvalidArgument} naming the field; acknowledging a delivery that
// is no longer pending is Error{kNotFound}; nothing is half-written.
//
// Thread-safety: a MessageBus may be used from any number of threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "devcycle/common/clock.h"
#include "devcycle/common/subscription.h"
#include "devcycle/store/database.h"

namespace devcycle {

struct Message {
  std::string topic;  // [a-zA-Z0-9._-], 1..200 characters
  std::string key;    // ordering key; empty: no ordering with other messages
  std::map<std::string, std::string> headers;  // names starting with "devcycle-" are reserved
  std::string payload;                         // bytes
};

struct Published {
  std::string id;           // uuid v7
  std::int64_t offset = 0;  // within its partition
  Micros published_at = 0;
  int partition = 0;  // Kafka's partition; always 0 on inproc://
};

struct Delivery {
  std::string id;
  std::int64_t offset = 0;
  std::string group;
  Message message;
  int delivery_count = 0;  // 1 on the first delivery
  Micros published_at = 0;
  int partition = 0;  // Kafka's partition; always 0 on inproc://
};

struct DeadLetter {
  Delivery delivery;   // as last delivered
  std::string reason;  // the last refusal, or the expired visibility timeout
  Micros dead_at = 0;
};

struct ConsumeOptions {
  // A delivery not acknowledged within this is delivered again.
  std::chrono::milliseconds visibility_timeout{std::chrono::seconds(30)};
  // Deliveries after which a refused or expired message is dead-lettered.
  int max_deliveries = 5;
};

// What a subscription's handler decides about a delivery. A handler that
// throws refuses the delivery, with the exception's message as the reason.
enum class Ack { kAck, kNack };
using MessageHandler = std::function<Ack(const Delivery&)>;

struct SubscribeOptions {
  ConsumeOptions consume;
  int batch = 100;  // deliveries fetched at once
  // How long an idle subscription waits before looking again (a publish
  // through the same bus wakes it at once).
  std::chrono::milliseconds poll_interval{std::chrono::milliseconds(50)};
};

struct BusOptions {
  std::size_t max_payload_bytes = 1024 * 1024;
  std::shared_ptr<Clock> clock = SystemClock::instance();
};

class MessageBus {
 public:
  static std::vector<Migration> migrations();
  // Opens the bus named by `url` (inproc://) over `db`, which must outlive
  // it. Throws Error{kInvalidArgument} for an unknown or unsupported URL.
  static std::unique_ptr<MessageBus> open(const std::string& url, Database& db,
                                          BusOptions options = {});
  virtual ~MessageBus() = default;

  // Resolves once the message is durably accepted. Throws (synchronously)
  // Error{kInvalidArgument} for a bad message.
  virtual std::future<Published> publish(Message message) = 0;
  // All or nothing, in order, in one round trip.
  virtual std::future<std::vector<Published>> publish_batch(std::vector<Message> messages) = 0;

  // The pull side, which subscribe() runs in a loop: up to `max` deliveries
  // for `group`, each now pending until ack() or nack() or its timeout.
  virtual std::vector<Delivery> fetch(const std::string& topic, const std::string& group, int max,
                                      const ConsumeOptions& options = {}) = 0;
  virtual void ack(const Delivery& delivery) = 0;
  // Acknowledges all of them in one round trip, or none: Error{kNotFound}
  // names the first that is no longer pending.
  virtual void ack(const std::vector<Delivery>& deliveries) = 0;
  // Refuses a delivery: it is delivered again at once, or dead-lettered
  // with `reason` once it has been delivered max_deliveries times.
  virtual void nack(const Delivery& delivery, const std::string& reason,
                    const ConsumeOptions& options = {}) = 0;

  // Runs `handler` on a thread of its own for each delivery of `group`, in
  // order; stops when the Subscription is destroyed or reset.
  virtual Subscription subscribe(const std::string& topic, const std::string& group,
                                 MessageHandler handler, SubscribeOptions options = {}) = 0;

  // Dead letters of a group, oldest first, after `after_offset`.
  virtual std::vector<DeadLetter> dead_letters(const std::string& topic, const std::string& group,
                                               int limit = 100, std::int64_t after_offset = -1) = 0;
  // Makes dead letters of a group pending again with a fresh delivery count
  // (all of them, or those with the given message ids); returns how many.
  virtual int redrive(const std::string& topic, const std::string& group,
                      const std::vector<std::string>& ids = {}) = 0;

  // Replays: the group's next new message becomes the one at `offset`, or
  // the first published at or after `at`. Pending deliveries are kept.
  virtual void seek(const std::string& topic, const std::string& group, std::int64_t offset) = 0;
  virtual void seek_to_time(const std::string& topic, const std::string& group, Micros at) = 0;

  // Retention: deletes the messages of every topic published before
  // `before`, except those a group still holds pending or dead-lettered;
  // returns how many. Groups that had not reached them skip them.
  virtual std::int64_t purge(Micros before) = 0;
};

}  // namespace devcycle
