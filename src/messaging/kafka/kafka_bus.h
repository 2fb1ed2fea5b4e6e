// kafka://host:port — the MessageBus on Apache Kafka through librdkafka.
// Internal; built with DEVCYCLE_WITH_KAFKA. How the contract maps onto
// Kafka: docs/decisions/0014-kafka-bus-design.md.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "devcycle/messaging/messaging.h"

namespace devcycle::internal {

// `url`: kafka://host:port[,host:port...][?partitions=N&replication=N]
// (partitions and replication of the topics the bus creates; 1 and 1 by
// default). Throws Error{kInvalidArgument} for a malformed URL.
std::unique_ptr<MessageBus> open_kafka_bus(const std::string& url, BusOptions options);

// librdkafka's effective settings `names` for each producer that `bus` (a
// kafka:// bus) has started, publish()'s first: for tests that prove how the
// bus produces. Error{kInvalidArgument} for another bus.
std::vector<std::map<std::string, std::string>> kafka_producer_settings(
    MessageBus& bus, const std::vector<std::string>& names);

}  // namespace devcycle::internal
