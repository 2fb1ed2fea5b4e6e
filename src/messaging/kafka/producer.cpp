#include "messaging/kafka/producer.h"

#include <chrono>
#include <future>
#include <memory>
#include <utility>
#include <vector>

#include "messaging/kafka/delivery_reports.h"

// librdkafka's C macros (RD_KAFKA_V_*) cast the C way.
#pragma GCC diagnostic ignored "-Wold-style-cast"

namespace devcycle::internal::kafka {

using namespace std::chrono_literals;

Producer::Producer(const std::string& brokers, bool transactional, const std::string& client_id,
                   int close_timeout_ms, std::size_t max_record_bytes)
    : close_timeout_ms_(close_timeout_ms) {
  std::vector<std::pair<std::string, std::string>> settings{
      {"bootstrap.servers", brokers},
      {"client.id", client_id},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", "5"},
      {"message.timeout.ms", "120000"},
      {"message.max.bytes", std::to_string(max_record_bytes)},
  };
  if (transactional) {
    settings.emplace_back("transactional.id", client_id);
    settings.emplace_back("transaction.timeout.ms", "120000");  // >= message.timeout.ms
  }
  rd_kafka_conf_t* conf = make_conf(settings);
  // Delivery reports as events, served by the poller thread: one event
  // carries many reports, and rd_kafka_flush() (also inside a
  // transaction's commit) then waits on a condition instead of polling
  // in 10 ms steps for reports another thread has served.
  rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_DR);
  client_ = make_client(RD_KAFKA_PRODUCER, conf);
  queue_ = rd_kafka_queue_get_main(client_.get());
  poller_ = std::thread([this] {
    while (!stop_) {
      {
        std::unique_lock lock(aside_mu_);
        aside_cv_.wait(lock, [&] { return !aside_ || stop_; });
      }
      if (!stop_) serve(50);
    }
  });
}

Producer::~Producer() {
  // Flush on shutdown: every queued message is delivered first. What the
  // broker has not taken within close_timeout_ms is purged, so that its
  // publisher's future fails (with the purge's error) instead of waiting
  // forever.
  if (rd_kafka_flush(client_.get(), close_timeout_ms_) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_purge(client_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(client_.get(), 5'000);  // the poller serves the purged messages' reports
  }
  {
    std::lock_guard lock(aside_mu_);
    stop_ = true;
  }
  aside_cv_.notify_all();
  poller_.join();
  while (serve(0)) {
  }  // reports that arrived at the very end
  for (auto& [name, handle] : topics_) rd_kafka_topic_destroy(handle);
  rd_kafka_queue_destroy(queue_);
}

void Producer::stand_aside(bool aside) {
  {
    std::lock_guard lock(aside_mu_);
    aside_ = aside;
  }
  aside_cv_.notify_all();
}

void Producer::serve_ready() {
  while (serve(0)) {
  }
}

rd_kafka_topic_t* Producer::topic(const std::string& name) {
  std::lock_guard lock(topics_mu_);
  auto& handle = topics_[name];
  if (!handle) {
    handle = rd_kafka_topic_new(client_.get(), name.c_str(), nullptr);
    if (!handle) {
      topics_.erase(name);
      throw unavailable("cannot open topic " + name, rd_kafka_last_error());
    }
  }
  return handle;
}

void Producer::produce(const std::string& topic_name, const std::string& key,
                       const std::string& payload, rd_kafka_headers_t* headers, Micros at,
                       Sent* sent, bool copy) {
  produce(topic(topic_name), key, payload, headers, at, sent, copy);
}

void Producer::produce(rd_kafka_topic_t* rkt, const std::string& key, const std::string& payload,
                       rd_kafka_headers_t* headers, Micros at, Sent* sent, bool copy) {
  const int flags = copy ? RD_KAFKA_MSG_F_COPY : 0;
  const void* k = key.empty() ? nullptr : key.data();
  void* v = const_cast<char*>(payload.data());
  for (;;) {
    // Without headers (null) the call leaves them out altogether.
    const rd_kafka_resp_err_t err =
        headers
            ? rd_kafka_producev(client_.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(flags),
                                RD_KAFKA_V_KEY(k, key.size()), RD_KAFKA_V_VALUE(v, payload.size()),
                                RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_TIMESTAMP(at / 1000),
                                RD_KAFKA_V_OPAQUE(sent), RD_KAFKA_V_END)
            : rd_kafka_producev(client_.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(flags),
                                RD_KAFKA_V_KEY(k, key.size()), RD_KAFKA_V_VALUE(v, payload.size()),
                                RD_KAFKA_V_TIMESTAMP(at / 1000), RD_KAFKA_V_OPAQUE(sent),
                                RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      // Back-pressure: reports drain the queue.
      if (aside_) {
        serve(1);
      } else {
        std::this_thread::sleep_for(1ms);
      }
      continue;
    }
    if (headers) rd_kafka_headers_destroy(headers);  // not taken on failure
    throw unavailable(std::string("cannot queue a message to ") + rd_kafka_topic_name(rkt), err);
  }
}

void Producer::produce_and_wait(const std::string& topic, const std::string& key,
                                const std::string& payload, rd_kafka_headers_t* headers,
                                Micros at) {
  auto promise = std::make_shared<std::promise<void>>();
  auto future = promise->get_future();
  auto sent = std::make_unique<SentFn>([promise, topic](const rd_kafka_message_t* m) {
    if (m->err) {
      promise->set_exception(
          std::make_exception_ptr(unavailable("message to " + topic + " not delivered", m->err)));
    } else {
      promise->set_value();
    }
  });
  produce(topic, key, payload, headers, at, sent.get());
  sent.release();  // its report disposes of it
  future.get();
}

bool Producer::serve(int timeout_ms) {
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue_, timeout_ms);
  if (!ev) return false;
  if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_DR) {
    while (const rd_kafka_message_t* m = rd_kafka_event_message_next(ev)) {
      if (auto* sent = static_cast<Sent*>(m->_private)) {
        try {
          sent->done(m);
        } catch (...) {
          // A report handler must not stop the poller.
        }
      }
    }
  }
  rd_kafka_event_destroy(ev);
  return true;
}

}  // namespace devcycle::internal::kafka
