// A group's dead letters on Kafka: storing one, listing them, redriving
// them. They live in the topic `<topic>.dlq.<group>`; a redrive sends the
// message back through the retry topic and records its id in
// `<topic>.dlq.<group>.redriven`. Internal to the kafka:// backend.
//
// Owns nothing but names: it writes through the bus's producer and creates
// topics through its TopicAdmin (both must outlive it), and reads each
// topic whole with a short-lived consumer of no group.
// Thread-safety: any thread.
// Errors: Error{kUnavailable} when Kafka does not store or return them (a
// topic not read within 30 s among them); Error{kNotFound} naming an id
// that is not a dead letter.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "devcycle/common/clock.h"
#include "devcycle/messaging/messaging.h"
#include "messaging/kafka/producer.h"
#include "messaging/kafka/topic_admin.h"

namespace devcycle::internal::kafka {

class DeadLetterStore {
 public:
  // `brokers`: where to read from; `name`: the bus's client id (the readers'
  // group is `<name>-reader`).
  DeadLetterStore(Producer& producer, TopicAdmin& topics, std::string brokers, std::string name)
      : producer_(producer),
        topics_(topics),
        brokers_(std::move(brokers)),
        name_(std::move(name)) {}

  // Stores delivery `d` of (topic, group) as a dead letter for `reason`, at
  // `now`; returns once Kafka has it.
  void store(const std::string& topic, const std::string& group, const Delivery& d,
             const std::string& reason, Micros now);

  // dead_letters(): up to `limit` after `after_offset`, in offset order.
  std::vector<DeadLetter> list(const std::string& topic, const std::string& group, int limit,
                               std::int64_t after_offset);

  // redrive(): `ids` (all when empty) back to the group, each with a fresh
  // count, at clock.now(). Returns how many.
  int redrive(const std::string& topic, const std::string& group,
              const std::vector<std::string>& ids, const Clock& clock);

  // The ids of the group's current dead letters.
  std::set<std::string> ids(const std::string& topic, const std::string& group);

 private:
  struct Dead {
    DeadLetter letter;
    std::int64_t dlq_offset = 0;
  };

  std::vector<Dead> current(const std::string& topic, const std::string& group);

  Producer& producer_;
  TopicAdmin& topics_;
  std::string brokers_, name_;
};

}  // namespace devcycle::internal::kafka
