// One librdkafka producer (idempotent, acks=all; transactional when asked)
// and the thread that polls its delivery reports continuously. Internal to
// the kafka:// backend.
//
// Owns: the client, its main queue, its topic handles and the poller
// thread; the destructor flushes (then purges what the broker did not take
// within the close timeout) and joins the poller.
// Thread-safety: produce() and topic() from any thread; stand_aside() and
// serve_ready() by the one thread producing a batch (callers serialize
// batches). Reports run on the poller thread, or on the batch's thread
// while the poller stands aside.
// Errors: Error{kUnavailable} when librdkafka refuses a message or a topic,
// or (produce_and_wait) when the message is not delivered.
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "devcycle/messaging/messaging.h"
#include "messaging/kafka/handles.h"

namespace devcycle::internal::kafka {

// What a delivery report resolves. Between produce and report librdkafka
// holds it; done() runs once, on the producer's poller thread, and disposes
// of it (most delete themselves; a batch's slots belong to their batch).
struct Sent {
  virtual void done(const rd_kafka_message_t* m) = 0;

 protected:
  ~Sent() = default;
};

class Producer {
 public:
  Producer(const std::string& brokers, bool transactional, const std::string& client_id,
           int close_timeout_ms, std::size_t max_record_bytes);
  ~Producer();

  rd_kafka_t* get() const { return client_.get(); }

  // While a caller produces a batch, the poller stands aside and the caller
  // serves the reports that come meanwhile (serve_ready): librdkafka's copies
  // of the messages are then freed on the thread that allocated them, which
  // glibc's malloc does without an arena lock.
  void stand_aside(bool aside);

  // Serves the reports that have come, without waiting.
  void serve_ready();

  // This producer's handle of a topic, kept until the producer closes:
  // producing by name would look the topic up (a lock and a scan) per message.
  rd_kafka_topic_t* topic(const std::string& name);

  // Queues one message; `sent` runs on its delivery report (null: nothing
  // does). Waits while the local queue is full. Throws Error when librdkafka
  // refuses the message; `sent` is then still the caller's. `copy` false: the
  // payload lives until the report (in `sent`, or longer). librdkafka takes
  // `headers` (null: none); when it refuses the message they are destroyed.
  void produce(const std::string& topic_name, const std::string& key, const std::string& payload,
               rd_kafka_headers_t* headers, Micros at, Sent* sent, bool copy = true);
  void produce(rd_kafka_topic_t* rkt, const std::string& key, const std::string& payload,
               rd_kafka_headers_t* headers, Micros at, Sent* sent, bool copy = true);

  // Produces one message (a copy of it) and waits for its report.
  void produce_and_wait(const std::string& topic, const std::string& key,
                        const std::string& payload, rd_kafka_headers_t* headers, Micros at);

 private:
  // Serves one event of the main queue; false when none came in `timeout_ms`.
  bool serve(int timeout_ms);

  int close_timeout_ms_;
  Client client_{nullptr, &rd_kafka_destroy};
  rd_kafka_queue_t* queue_ = nullptr;
  std::mutex topics_mu_;
  std::unordered_map<std::string, rd_kafka_topic_t*> topics_;
  std::mutex aside_mu_;
  std::condition_variable aside_cv_;
  std::atomic<bool> aside_{false};
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

}  // namespace devcycle::internal::kafka
