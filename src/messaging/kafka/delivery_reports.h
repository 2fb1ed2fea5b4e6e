// What the producer's delivery reports resolve: a function (the bus's own
// writes), one publish()'s promise, or one publish_batch()'s slots.
// Internal to the kafka:// backend.
//
// Owns: each Sent is owned by librdkafka between produce and report; done()
// disposes of it. A BatchReports keeps itself alive until its last report
// and its producing thread are done.
// Thread-safety: done() runs on the producer's poller thread (or the
// batch's thread while the poller stands aside); BatchReports::wait() on
// the publishing thread.
// Errors: a report's failure becomes Error{kUnavailable} in the promise,
// or thrown by BatchReports::wait().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "devcycle/messaging/messaging.h"
#include "messaging/kafka/producer.h"

namespace devcycle::internal::kafka {

// Any report handler (the bus's own writes).
struct SentFn final : Sent {
  explicit SentFn(std::function<void(const rd_kafka_message_t*)> f) : fn(std::move(f)) {}
  void done(const rd_kafka_message_t* m) override;
  std::function<void(const rd_kafka_message_t*)> fn;
};

// One publish(): a single allocation besides the future's shared state.
struct SentOne final : Sent {
  explicit SentOne(std::string body) : payload(std::move(body)) {}
  void done(const rd_kafka_message_t* m) override;
  std::promise<Published> promise;
  std::string payload;  // librdkafka reads it in place until the report: no copy
};

// The reports of one publish_batch(): a slot per message, allocated with the
// batch, so that a message costs no allocation and no lock of its own.
class BatchReports {
 public:
  struct Slot final : Sent {
    void done(const rd_kafka_message_t* m) override { batch->report(index, m); }
    BatchReports* batch = nullptr;
    std::size_t index = 0;
  };

  static std::shared_ptr<BatchReports> make(std::size_t n);

  Slot* slot(std::size_t i) { return &slots_[i]; }

  // The producing thread is done: `queued` of the messages were queued (the
  // others will never report).
  void queued(std::size_t queued);

  bool finished();

  // Waits for every report of a batch whose messages were all queued; throws
  // if one failed. The ids are left to the caller (message_id()), whose
  // thread then allocates and frees them.
  std::vector<Published> wait();

 private:
  explicit BatchReports(std::size_t n);

  void report(std::size_t index, const rd_kafka_message_t* m);
  void release();

  std::vector<Published> published_;  // each slot writes only its own entry
  std::vector<Slot> slots_;
  std::atomic<std::size_t> outstanding_;  // reports to come, plus one for the producing thread
  std::shared_ptr<BatchReports> self_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;
  std::string error_;
};

}  // namespace devcycle::internal::kafka
