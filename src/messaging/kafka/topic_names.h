// The Kafka names of a bus topic's group: its consumer group and the topics
// the bus keeps beside the topic for it. Internal to the kafka:// backend.
// Pure functions.
#pragma once

#include <cstddef>
#include <string>

namespace devcycle::internal::kafka {

// Kafka's limit on topic names.
constexpr std::size_t kMaxTopicName = 249;

// The Kafka consumer group of a bus group: a group belongs to its topic,
// as on inproc. Sharing one Kafka group across topics would make every
// member rejoin when any topic's consumer joins, and one not fetching would
// hold the others up. '/' is in neither name, so no two pairs collide.
inline std::string kafka_group(const std::string& topic, const std::string& group) {
  return topic + "/" + group;
}

// Where a group's refused messages wait for their next delivery.
inline std::string retry_topic(const std::string& topic, const std::string& group) {
  return topic + ".retry." + group;
}

// A group's dead letters.
inline std::string dlq_topic(const std::string& topic, const std::string& group) {
  return topic + ".dlq." + group;
}

// Which of a group's dead letters were redriven (key: id, value: the
// dead-letter offset). The longest of the names.
inline std::string redriven_topic(const std::string& topic, const std::string& group) {
  return topic + ".dlq." + group + ".redriven";
}

}  // namespace devcycle::internal::kafka
