// The consumer of one (topic, group) on Kafka and what it holds: a member
// of the Kafka consumer group `<topic>/<group>`, subscribed to the topic
// and to the group's retry topic, reading committed data only. Internal to
// the kafka:// backend.
//
// Owns: its librdkafka consumer (closed, leaving the group at once, when it
// goes) and the group's "queue": what it has taken from Kafka and not
// finished with, in offset order — waiting, handed out (until its
// visibility timeout), or refused and on its way back through the retry
// topic. A message is handed out only when no earlier one of its key is in
// the queue. Offsets are committed as OffsetTracker decides.
// Thread-safety: none of its own; callers hold `mu` around every call.
// Errors: Error{kUnavailable} when it cannot join the group (within 30 s),
// subscribe, move, or store a retry copy or a dead letter;
// Error{kNotFound} (not_pending()) for a delivery it does not hold out.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "devcycle/messaging/messaging.h"
#include "messaging/kafka/dead_letters.h"
#include "messaging/kafka/handles.h"
#include "messaging/kafka/offset_tracker.h"
#include "messaging/kafka/producer.h"

namespace devcycle::internal::kafka {

class GroupConsumer {
 public:
  // What a consumer uses of its bus. `producer` and `dead_letters` must
  // outlive it.
  struct Context {
    std::string brokers;
    std::string client_id;
    int session_timeout_ms = 0;  // how soon a consumer that died loses its partitions
    Producer* producer = nullptr;
    DeadLetterStore* dead_letters = nullptr;
  };

  // Joins the group (before the first fetch, so that a fetch right after a
  // publish sees it).
  GroupConsumer(const Context& context, std::string topic, std::string group);
  ~GroupConsumer();

  std::vector<Delivery> fetch(int max, const ConsumeOptions& options, Micros now);
  // All of `deliveries` or none (Error naming the first not held out).
  void ack(const std::vector<Delivery>& deliveries);
  void nack(const Delivery& d, const std::string& reason, const ConsumeOptions& options,
            Micros now);
  // Moves the group's position in `topic_` (partition -> offset): what was
  // taken and not handed out is dropped and read again from there; what is
  // handed out stays pending. The new position is committed at once.
  void seek(const std::map<std::int32_t, std::int64_t>& offsets);

  std::mutex mu;

 private:
  using Key = OffsetTracker::Partition;

  // One message the group took from Kafka and has not finished with.
  struct Entry {
    enum class State { kWaiting, kOut, kRetrying };
    Delivery delivery;   // as handed out last (delivery_count 0 before the first)
    std::string source;  // the Kafka topic it was read from: the topic or the retry topic
    std::int32_t partition = 0;
    std::int64_t source_offset = 0;
    State state = State::kWaiting;
    Micros visible_at = 0;
    std::string reason;  // the last refusal
  };

  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* parts, void* opaque);
  void take(rd_kafka_message_t* m);
  void catch_up();
  std::list<Entry>::iterator find(const Delivery& d);
  void finish(const Entry& e);
  void commit();
  void dead_letter(Entry& e, const std::string& reason, Micros now);

  Context context_;
  std::string topic_, group_, retry_;
  Client client_{nullptr, &rd_kafka_destroy};
  std::list<Entry> queue_;  // in the order taken from Kafka
  OffsetTracker offsets_;
  std::set<Key> assigned_;
  bool ever_assigned_ = false;
  // Ids dead-lettered and not redriven: read again after a restart (they
  // may lie beyond the committed offset), they are skipped, not handed out.
  std::set<std::string> dead_;
};

}  // namespace devcycle::internal::kafka
