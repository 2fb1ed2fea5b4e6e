// A consumer group's queue on the inproc bus: its position in the topic
// (bus_groups) and its pending set (bus_pending: taken, not yet
// acknowledged), from which fetch() hands messages out, and its dead
// letters (bus_dead). Internal to the inproc:// backend.
//
// Thread-safety: the functions run inside the caller's write transaction;
// take() locks the group's row first, so that takes of one group run one
// at a time even in several processes.
// Errors: the Database's; Error{kInternal} for a pending message that is
// not stored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "devcycle/messaging/messaging.h"
#include "devcycle/store/database.h"
#include "messaging/bus_segments.h"

namespace devcycle::internal::inproc {

// One fetch: takes new messages into the pending set (up to the group's
// bound), then hands out up to `max` that are visible and not held back by
// an earlier pending message with the same key, each invisible for the
// visibility timeout from `at`. A message whose last delivery expired goes
// to the dead letters.
std::vector<Delivery> take(Txn& t, const std::string& topic, const std::string& group, int max,
                           const ConsumeOptions& o, Micros at);

// Sets the group's position (the next message it has not taken yet).
void set_position(Txn& t, const std::string& topic, const std::string& group, std::int64_t offset);

// Moves a pending message to the group's dead letters.
void bury(Txn& t, const std::string& topic, const std::string& group, std::int64_t offset,
          std::int64_t count, const std::string& reason, Micros at);

// The delivery of stored message `m` to `group`, its `count`th.
Delivery delivery(const std::string& topic, const std::string& group, const StoredMessage& m,
                  int count);

}  // namespace devcycle::internal::inproc
