// Topic administration for the Kafka bus: creating topics, learning the
// largest record each takes, reading partitions' bounds and groups'
// committed offsets, and purge(). Internal to the kafka:// backend.
//
// Owns: what the bus knows of topics (which exist, which were published to
// or fetched from, their record limits); the admin requests go through a
// client it borrows (the bus's producer), which must outlive it.
// Thread-safety: any thread; the topic sets are under one mutex, admin
// requests run outside it.
// Errors: Error{kUnavailable} naming the request when the broker refuses it
// or does not answer within 30 s; Error{kInvalidArgument} for a topic name
// librdkafka refuses, or a message larger than its topic takes.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "devcycle/messaging/messaging.h"

namespace devcycle::internal::kafka {

// The largest record the bus may write: a message at every limit of
// check_message() (payload, key, 64 headers) plus the headers the bus adds
// to a retry or dead-letter copy (a 4 KiB reason among them). Producers and
// the topics the bus creates take this much, so that Kafka never refuses
// what the bus accepted.
std::size_t max_record_bytes(std::size_t max_payload_bytes);

class TopicAdmin {
 public:
  TopicAdmin(rd_kafka_t* client, int partitions, int replication, std::size_t max_record_bytes)
      : client_(client),
        partitions_(partitions),
        replication_(replication),
        max_record_bytes_(max_record_bytes) {}

  // ensure_topics() for one topic, without allocating when it is known.
  // A topic published to: purge() covers it, and it exists.
  void ensure_topic(const std::string& topic);

  // Creates the topics that do not exist yet (once per bus and topic).
  // `user`: they are topics published to.
  void ensure_topics(const std::vector<std::string>& wanted, bool user = false);

  // A topic fetched from: purge() covers it.
  void add_user_topic(const std::string& topic);

  // The largest record `topic` takes, as far as the bus knows (else the
  // bus's own).
  std::size_t topic_limit(const std::string& topic);

  // Error{kInvalidArgument} naming `field` ("message" or messages[index])
  // when `m` would make a record larger than `limit`.
  static void check_fits(const Message& m, std::size_t limit, std::optional<std::size_t> index);

  // Partition -> (first offset, next offset) of a topic (created if missing).
  std::map<std::int32_t, std::pair<std::int64_t, std::int64_t>> partition_bounds(
      const std::string& topic);

  // Partition -> next offset (the end) of a topic.
  std::map<std::int32_t, std::int64_t> partition_ends(const std::string& topic);

  // Partition -> the first offset of `topic` published at or after `at`
  // (the end where there is none).
  std::map<std::int32_t, std::int64_t> offsets_at(const std::string& topic, Micros at);

  // Deletes the records of the user topics published before `before`,
  // never past any group's committed offset. Returns how many.
  std::int64_t purge(Micros before);

 private:
  using Key = std::pair<std::string, std::int32_t>;

  // max.message.bytes of each of `topics` (those the broker answers for).
  std::map<std::string, std::size_t> record_limits(const std::vector<std::string>& topics);
  // Runs one admin request and hands its result event to `read` (which may throw).
  void admin(const std::function<void(rd_kafka_queue_t*)>& send,
             const std::function<void(rd_kafka_event_t*)>& read, const std::string& what);
  // Every consumer group of the cluster.
  std::vector<std::string> groups();
  // A group's committed offsets for `partitions` (-1 where it has none).
  std::map<Key, std::int64_t> committed(const std::string& group,
                                        const rd_kafka_topic_partition_list_t* partitions);

  rd_kafka_t* client_;
  int partitions_, replication_;
  std::size_t max_record_bytes_;
  std::mutex mu_;
  std::set<std::string> known_topics_;
  std::set<std::string> user_topics_;  // published to or fetched from: what purge() covers
  std::map<std::string, std::size_t> topic_limits_;  // max.message.bytes of the known topics
};

}  // namespace devcycle::internal::kafka
