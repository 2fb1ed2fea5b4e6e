// How the inproc bus stores messages: in segments, rows of bus_segments
// each holding consecutive offsets of one topic that were published
// together (docs/decisions/0025-bus-segments.md). A segment of one message
// keeps it in plain columns; a longer one packs its messages into `body`.
// Internal.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "devcycle/messaging/messaging.h"
#include "devcycle/store/database.h"

namespace devcycle::internal {

// A message as stored. `headers` is the stored JSON object text.
struct StoredMessage {
  std::int64_t offset = 0;
  std::string id;
  std::string key;
  std::string headers;
  std::string payload;
  Micros published_at = 0;
};

// Stores `messages` of `topic` (all of it) at offsets first_offset,
// first_offset + 1, ...; ids[i] and headers[i] belong to messages[i].
void write_segments(Txn& t, const std::string& topic, std::int64_t first_offset,
                    const std::vector<const Message*>& messages,
                    const std::vector<std::string>& ids, const std::vector<std::string>& headers,
                    Micros published_at);

// Reads one topic's messages inside one transaction; each segment is read
// and decoded once.
class SegmentReader {
 public:
  SegmentReader(Txn& t, std::string topic) : t_(t), topic_(std::move(topic)) {}

  // The message at `offset`; null when there is none (purged or never
  // published).
  const StoredMessage* at(std::int64_t offset);

  // The messages with offsets in [from, to), in offset order.
  std::vector<const StoredMessage*> range(std::int64_t from, std::int64_t to);

 private:
  const StoredMessage* cached(std::int64_t offset) const;
  void decode(const Row& row);

  Txn& t_;
  std::string topic_;
  std::map<std::int64_t, std::vector<StoredMessage>> segments_;  // by first offset
};

}  // namespace devcycle::internal
