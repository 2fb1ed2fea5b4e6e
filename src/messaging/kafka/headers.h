// What a Kafka record carries besides its key and value: the headers the
// bus adds to what it writes, the caller's headers, and the id every
// message has without a header (message_id()). Internal to the kafka://
// backend.
//
// Thread-safety: pure functions. Errors: none thrown; a missing or
// malformed header reads as empty or as the fallback.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "devcycle/messaging/messaging.h"

namespace devcycle::internal::kafka {

// Headers the bus adds to what it writes; callers may not use the prefix.
constexpr const char* kIdHeader = "devcycle-id";
constexpr const char* kCountHeader = "devcycle-delivery-count";
constexpr const char* kOffsetHeader = "devcycle-original-offset";
constexpr const char* kPartitionHeader = "devcycle-original-partition";
constexpr const char* kPublishedHeader = "devcycle-published-at";
constexpr const char* kReasonHeader = "devcycle-reason";
constexpr const char* kDeadAtHeader = "devcycle-dead-at";
constexpr std::string_view kReservedPrefix = "devcycle-";

// A message's id on Kafka, derived from where and when it was stored, so
// that no header has to carry it: a UUID in the version 7 layout whose
// 48-bit time is the record's timestamp (ms), whose 12 rand_a bits are the
// partition, and whose 62 rand_b bits are a 22-bit hash of the topic and
// the offset (40 bits). The producer computes it from the delivery report,
// a consumer from the record: the same value. Copies the bus writes itself
// (retry, dead letters) carry the original id in a header.
std::string message_id(std::string_view topic, std::int32_t partition, std::int64_t offset,
                       std::int64_t timestamp_ms);

// The last value of header `name` of `m`; empty when there is none.
std::string header(const rd_kafka_message_t* m, const char* name);
// header() as a whole number; `fallback` when absent or malformed.
std::int64_t header_int(const rd_kafka_message_t* m, const char* name, std::int64_t fallback);
// The caller's headers of `m` (those without the reserved prefix).
std::map<std::string, std::string> user_headers(const rd_kafka_message_t* m);

// New headers: `user`'s, then `ours`. The caller owns them until a
// produce takes them.
rd_kafka_headers_t* make_headers(const std::map<std::string, std::string>& user,
                                 const std::vector<std::pair<const char*, std::string>>& ours);

// The headers of a copy the bus writes of delivery `d` (to a retry or
// dead-letter topic): d's own, its id, `count` as its delivery count, its
// original offset, partition and publication time, then `more`.
rd_kafka_headers_t* copy_headers(const Delivery& d, const std::string& count,
                                 std::vector<std::pair<const char*, std::string>> more = {});

}  // namespace devcycle::internal::kafka
