#include "messaging/kafka/delivery_reports.h"

#include <chrono>

#include "devcycle/common/error.h"
#include "messaging/kafka/handles.h"
#include "messaging/kafka/headers.h"

namespace devcycle::internal::kafka {

using namespace std::chrono_literals;

void SentFn::done(const rd_kafka_message_t* m) {
  std::unique_ptr<SentFn> self(this);
  fn(m);
}

void SentOne::done(const rd_kafka_message_t* m) {
  std::unique_ptr<SentOne> self(this);
  const char* topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "?";
  if (m->err) {
    promise.set_exception(std::make_exception_ptr(
        unavailable(std::string("message to ") + topic + " was not delivered", m->err)));
    return;
  }
  const auto ms = timestamp_ms(m);
  promise.set_value(Published{message_id(topic, m->partition, m->offset, ms), m->offset, ms * 1000,
                              m->partition});
}

std::shared_ptr<BatchReports> BatchReports::make(std::size_t n) {
  std::shared_ptr<BatchReports> b(new BatchReports(n));
  b->self_ = b;  // kept alive by its reports until the last has come
  return b;
}

BatchReports::BatchReports(std::size_t n) : published_(n), slots_(n), outstanding_(n + 1) {
  for (std::size_t i = 0; i < n; ++i) {
    slots_[i].batch = this;
    slots_[i].index = i;
  }
}

void BatchReports::queued(std::size_t queued) {
  const std::size_t never = slots_.size() - queued;
  if (never) outstanding_.fetch_sub(never, std::memory_order_acq_rel);
  release();
}

bool BatchReports::finished() {
  std::lock_guard lock(mu_);
  return finished_;
}

std::vector<Published> BatchReports::wait() {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, 60s, [&] { return finished_; }))
    throw Error(ErrorCode::kUnavailable, "kafka: the batch's delivery reports did not come");
  if (!error_.empty())
    throw Error(ErrorCode::kUnavailable, "kafka: batch not delivered: " + error_);
  return std::move(published_);
}

void BatchReports::report(std::size_t index, const rd_kafka_message_t* m) {
  auto& p = published_[index];
  const auto ms = timestamp_ms(m);
  p.offset = m->offset;
  p.partition = m->partition;
  p.published_at = ms * 1000;
  if (m->err) {
    std::lock_guard lock(mu_);
    if (error_.empty()) error_ = rd_kafka_err2str(m->err);
  }
  release();
}

void BatchReports::release() {
  if (outstanding_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  const auto keep = std::move(self_);  // the last one out: may be the only owner left
  {
    std::lock_guard lock(mu_);
    finished_ = true;
  }
  cv_.notify_all();
}

}  // namespace devcycle::internal::kafka
