// publish_batch() on Kafka: each batch is one Kafka transaction (all or
// nothing) on one of two transactional producers that take turns. Internal
// to the kafka:// backend.
//
// Owns: the transactional producers, started on first use and replaced
// when one fails for good. Thread-safety: any thread; batches are
// serialized and each is committed before the next begins, so their order
// in the log is the order of the calls.
// Errors: Error{kUnavailable} saying whether nothing of the batch was
// published or whether that is unknown (a commit that did not finish).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "devcycle/messaging/messaging.h"
#include "messaging/kafka/producer.h"

namespace devcycle::internal::kafka {

class BatchProducer {
 public:
  // `name`: the bus's client id; producer i is `<name>-batches-<i>`.
  BatchProducer(std::string brokers, std::string name, int close_timeout_ms,
                std::size_t max_record_bytes);

  // Publishes `messages` (checked, their topics existing) as one
  // transaction at `at`; `topics` are the batch's topics and topic_of[i]
  // message i's index into them. Returns each message's Published, in order.
  std::vector<Published> publish(const std::vector<Message>& messages,
                                 const std::vector<std::string>& topics,
                                 const std::vector<std::uint32_t>& topic_of, Micros at);

  // Every producer started and not retired, in slot order.
  std::vector<const Producer*> producers();

  // Closes the producers (each flushes first).
  void close();

 private:
  static void abort_or_retire(std::unique_ptr<Producer>& slot);
  std::unique_ptr<Producer>& transactional();

  std::string brokers_, name_;
  int close_timeout_ms_;
  std::size_t max_record_bytes_;
  std::mutex mu_;
  std::array<std::unique_ptr<Producer>, 2> txn_;
  std::size_t next_txn_ = 0;
};

}  // namespace devcycle::internal::kafka
