// A transactional outbox: messages written in the same transaction as the
// state change they announce, and published to a MessageBus afterwards by a
// relay, which deletes them only once the bus has durably accepted them. So
// a message is never lost with a crash, and is doubled only when a crash
// falls between the bus accepting it and its deletion (the relay then
// publishes it again). Messages of one key reach the bus in the order they
// were written. Of several relays on one database (engines sharing
// PostgreSQL) one at a time publishes: it holds the turn in `outbox_relay`
// while it has work, and another takes over when it stops or its turn runs
// out (2 minutes after a crash). A row the bus refuses for good
// (kInvalidArgument, e.g. larger than its payload limit) stays in the
// outbox with the reason in `refused` and is not tried again. Internal.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "devcycle/messaging/messaging.h"
#include "devcycle/store/database.h"

namespace devcycle::internal {

class Outbox {
 public:
  static std::vector<Migration> migrations();
  // Inside a write closure: stores `messages` (payloads are text) with it.
  static void add(Txn& t, const std::vector<Message>& messages, Micros at);
};

class OutboxRelay {
 public:
  // Starts the relay thread. `db` and `bus` must outlive it.
  OutboxRelay(Database& db, MessageBus& bus,
              std::chrono::milliseconds poll_interval = std::chrono::seconds(1));
  // Stops after a last attempt to publish what is there; what is left stays
  // in the outbox for the next relay.
  ~OutboxRelay();
  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  // New messages were committed: publish them now rather than at the next poll.
  void wake();
  // Publishes everything in the outbox on the calling thread when it is this
  // relay's turn; returns how many rows it published or set aside (0 when it
  // is another relay's turn). Throws
  // what the bus or the database throws (the rows then stay).
  int drain();

 private:
  int relay_once();
  bool take_turn();
  void forget(const std::vector<Value>& seqs,
              const std::vector<std::pair<Value, std::string>>& refused);
  void loop();

  Database& db_;
  MessageBus& bus_;
  std::chrono::milliseconds poll_interval_;
  std::string holder_;  // this relay in outbox_relay
  std::mutex run_mu_;   // one relay_once at a time
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool woken_ = false;
  std::thread thread_;
};

}  // namespace devcycle::internal
