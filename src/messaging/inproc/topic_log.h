// A topic's log on the inproc bus: its offset counter (bus_topics) and its
// messages, stored in segments (messaging/bus_segments.h). Internal to the
// inproc:// backend.
//
// Thread-safety: the functions run inside the caller's transaction, which
// serializes them. Errors: the Database's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "devcycle/messaging/messaging.h"
#include "devcycle/store/database.h"

namespace devcycle::internal::inproc {

// The offset the next message of `topic` will take (0 for a topic never
// published to).
std::int64_t next_offset(Txn& t, const std::string& topic);

// Stores `messages` in order at `at`; returns each one's Published. Each
// topic's offset counter is read and written once per call, whatever the
// number of messages, and each topic's messages go into segments of
// consecutive offsets.
std::vector<Published> append_messages(Txn& t, const std::vector<Message>& messages, Micros at);

}  // namespace devcycle::internal::inproc
