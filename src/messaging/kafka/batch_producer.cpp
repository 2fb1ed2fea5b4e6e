#include "messaging/kafka/batch_producer.h"

#include "devcycle/common/error.h"
#include "messaging/kafka/delivery_reports.h"
#include "messaging/kafka/handles.h"
#include "messaging/kafka/headers.h"

namespace devcycle::internal::kafka {

BatchProducer::BatchProducer(std::string brokers, std::string name, int close_timeout_ms,
                             std::size_t max_record_bytes)
    : brokers_(std::move(brokers)),
      name_(std::move(name)),
      close_timeout_ms_(close_timeout_ms),
      max_record_bytes_(max_record_bytes) {}

std::vector<Published> BatchProducer::publish(const std::vector<Message>& messages,
                                              const std::vector<std::string>& topics,
                                              const std::vector<std::uint32_t>& topic_of,
                                              Micros at) {
  auto reports = BatchReports::make(messages.size());
  std::lock_guard txn_lock(mu_);
  std::unique_ptr<Producer>* txn_slot = nullptr;
  Producer* txn = nullptr;
  std::size_t queued = 0;
  // This thread serves the reports that come while it produces; the
  // poller is back for the commit (which sends what lingers at once and
  // waits for the rest of the reports), or when anything fails.
  auto stand_back = [](Producer* p) { p->stand_aside(false); };
  std::unique_ptr<Producer, decltype(stand_back)> aside(nullptr, stand_back);
  try {
    txn_slot = &transactional();
    txn = txn_slot->get();
    txn->stand_aside(true);
    aside.reset(txn);
    if (auto* e = rd_kafka_begin_transaction(txn->get())) {
      if (rd_kafka_error_is_fatal(e)) {
        aside.reset();
        txn_slot->reset();  // the next batch starts a new producer
      }
      throw unavailable("begin a batch", e);
    }
    try {
      std::vector<rd_kafka_topic_t*> handles;
      for (const auto& t : topics) handles.push_back(txn->topic(t));
      for (; queued < messages.size(); ++queued) {
        const auto& m = messages[queued];
        txn->produce(handles[topic_of[queued]], m.key, m.payload,
                     m.headers.empty() ? nullptr : make_headers(m.headers, {}), at,
                     reports->slot(queued));
        if (queued % 1024 == 1023) txn->serve_ready();
      }
    } catch (...) {
      aside.reset();  // the abort waits for the purged messages' reports
      abort_or_retire(*txn_slot);
      throw;
    }
  } catch (...) {
    reports->queued(queued);
    throw;
  }
  reports->queued(queued);
  aside.reset();
  rd_kafka_error_t* e = rd_kafka_commit_transaction(txn->get(), 60'000);
  if (e && rd_kafka_error_is_retriable(e) && !rd_kafka_error_txn_requires_abort(e)) {
    // A timeout, say: the outcome is open, and librdkafka asks for the
    // commit again rather than an abort. Once more (both within the
    // outbox relay's 2-minute turn).
    rd_kafka_error_destroy(e);
    e = rd_kafka_commit_transaction(txn->get(), 30'000);
  }
  if (e) {
    const bool abortable = rd_kafka_error_txn_requires_abort(e);
    const bool open = rd_kafka_error_is_retriable(e) && !abortable;
    auto error = unavailable(open ? "the batch's commit did not finish in time; whether it was "
                                    "published is unknown"
                                  : "the batch was not committed; nothing of it was published",
                             e);
    if (abortable) {
      abort_or_retire(*txn_slot);
    } else {
      txn_slot->reset();  // this producer is done for: its next batch starts a new one
    }
    throw error;
  }
  // Committed: the commit waited for every report.
  auto published = reports->wait();
  for (std::size_t i = 0; i < published.size(); ++i) {
    auto& p = published[i];
    p.id = message_id(topics[topic_of[i]], p.partition, p.offset, p.published_at / 1000);
  }
  return published;
}

std::vector<const Producer*> BatchProducer::producers() {
  std::vector<const Producer*> out;
  std::lock_guard lock(mu_);
  for (const auto& p : txn_) {
    if (p) out.push_back(p.get());
  }
  return out;
}

void BatchProducer::close() {
  for (auto& p : txn_) p.reset();
}

// Aborts the slot's current transaction; a producer that cannot abort is
// retired, so that the next batch on this slot starts a new one.
void BatchProducer::abort_or_retire(std::unique_ptr<Producer>& slot) {
  if (auto* e = rd_kafka_abort_transaction(slot->get(), 30'000)) {
    rd_kafka_error_destroy(e);
    slot.reset();
  }
}

// The transactional producer for the next batch. Two take turns: after a
// commit the coordinator still writes its markers for a few milliseconds,
// and a producer that starts its next transaction meanwhile is refused
// (CONCURRENT_TRANSACTIONS) and retried by librdkafka after a fixed 20 ms.
std::unique_ptr<Producer>& BatchProducer::transactional() {
  auto& slot = txn_[next_txn_];
  next_txn_ = (next_txn_ + 1) % txn_.size();
  if (!slot) {
    auto p = std::make_unique<Producer>(brokers_, true,
                                        name_ + "-batches-" + std::to_string(&slot - txn_.data()),
                                        close_timeout_ms_, max_record_bytes_);
    if (auto* e = rd_kafka_init_transactions(p->get(), 30'000))
      throw unavailable("cannot start the batch producer", e);
    slot = std::move(p);
  }
  return slot;
}

}  // namespace devcycle::internal::kafka
