// kafka://: the message bus on Apache Kafka (librdkafka's C API).
//
// Producing: one idempotent producer (acks=all) for publish(), and one
// transactional producer for publish_batch() (a batch is one Kafka
// transaction: all or nothing). A thread per producer polls delivery
// reports continuously; a publish resolves only on its report. A full local
// queue makes publish() wait (back-pressure), never drop.
//
// Consuming: one Kafka consumer per (topic, group) this bus fetches for,
// subscribed to the topic and to the group's retry topic
// `<topic>.retry.<group>`, reading committed data only. What it has taken
// from Kafka and not finished with lives in memory, in offset order (the
// group's "queue"): waiting, handed out (until its visibility timeout), or
// refused and on its way back through the retry topic. A message is handed
// out only when no earlier one of its key is in the queue. The committed
// offset of each partition is the start of its unbroken run of finished
// offsets, so a crash redelivers exactly what was not finished.
//
// A refusal republishes the message to the retry topic with its delivery
// count in a header (Kafka has no per-message nack) and finishes the
// original; after max_deliveries the message goes to `<topic>.dlq.<group>`
// with the reason, the count and its original offset instead.
#include "messaging/kafka_bus.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/url.h"
#include "devcycle/error.h"
#include "devcycle/uuid.h"
#include "messaging/bus_checks.h"
#include "messaging/subscription_threads.h"

// librdkafka's C macros (RD_KAFKA_V_*) cast the C way.
#pragma GCC diagnostic ignored "-Wold-style-cast"

namespace devcycle::internal {

namespace {

using namespace std::chrono_literals;

// Headers the bus adds to what it writes; callers may not use the prefix.
constexpr const char* kIdHeader = "devcycle-id";
constexpr const char* kCountHeader = "devcycle-delivery-count";
constexpr const char* kOffsetHeader = "devcycle-original-offset";
constexpr const char* kPartitionHeader = "devcycle-original-partition";
constexpr const char* kPublishedHeader = "devcycle-published-at";
constexpr const char* kReasonHeader = "devcycle-reason";
constexpr const char* kDeadAtHeader = "devcycle-dead-at";
constexpr std::string_view kReservedPrefix = "devcycle-";

// Kafka's limit on topic names.
constexpr std::size_t kMaxTopicName = 249;

// How long a fetch waits to catch up with what the broker holds.
constexpr auto kCatchUp = 2s;

using Client = std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)>;
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t,
                                      decltype(&rd_kafka_topic_partition_list_destroy)>;

Error unavailable(const std::string& what, rd_kafka_resp_err_t err) {
  return Error(ErrorCode::kUnavailable, "kafka: " + what + ": " + rd_kafka_err2str(err));
}

Error unavailable(const std::string& what, rd_kafka_error_t* error) {
  std::string message = rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  return Error(ErrorCode::kUnavailable, "kafka: " + what + ": " + message);
}

rd_kafka_conf_t* make_conf(const std::vector<std::pair<std::string, std::string>>& settings) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  for (const auto& [k, v] : settings) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw Error(ErrorCode::kInternal, "kafka: setting " + k + "=" + v + ": " + err);
    }
  }
  return conf;
}

Client make_client(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);  // only a successful rd_kafka_new takes it
    throw Error(ErrorCode::kUnavailable, std::string("kafka: cannot create a client: ") + err);
  }
  return Client(rk, &rd_kafka_destroy);
}

std::string header(const rd_kafka_message_t* m, const char* name) {
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  const void* value = nullptr;
  std::size_t size = 0;
  if (rd_kafka_header_get_last(headers, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      !value)
    return {};
  return std::string(static_cast<const char*>(value), size);
}

std::int64_t header_int(const rd_kafka_message_t* m, const char* name, std::int64_t fallback) {
  const auto text = header(m, name);
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty() ? v : fallback;
}

std::map<std::string, std::string> user_headers(const rd_kafka_message_t* m) {
  std::map<std::string, std::string> out;
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
  const char* name = nullptr;
  const void* value = nullptr;
  std::size_t size = 0;
  for (std::size_t i = 0;
       rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
       ++i) {
    if (std::string_view(name).starts_with(kReservedPrefix)) continue;
    out[name] = value ? std::string(static_cast<const char*>(value), size) : std::string();
  }
  return out;
}

rd_kafka_headers_t* make_headers(const std::map<std::string, std::string>& user,
                                 const std::vector<std::pair<const char*, std::string>>& ours) {
  rd_kafka_headers_t* h = rd_kafka_headers_new(user.size() + ours.size());
  for (const auto& [k, v] : user)
    rd_kafka_header_add(h, k.data(), static_cast<ssize_t>(k.size()), v.data(),
                        static_cast<ssize_t>(v.size()));
  for (const auto& [k, v] : ours)
    rd_kafka_header_add(h, k, -1, v.data(), static_cast<ssize_t>(v.size()));
  return h;
}

// What a delivery report resolves; owned by librdkafka between produce and report.
struct Sent {
  std::function<void(const rd_kafka_message_t*)> done;
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  std::unique_ptr<Sent> sent(static_cast<Sent*>(m->_private));
  if (!sent) return;
  try {
    sent->done(m);
  } catch (...) {
    // A report callback must not throw into librdkafka.
  }
}

// A producer with a thread that polls its delivery reports continuously.
class Producer {
 public:
  Producer(const std::string& brokers, bool transactional, const std::string& client_id) {
    std::vector<std::pair<std::string, std::string>> settings{
        {"bootstrap.servers", brokers},
        {"client.id", client_id},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", "5"},
        {"message.timeout.ms", "120000"},
    };
    if (transactional) {
      settings.emplace_back("transactional.id", client_id);
      settings.emplace_back("transaction.timeout.ms", "120000");  // >= message.timeout.ms
    }
    rd_kafka_conf_t* conf = make_conf(settings);
    rd_kafka_conf_set_dr_msg_cb(conf, &on_delivery);
    client_ = make_client(RD_KAFKA_PRODUCER, conf);
    poller_ = std::thread([this] {
      while (!stop_) rd_kafka_poll(client_.get(), 50);
    });
  }

  ~Producer() {
    // Flush on shutdown: every queued message is delivered (or fails) first.
    rd_kafka_flush(client_.get(), 30'000);
    stop_ = true;
    poller_.join();
    rd_kafka_poll(client_.get(), 0);  // reports that arrived at the very end
  }

  rd_kafka_t* get() const { return client_.get(); }

  // Queues one message; `sent` runs on its delivery report. Waits while the
  // local queue is full. Throws Error when librdkafka refuses the message.
  void produce(const std::string& topic, const std::string& key, const std::string& payload,
               rd_kafka_headers_t* headers, Micros at, std::unique_ptr<Sent> sent) {
    for (;;) {
      const rd_kafka_resp_err_t err = rd_kafka_producev(
          client_.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(key.empty() ? nullptr : key.data(), key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(payload.data()), payload.size()),
          RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_TIMESTAMP(at / 1000),
          RD_KAFKA_V_OPAQUE(sent.get()), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        sent.release();  // the delivery report owns it now
        return;
      }
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        std::this_thread::sleep_for(1ms);  // back-pressure: the poller drains reports
        continue;
      }
      rd_kafka_headers_destroy(headers);  // not taken on failure
      throw unavailable("cannot queue a message to " + topic, err);
    }
  }

 private:
  Client client_{nullptr, &rd_kafka_destroy};
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

// One message the group took from Kafka and has not finished with.
struct Entry {
  enum class State { kWaiting, kOut, kRetrying };
  Delivery delivery;   // as handed out last (delivery_count 0 before the first)
  std::string source;  // the Kafka topic it was read from: the topic or the retry topic
  std::int32_t partition = 0;
  std::int64_t source_offset = 0;
  State state = State::kWaiting;
  Micros visible_at = 0;
  std::string reason;  // the last refusal
};

struct PartitionState {
  std::set<std::int64_t> open;  // offsets read and not finished
  std::int64_t next = -1;       // one past the last offset read (or the end seen)
  std::int64_t committed = -1;
  std::int64_t end_seen = -1;  // where the consumer last reached the partition's end
};

}  // namespace

class KafkaBus;

// The consumer of one (topic, group) and what it holds. Used under mu.
class GroupConsumer {
 public:
  GroupConsumer(KafkaBus& bus, std::string topic, std::string group);
  ~GroupConsumer();

  std::vector<Delivery> fetch(int max, const ConsumeOptions& options, Micros now);
  void ack(const std::vector<Delivery>& deliveries);
  void nack(const Delivery& d, const std::string& reason, const ConsumeOptions& options,
            Micros now);

 private:
  using Key = std::pair<std::string, std::int32_t>;

  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* parts, void* opaque);
  void take(rd_kafka_message_t* m);
  void catch_up();
  std::list<Entry>::iterator find(const Delivery& d);
  void finish(const Entry& e);
  void commit();
  void dead_letter(Entry& e, const std::string& reason, Micros now);

  KafkaBus& bus_;
  std::string topic_, group_, retry_;
  Client client_{nullptr, &rd_kafka_destroy};
  std::list<Entry> queue_;  // in the order taken from Kafka
  std::map<Key, PartitionState> partitions_;
  std::set<Key> assigned_;
  bool ever_assigned_ = false;
  std::vector<Key> to_commit_;

 public:
  std::mutex mu;
};

class KafkaBus final : public MessageBus {
 public:
  KafkaBus(std::string brokers, int partitions, int replication, BusOptions options)
      : brokers_(std::move(brokers)),
        partitions_(partitions),
        replication_(replication),
        options_(std::move(options)),
        name_("devcycle-bus-" + new_uuid_v7()) {
    if (!options_.clock)
      throw Error(ErrorCode::kInvalidArgument, "BusOptions.clock: must not be null");
    producer_ = std::make_unique<Producer>(brokers_, false, name_);
  }

  ~KafkaBus() override {
    subscriptions_->stop_all();
    {
      std::lock_guard lock(consumers_mu_);
      consumers_.clear();
    }
    txn_.reset();
    producer_.reset();
  }

  const std::string& brokers() const { return brokers_; }
  const std::string& name() const { return name_; }
  Producer& producer() { return *producer_; }
  Micros now() const { return options_.clock->now(); }

  std::future<Published> publish(Message message) override {
    check(message, "message");
    ensure_topics({message.topic});
    auto promise = std::make_shared<std::promise<Published>>();
    auto future = promise->get_future();
    const Micros at = now() / 1000 * 1000;  // Kafka keeps milliseconds
    const std::string id = new_uuid_v7();
    auto sent = std::make_unique<Sent>();
    sent->done = [promise, id, at, topic = message.topic](const rd_kafka_message_t* m) {
      if (m->err) {
        promise->set_exception(std::make_exception_ptr(
            unavailable("message to " + topic + " was not delivered", m->err)));
        return;
      }
      promise->set_value(Published{id, m->offset, at, m->partition});
    };
    producer_->produce(message.topic, message.key, message.payload,
                       make_headers(message.headers, {{kIdHeader, id}}), at, std::move(sent));
    return future;
  }

  std::future<std::vector<Published>> publish_batch(std::vector<Message> messages) override {
    for (std::size_t i = 0; i < messages.size(); ++i)
      check(messages[i], "messages[" + std::to_string(i) + "]");
    std::promise<std::vector<Published>> done;
    if (messages.empty()) {
      done.set_value({});
      return done.get_future();
    }
    std::vector<std::string> topics;
    for (const auto& m : messages) topics.push_back(m.topic);
    ensure_topics(topics);
    const Micros at = now() / 1000 * 1000;
    struct Reports {
      std::mutex mu;
      std::condition_variable cv;
      std::vector<Published> published;
      std::size_t remaining = 0;
      std::string error;
    };
    auto reports = std::make_shared<Reports>();
    reports->published.resize(messages.size());
    reports->remaining = messages.size();
    std::lock_guard txn_lock(txn_mu_);
    Producer& txn = transactional();
    if (auto* e = rd_kafka_begin_transaction(txn.get())) throw unavailable("begin a batch", e);
    try {
      for (std::size_t i = 0; i < messages.size(); ++i) {
        const auto& m = messages[i];
        const std::string id = new_uuid_v7();
        auto sent = std::make_unique<Sent>();
        sent->done = [reports, i, id, at](const rd_kafka_message_t* r) {
          std::lock_guard lock(reports->mu);
          if (r->err && reports->error.empty()) reports->error = rd_kafka_err2str(r->err);
          reports->published[i] = Published{id, r->offset, at, r->partition};
          if (--reports->remaining == 0) reports->cv.notify_all();
        };
        txn.produce(m.topic, m.key, m.payload, make_headers(m.headers, {{kIdHeader, id}}), at,
                    std::move(sent));
      }
    } catch (...) {
      if (auto* e = rd_kafka_abort_transaction(txn.get(), 30'000)) rd_kafka_error_destroy(e);
      throw;
    }
    if (auto* e = rd_kafka_commit_transaction(txn.get(), 60'000)) {
      const bool abortable = rd_kafka_error_txn_requires_abort(e);
      auto error = unavailable("the batch was not committed; nothing of it was published", e);
      if (abortable) {
        if (auto* a = rd_kafka_abort_transaction(txn.get(), 30'000)) rd_kafka_error_destroy(a);
      } else {
        txn_.reset();  // fatal for this producer: the next batch starts a new one
      }
      throw error;
    }
    // Committed: every report has come or is about to.
    std::unique_lock lock(reports->mu);
    if (!reports->cv.wait_for(lock, 60s, [&] { return reports->remaining == 0; }))
      throw Error(ErrorCode::kUnavailable, "kafka: the batch's delivery reports did not come");
    if (!reports->error.empty())
      throw Error(ErrorCode::kUnavailable, "kafka: batch not delivered: " + reports->error);
    done.set_value(std::move(reports->published));
    return done.get_future();
  }

  std::vector<Delivery> fetch(const std::string& topic, const std::string& group, int max,
                              const ConsumeOptions& options) override {
    check_topic(topic, "topic");
    check_group(group, "group");
    check_consume(options);
    if (max < 1 || max > 10'000) throw Error(ErrorCode::kInvalidArgument, "max: must be 1..10000");
    auto& c = consumer(topic, group);
    std::lock_guard lock(c.mu);
    return c.fetch(max, options, now());
  }

  void ack(const Delivery& d) override { ack(std::vector<Delivery>{d}); }

  void ack(const std::vector<Delivery>& deliveries) override {
    for (const auto& d : deliveries) {
      check_topic(d.message.topic, "delivery.message.topic");
      check_group(d.group, "delivery.group");
    }
    if (deliveries.empty()) return;
    // All of one (topic, group) in one call, or one call per consumer; a
    // refusal is checked for all before any is acknowledged.
    std::map<std::pair<std::string, std::string>, std::vector<Delivery>> by_consumer;
    for (const auto& d : deliveries) by_consumer[{d.message.topic, d.group}].push_back(d);
    std::vector<std::pair<GroupConsumer*, std::vector<Delivery>*>> targets;
    for (auto& [k, list] : by_consumer) {
      auto* c = existing_consumer(k.first, k.second);
      if (!c) throw not_pending(list.front());
      targets.emplace_back(c, &list);
    }
    if (targets.size() == 1) {
      std::lock_guard lock(targets[0].first->mu);
      targets[0].first->ack(*targets[0].second);
      return;
    }
    // Several consumers: lock them all (in address order) so that the
    // check and the acknowledgement are one step.
    std::sort(targets.begin(), targets.end());
    std::vector<std::unique_lock<std::mutex>> locks;
    for (auto& t : targets) locks.emplace_back(t.first->mu);
    for (auto& t : targets) t.first->ack(*t.second);
  }

  void nack(const Delivery& d, const std::string& reason, const ConsumeOptions& options) override {
    check_topic(d.message.topic, "delivery.message.topic");
    check_group(d.group, "delivery.group");
    check_consume(options);
    auto* c = existing_consumer(d.message.topic, d.group);
    if (!c) throw not_pending(d);
    std::lock_guard lock(c->mu);
    c->nack(d, reason.empty() ? "refused" : clean_reason(reason), options, now());
  }

  Subscription subscribe(const std::string& topic, const std::string& group, MessageHandler handler,
                         SubscribeOptions options) override {
    return subscriptions_->start(*this, topic, group, std::move(handler), std::move(options));
  }

  std::vector<DeadLetter> dead_letters(const std::string& topic, const std::string& group,
                                       int limit, std::int64_t after_offset) override {
    check_topic(topic, "topic");
    check_group(group, "group");
    if (limit < 1 || limit > 1000)
      throw Error(ErrorCode::kInvalidArgument, "limit: must be 1..1000");
    std::vector<DeadLetter> out;
    read_all(dlq_topic(topic, group), [&](const rd_kafka_message_t* m) {
      DeadLetter dl;
      auto& d = dl.delivery;
      d.id = header(m, kIdHeader);
      d.offset = header_int(m, kOffsetHeader, -1);
      d.partition = static_cast<int>(header_int(m, kPartitionHeader, 0));
      d.group = group;
      d.message.topic = topic;
      if (m->key) d.message.key.assign(static_cast<const char*>(m->key), m->key_len);
      d.message.headers = user_headers(m);
      if (m->payload) d.message.payload.assign(static_cast<const char*>(m->payload), m->len);
      d.delivery_count = static_cast<int>(header_int(m, kCountHeader, 0));
      d.published_at = header_int(m, kPublishedHeader, 0);
      dl.reason = header(m, kReasonHeader);
      dl.dead_at = header_int(m, kDeadAtHeader, 0);
      if (d.offset > after_offset) out.push_back(std::move(dl));
    });
    std::stable_sort(out.begin(), out.end(), [](const DeadLetter& a, const DeadLetter& b) {
      return a.delivery.offset < b.delivery.offset;
    });
    if (out.size() > static_cast<std::size_t>(limit)) out.resize(static_cast<std::size_t>(limit));
    return out;
  }

  int redrive(const std::string&, const std::string&, const std::vector<std::string>&) override {
    throw not_yet("redrive");
  }
  void seek(const std::string&, const std::string&, std::int64_t) override {
    throw not_yet("seek");
  }
  void seek_to_time(const std::string&, const std::string&, Micros) override {
    throw not_yet("seek_to_time");
  }
  std::int64_t purge(Micros) override { throw not_yet("purge"); }

  // Creates the topics that do not exist yet (once per bus and topic).
  void ensure_topics(const std::vector<std::string>& wanted) {
    std::vector<std::string> missing;
    {
      std::lock_guard lock(topics_mu_);
      for (const auto& t : wanted) {
        if (!known_topics_.count(t) &&
            std::find(missing.begin(), missing.end(), t) == missing.end())
          missing.push_back(t);
      }
    }
    if (missing.empty()) return;
    std::vector<rd_kafka_NewTopic_t*> specs;
    char err[512];
    for (const auto& t : missing) {
      auto* spec = rd_kafka_NewTopic_new(t.c_str(), partitions_, replication_, err, sizeof err);
      if (!spec) {
        for (auto* s : specs) rd_kafka_NewTopic_destroy(s);
        throw Error(ErrorCode::kInvalidArgument, "kafka: topic " + t + ": " + err);
      }
      specs.push_back(spec);
    }
    rd_kafka_queue_t* queue = rd_kafka_queue_new(producer_->get());
    rd_kafka_CreateTopics(producer_->get(), specs.data(), specs.size(), nullptr, queue);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 30'000);
    std::string failure;
    if (!ev) {
      failure = "no answer within 30 s";
    } else if (rd_kafka_event_error(ev)) {
      failure = rd_kafka_event_error_string(ev);
    } else if (const auto* result = rd_kafka_event_CreateTopics_result(ev)) {
      std::size_t n = 0;
      const rd_kafka_topic_result_t** topics = rd_kafka_CreateTopics_result_topics(result, &n);
      for (std::size_t i = 0; i < n; ++i) {
        const auto code = rd_kafka_topic_result_error(topics[i]);
        if (code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
          failure =
              std::string(rd_kafka_topic_result_name(topics[i])) + ": " + rd_kafka_err2str(code);
          break;
        }
      }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(queue);
    for (auto* s : specs) rd_kafka_NewTopic_destroy(s);
    if (!failure.empty())
      throw Error(ErrorCode::kUnavailable, "kafka: cannot create topics: " + failure);
    std::lock_guard lock(topics_mu_);
    known_topics_.insert(missing.begin(), missing.end());
  }

  static std::string retry_topic(const std::string& topic, const std::string& group) {
    return topic + ".retry." + group;
  }
  static std::string dlq_topic(const std::string& topic, const std::string& group) {
    return topic + ".dlq." + group;
  }

  // Produces on the idempotent producer and waits for the report.
  void produce_and_wait(const std::string& topic, const std::string& key,
                        const std::string& payload, rd_kafka_headers_t* headers, Micros at) {
    auto promise = std::make_shared<std::promise<void>>();
    auto future = promise->get_future();
    auto sent = std::make_unique<Sent>();
    sent->done = [promise, topic](const rd_kafka_message_t* m) {
      if (m->err) {
        promise->set_exception(
            std::make_exception_ptr(unavailable("message to " + topic + " not delivered", m->err)));
      } else {
        promise->set_value();
      }
    };
    producer_->produce(topic, key, payload, headers, at, std::move(sent));
    future.get();
  }

 private:
  void check(const Message& m, const std::string& field) {
    check_message(m, options_.max_payload_bytes, field);  // reserves the devcycle- headers too
  }

  static Error not_yet(const std::string& what) {
    return Error(ErrorCode::kInternal,
                 "kafka: " + what + " is not in the Kafka backend yet (docs/messaging.md)");
  }

  Producer& transactional() {
    if (!txn_) {
      auto p = std::make_unique<Producer>(brokers_, true, name_ + "-batches");
      if (auto* e = rd_kafka_init_transactions(p->get(), 30'000))
        throw unavailable("cannot start the batch producer", e);
      txn_ = std::move(p);
    }
    return *txn_;
  }

  GroupConsumer& consumer(const std::string& topic, const std::string& group) {
    if (std::max(retry_topic(topic, group).size(), dlq_topic(topic, group).size()) >
        kMaxTopicName) {
      throw Error(ErrorCode::kInvalidArgument,
                  "group: \"" + group + "\" with topic \"" + topic +
                      "\" makes a retry topic longer than Kafka's 249 characters");
    }
    std::lock_guard lock(consumers_mu_);
    auto& slot = consumers_[{topic, group}];
    if (!slot) {
      ensure_topics({topic, retry_topic(topic, group), dlq_topic(topic, group)});
      slot = std::make_unique<GroupConsumer>(*this, topic, group);
    }
    return *slot;
  }

  GroupConsumer* existing_consumer(const std::string& topic, const std::string& group) {
    std::lock_guard lock(consumers_mu_);
    const auto it = consumers_.find({topic, group});
    return it == consumers_.end() ? nullptr : it->second.get();
  }

  // Reads a whole topic, every partition from its start to its end, with a
  // consumer of no group.
  void read_all(const std::string& topic,
                const std::function<void(const rd_kafka_message_t*)>& fn) {
    ensure_topics({topic});
    Client c = make_client(RD_KAFKA_CONSUMER, make_conf({{"bootstrap.servers", brokers_},
                                                         {"group.id", name_ + "-reader"},
                                                         {"enable.auto.commit", "false"},
                                                         {"isolation.level", "read_committed"}}));
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_topic_t* handle = rd_kafka_topic_new(c.get(), topic.c_str(), nullptr);
    const auto err = rd_kafka_metadata(c.get(), 0, handle, &md, 10'000);
    rd_kafka_topic_destroy(handle);
    if (err) throw unavailable("cannot read the metadata of " + topic, err);
    std::map<std::int32_t, std::int64_t> ends;
    PartitionList parts(rd_kafka_topic_partition_list_new(1),
                        &rd_kafka_topic_partition_list_destroy);
    for (int i = 0; i < md->topic_cnt; ++i) {
      for (int p = 0; p < md->topics[i].partition_cnt; ++p) {
        const auto id = md->topics[i].partitions[p].id;
        std::int64_t low = 0, high = 0;
        if (const auto e =
                rd_kafka_query_watermark_offsets(c.get(), topic.c_str(), id, &low, &high, 10'000)) {
          rd_kafka_metadata_destroy(md);
          throw unavailable("cannot read the end of " + topic, e);
        }
        if (high > low) {
          ends[id] = high;
          rd_kafka_topic_partition_list_add(parts.get(), topic.c_str(), id)->offset = low;
        }
      }
    }
    rd_kafka_metadata_destroy(md);
    if (ends.empty()) return;
    if (const auto e = rd_kafka_assign(c.get(), parts.get()))
      throw unavailable("cannot read " + topic, e);
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    std::map<std::int32_t, std::int64_t> reached;
    while (reached.size() < ends.size()) {
      if (std::chrono::steady_clock::now() > deadline)
        throw Error(ErrorCode::kUnavailable, "kafka: reading " + topic + " took over 30 s");
      rd_kafka_message_t* m = rd_kafka_consumer_poll(c.get(), 100);
      if (!m) {
        // Control records (transaction markers) end some partitions: done
        // when the position has passed the end.
        PartitionList pos(rd_kafka_topic_partition_list_copy(parts.get()),
                          &rd_kafka_topic_partition_list_destroy);
        rd_kafka_position(c.get(), pos.get());
        for (int i = 0; i < pos->cnt; ++i) {
          const auto id = pos->elems[i].partition;
          if (pos->elems[i].offset >= ends[id]) reached[id] = pos->elems[i].offset;
        }
        continue;
      }
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && !reached.count(m->partition) &&
          m->offset < ends[m->partition]) {
        fn(m);
        if (m->offset + 1 >= ends[m->partition]) reached[m->partition] = m->offset + 1;
      }
      rd_kafka_message_destroy(m);
    }
  }

  std::string brokers_;
  int partitions_, replication_;
  BusOptions options_;
  std::string name_;
  std::unique_ptr<Producer> producer_;
  std::mutex txn_mu_;
  std::unique_ptr<Producer> txn_;
  std::mutex topics_mu_;
  std::set<std::string> known_topics_;
  std::mutex consumers_mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<GroupConsumer>> consumers_;
  std::shared_ptr<SubscriptionThreads> subscriptions_ = SubscriptionThreads::create();
};

GroupConsumer::GroupConsumer(KafkaBus& bus, std::string topic, std::string group)
    : bus_(bus),
      topic_(std::move(topic)),
      group_(std::move(group)),
      retry_(KafkaBus::retry_topic(topic_, group_)) {
  rd_kafka_conf_t* conf = make_conf({{"bootstrap.servers", bus.brokers()},
                                     {"client.id", bus.name()},
                                     {"group.id", group_},
                                     {"enable.auto.commit", "false"},
                                     {"enable.auto.offset.store", "false"},
                                     {"auto.offset.reset", "earliest"},
                                     {"isolation.level", "read_committed"},
                                     {"enable.partition.eof", "true"}});
  rd_kafka_conf_set_rebalance_cb(conf, &GroupConsumer::on_rebalance);
  rd_kafka_conf_set_opaque(conf, this);
  client_ = make_client(RD_KAFKA_CONSUMER, conf);
  rd_kafka_poll_set_consumer(client_.get());
  PartitionList topics(rd_kafka_topic_partition_list_new(2),
                       &rd_kafka_topic_partition_list_destroy);
  rd_kafka_topic_partition_list_add(topics.get(), topic_.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_topic_partition_list_add(topics.get(), retry_.c_str(), RD_KAFKA_PARTITION_UA);
  if (const auto err = rd_kafka_subscribe(client_.get(), topics.get()))
    throw unavailable("cannot subscribe to " + topic_, err);
  // Join the group before the first fetch, so that a fetch right after a
  // publish sees it.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!ever_assigned_) {
    if (std::chrono::steady_clock::now() > deadline)
      throw Error(ErrorCode::kUnavailable,
                  "kafka: group " + group_ + " got no partitions of " + topic_ + " within 30 s");
    if (rd_kafka_message_t* m = rd_kafka_consumer_poll(client_.get(), 100)) take(m);
  }
}

GroupConsumer::~GroupConsumer() {
  // Leaves the group at once, so that another member takes over now.
  rd_kafka_consumer_close(client_.get());
}

void GroupConsumer::on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                 rd_kafka_topic_partition_list_t* parts, void* opaque) {
  auto& self = *static_cast<GroupConsumer*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    rd_kafka_assign(rk, parts);
    for (int i = 0; i < parts->cnt; ++i)
      self.assigned_.insert({parts->elems[i].topic, parts->elems[i].partition});
    self.ever_assigned_ = true;
    return;
  }
  // Revoked: what was taken from these partitions is another member's now
  // (it reads from the committed offset); forget it here.
  for (int i = 0; i < parts->cnt; ++i) {
    const Key k{parts->elems[i].topic, parts->elems[i].partition};
    self.assigned_.erase(k);
    self.partitions_.erase(k);
    self.queue_.remove_if([&](const Entry& e) {
      return e.state != Entry::State::kRetrying && e.source == k.first && e.partition == k.second;
    });
  }
  rd_kafka_assign(rk, nullptr);
}

// A message (or an event) from the consumer.
void GroupConsumer::take(rd_kafka_message_t* m) {
  std::unique_ptr<rd_kafka_message_t, decltype(&rd_kafka_message_destroy)> own(
      m, &rd_kafka_message_destroy);
  const std::string source = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
  const Key k{source, m->partition};
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    auto& p = partitions_[k];
    p.end_seen = m->offset;
    p.next = std::max(p.next, m->offset);
    return;
  }
  if (m->err) return;  // transient consumer errors: librdkafka retries on its own
  auto& p = partitions_[k];
  p.open.insert(m->offset);
  p.next = std::max(p.next, m->offset + 1);

  Entry e;
  e.source = source;
  e.partition = m->partition;
  e.source_offset = m->offset;
  auto& d = e.delivery;
  d.id = header(m, kIdHeader);
  d.group = group_;
  d.message.topic = topic_;
  if (m->key) d.message.key.assign(static_cast<const char*>(m->key), m->key_len);
  d.message.headers = user_headers(m);
  if (m->payload) d.message.payload.assign(static_cast<const char*>(m->payload), m->len);
  if (source == retry_) {
    d.offset = header_int(m, kOffsetHeader, -1);
    d.partition = static_cast<int>(header_int(m, kPartitionHeader, 0));
    d.delivery_count = static_cast<int>(header_int(m, kCountHeader, 0));
    d.published_at = header_int(m, kPublishedHeader, 0);
    // The refused message keeps its place in the queue, ahead of later
    // messages of its key.
    for (auto& q : queue_) {
      if (q.state == Entry::State::kRetrying && q.delivery.id == d.id) {
        q.source = source;
        q.partition = m->partition;
        q.source_offset = m->offset;
        q.delivery.delivery_count = d.delivery_count;
        q.state = Entry::State::kWaiting;
        return;
      }
    }
  } else {
    d.offset = m->offset;
    d.partition = m->partition;
    rd_kafka_timestamp_type_t type;
    d.published_at = std::max<std::int64_t>(0, rd_kafka_message_timestamp(m, &type)) * 1000;
  }
  queue_.push_back(std::move(e));
}

// Reads what the broker holds now for this consumer's partitions (its end
// when the fetch began), or what arrives within kCatchUp.
void GroupConsumer::catch_up() {
  // Asked through the producer's connections: on the consumer's own, the
  // question would queue behind its long-polling fetch.
  std::map<Key, std::int64_t> ends;
  for (const auto& k : assigned_) {
    std::int64_t low = 0, high = 0;
    if (rd_kafka_query_watermark_offsets(bus_.producer().get(), k.first.c_str(), k.second, &low,
                                         &high, 5'000) == RD_KAFKA_RESP_ERR_NO_ERROR)
      ends[k] = high;
  }
  const auto deadline = std::chrono::steady_clock::now() + kCatchUp;
  auto caught_up = [&] {
    for (const auto& [k, end] : ends) {
      const auto it = partitions_.find(k);
      if (it == partitions_.end() || std::max(it->second.end_seen, it->second.next) < end)
        return false;
    }
    return true;
  };
  // Take whatever is ready without waiting, then wait only while behind.
  while (rd_kafka_message_t* m = rd_kafka_consumer_poll(client_.get(), 0)) take(m);
  while (!caught_up() && std::chrono::steady_clock::now() < deadline) {
    if (rd_kafka_message_t* m = rd_kafka_consumer_poll(client_.get(), 20)) take(m);
  }
}

std::vector<Delivery> GroupConsumer::fetch(int max, const ConsumeOptions& options, Micros now) {
  catch_up();
  std::vector<Delivery> out;
  std::set<std::string> keys_ahead;  // keys of earlier messages still in the queue
  const Micros timeout = options.visibility_timeout.count() * 1000;
  for (auto it = queue_.begin(); it != queue_.end() && static_cast<int>(out.size()) < max;) {
    Entry& e = *it;
    const auto& key = e.delivery.message.key;
    const bool behind = !key.empty() && keys_ahead.count(key);
    if (!key.empty()) keys_ahead.insert(key);
    if (behind || e.state == Entry::State::kRetrying ||
        (e.state == Entry::State::kOut && e.visible_at > now)) {
      ++it;
      continue;
    }
    if (e.state == Entry::State::kOut && e.delivery.delivery_count >= options.max_deliveries) {
      dead_letter(e,
                  "not acknowledged within the visibility timeout of " +
                      std::to_string(options.visibility_timeout.count()) + " ms",
                  now);
      finish(e);
      it = queue_.erase(it);
      continue;
    }
    e.state = Entry::State::kOut;
    e.visible_at = now + timeout;
    ++e.delivery.delivery_count;
    out.push_back(e.delivery);
    ++it;
  }
  commit();
  return out;
}

std::list<Entry>::iterator GroupConsumer::find(const Delivery& d) {
  return std::find_if(queue_.begin(), queue_.end(), [&](const Entry& e) {
    return e.state == Entry::State::kOut && e.delivery.id == d.id &&
           e.delivery.delivery_count == d.delivery_count && !d.id.empty();
  });
}

void GroupConsumer::ack(const std::vector<Delivery>& deliveries) {
  // All of them or none: find each first.
  std::vector<std::list<Entry>::iterator> found;
  for (const auto& d : deliveries) {
    auto it = find(d);
    if (it == queue_.end() || std::find(found.begin(), found.end(), it) != found.end())
      throw not_pending(d);
    found.push_back(it);
  }
  for (auto it : found) {
    finish(*it);
    queue_.erase(it);
  }
  commit();
}

void GroupConsumer::nack(const Delivery& d, const std::string& reason,
                         const ConsumeOptions& options, Micros now) {
  auto it = find(d);
  if (it == queue_.end()) throw not_pending(d);
  Entry& e = *it;
  e.reason = reason;
  if (e.delivery.delivery_count >= options.max_deliveries) {
    dead_letter(e, reason, now);
    finish(e);
    queue_.erase(it);
  } else {
    // Through the retry topic, so that a crash from here on still brings it
    // back with its count; the original is finished once the copy is stored.
    const auto& m = e.delivery;
    bus_.produce_and_wait(
        retry_, m.message.key, m.message.payload,
        make_headers(m.message.headers, {{kIdHeader, m.id},
                                         {kCountHeader, std::to_string(m.delivery_count)},
                                         {kOffsetHeader, std::to_string(m.offset)},
                                         {kPartitionHeader, std::to_string(m.partition)},
                                         {kPublishedHeader, std::to_string(m.published_at)},
                                         {kReasonHeader, reason}}),
        now);
    finish(e);
    e.state = Entry::State::kRetrying;
  }
  commit();
}

void GroupConsumer::dead_letter(Entry& e, const std::string& reason, Micros now) {
  const auto& m = e.delivery;
  bus_.produce_and_wait(
      KafkaBus::dlq_topic(topic_, group_), m.message.key, m.message.payload,
      make_headers(m.message.headers, {{kIdHeader, m.id},
                                       {kCountHeader, std::to_string(m.delivery_count)},
                                       {kOffsetHeader, std::to_string(m.offset)},
                                       {kPartitionHeader, std::to_string(m.partition)},
                                       {kPublishedHeader, std::to_string(m.published_at)},
                                       {kReasonHeader, reason},
                                       {kDeadAtHeader, std::to_string(now)}}),
      now);
}

// The entry's Kafka offset is done with; its partition may commit further.
void GroupConsumer::finish(const Entry& e) {
  const Key k{e.source, e.partition};
  const auto it = partitions_.find(k);
  if (it == partitions_.end()) return;  // revoked meanwhile
  it->second.open.erase(e.source_offset);
  to_commit_.push_back(k);
}

void GroupConsumer::commit() {
  if (to_commit_.empty()) return;
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(to_commit_.size())),
                     &rd_kafka_topic_partition_list_destroy);
  std::vector<std::pair<Key, std::int64_t>> moved;
  for (const auto& k : std::set<Key>(to_commit_.begin(), to_commit_.end())) {
    const auto it = partitions_.find(k);
    if (it == partitions_.end()) continue;
    auto& p = it->second;
    // The start of the unbroken run of finished offsets.
    const std::int64_t upto = p.open.empty() ? p.next : *p.open.begin();
    if (upto <= p.committed || upto < 0) continue;
    rd_kafka_topic_partition_list_add(list.get(), k.first.c_str(), k.second)->offset = upto;
    moved.emplace_back(k, upto);
  }
  to_commit_.clear();
  if (moved.empty()) return;
  if (const auto err = rd_kafka_commit(client_.get(), list.get(), 0)) {
    // Not fatal: the next commit covers it; a crash before then redelivers.
    (void)err;
    return;
  }
  for (const auto& [k, upto] : moved) partitions_[k].committed = upto;
}

std::unique_ptr<MessageBus> open_kafka_bus(const std::string& url, BusOptions options) {
  const auto parsed = parse_url(url, "bus");
  if (parsed.scheme != "kafka" || parsed.hosts.empty())
    fail_setting("bus", url, "is not kafka://host:port[,host:port...]");
  std::string brokers;
  for (const auto& h : parsed.hosts) {
    if (!brokers.empty()) brokers += ",";
    brokers += h.host + ":" + std::to_string(h.port.value_or(9092));
  }
  int partitions = 1, replication = 1;
  for (const auto& [k, v] : parsed.query) {
    int* target = k == "partitions" ? &partitions : k == "replication" ? &replication : nullptr;
    if (!target)
      fail_setting("bus", url,
                   "has an unknown parameter \"" + k + "\" (known: partitions, replication)");
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), *target);
    if (ec != std::errc() || end != v.data() + v.size() || *target < 1 || *target > 10'000)
      fail_setting("bus", url, k + "=" + v + " must be a whole number from 1 to 10000");
  }
  return std::make_unique<KafkaBus>(brokers, partitions, replication, std::move(options));
}

}  // namespace devcycle::internal
