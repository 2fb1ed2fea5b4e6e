// kafka://: the message bus on Apache Kafka (librdkafka's C API). The
// facade: it checks what callers hand it and wires the parts together.
// How the contract maps onto Kafka: docs/decisions/0014-kafka-bus-design.md.
//
// Producing (producer.h, batch_producer.h): one idempotent producer
// (acks=all) for publish(), and transactional producers for publish_batch()
// (a batch is one Kafka transaction: all or nothing). A thread per producer
// polls delivery reports continuously; a publish resolves only on its
// report. A full local queue makes publish() wait (back-pressure), never
// drop.
//
// Consuming (group_consumer.h): one Kafka consumer per (topic, group) this
// bus fetches for, in the Kafka consumer group `<topic>/<group>`, holding
// what it took and has not finished with. The committed offset of each
// partition is the start of its unbroken run of finished offsets
// (offset_tracker.h), so a crash redelivers exactly what was not finished.
//
// A refusal republishes the message to the retry topic with its delivery
// count in a header (Kafka has no per-message nack) and finishes the
// original; after max_deliveries the message goes to `<topic>.dlq.<group>`
// with the reason, the count and its original offset instead
// (dead_letters.h). Topics are created and purged by topic_admin.h.
#include "messaging/kafka/kafka_bus.h"

#include <algorithm>
#include <charconv>
#include <memory>
#include <mutex>
#include <optional>

#include "common/url.h"
#include "devcycle/common/error.h"
#include "devcycle/common/uuid.h"
#include "messaging/bus_checks.h"
#include "messaging/kafka/batch_producer.h"
#include "messaging/kafka/dead_letters.h"
#include "messaging/kafka/delivery_reports.h"
#include "messaging/kafka/group_consumer.h"
#include "messaging/kafka/handles.h"
#include "messaging/kafka/headers.h"
#include "messaging/kafka/producer.h"
#include "messaging/kafka/topic_admin.h"
#include "messaging/kafka/topic_names.h"
#include "messaging/subscription_threads.h"

namespace devcycle::internal {

namespace {

using kafka::GroupConsumer;
using kafka::Producer;

class KafkaBus final : public MessageBus {
 public:
  KafkaBus(std::string brokers, int partitions, int replication, int connect_timeout_ms,
           int close_timeout_ms, int session_timeout_ms, BusOptions options)
      : brokers_(std::move(brokers)),
        session_timeout_ms_(session_timeout_ms),
        options_(std::move(options)),
        name_("devcycle-bus-" + new_uuid_v7()) {
    if (!options_.clock)
      throw Error(ErrorCode::kInvalidArgument, "BusOptions.clock: must not be null");
    const auto max_record = kafka::max_record_bytes(options_.max_payload_bytes);
    producer_ = std::make_unique<Producer>(brokers_, false, name_, close_timeout_ms, max_record);
    // Fail at open, clearly, rather than at the first publish.
    const rd_kafka_metadata_t* md = nullptr;
    if (const auto err = rd_kafka_metadata(producer_->get(), 0, nullptr, &md, connect_timeout_ms)) {
      throw Error(ErrorCode::kUnavailable,
                  "bus: no Kafka broker of " + brokers_ + " answered within " +
                      std::to_string(connect_timeout_ms) + " ms: " + rd_kafka_err2str(err));
    }
    rd_kafka_metadata_destroy(md);
    batches_ =
        std::make_unique<kafka::BatchProducer>(brokers_, name_, close_timeout_ms, max_record);
    topics_ =
        std::make_unique<kafka::TopicAdmin>(producer_->get(), partitions, replication, max_record);
    dead_letters_ = std::make_unique<kafka::DeadLetterStore>(*producer_, *topics_, brokers_, name_);
  }

  ~KafkaBus() override {
    subscriptions_->stop_all();
    {
      std::lock_guard lock(consumers_mu_);
      consumers_.clear();
    }
    batches_->close();
    producer_.reset();
  }

  // Every producer started so far: publish()'s and the batches'.
  std::vector<const Producer*> producers() {
    std::vector<const Producer*> out{producer_.get()};
    for (const auto* p : batches_->producers()) out.push_back(p);
    return out;
  }

  std::future<Published> publish(Message message) override {
    check_message(message, options_.max_payload_bytes, "message");
    topics_->ensure_topic(message.topic);
    kafka::TopicAdmin::check_fits(message, topics_->topic_limit(message.topic), std::nullopt);
    const Micros at = now() / 1000 * 1000;  // Kafka keeps milliseconds
    auto sent = std::make_unique<kafka::SentOne>(std::move(message.payload));
    auto future = sent->promise.get_future();
    auto* headers = message.headers.empty() ? nullptr : kafka::make_headers(message.headers, {});
    const std::string& payload = sent->payload;
    producer_->produce(message.topic, message.key, payload, headers, at, sent.get(),
                       /*copy=*/false);
    sent.release();  // its report disposes of it
    return future;
  }

  std::future<std::vector<Published>> publish_batch(std::vector<Message> messages) override {
    std::vector<std::uint32_t> topic_of;
    const auto topics = check_batch(messages, options_.max_payload_bytes, &topic_of);
    std::promise<std::vector<Published>> done;
    if (messages.empty()) {
      done.set_value({});
      return done.get_future();
    }
    topics_->ensure_topics(topics, /*user=*/true);
    std::vector<std::size_t> limits;
    for (const auto& t : topics) limits.push_back(topics_->topic_limit(t));
    for (std::size_t i = 0; i < messages.size(); ++i)
      kafka::TopicAdmin::check_fits(messages[i], limits[topic_of[i]], i);
    const Micros at = now() / 1000 * 1000;
    done.set_value(batches_->publish(messages, topics, topic_of, at));
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
    check_dead_letters_query(topic, group, limit);
    return dead_letters_->list(topic, group, limit, after_offset);
  }

  int redrive(const std::string& topic, const std::string& group,
              const std::vector<std::string>& ids) override {
    check_topic(topic, "topic");
    check_group(group, "group");
    check_message_ids(ids);
    const int moved = dead_letters_->redrive(topic, group, ids, *options_.clock);
    subscriptions_->wake_all();
    return moved;
  }

  void seek(const std::string& topic, const std::string& group, std::int64_t offset) override {
    check_topic(topic, "topic");
    check_group(group, "group");
    if (offset < 0) throw Error(ErrorCode::kInvalidArgument, "offset: must not be negative");
    const auto ends = topics_->partition_ends(topic);
    std::map<std::int32_t, std::int64_t> offsets;
    for (const auto& [partition, end] : ends) {
      if (offset > end) {
        throw Error(ErrorCode::kInvalidArgument,
                    "offset: " + std::to_string(offset) + " is beyond the end of topic " + topic +
                        (ends.size() > 1 ? " partition " + std::to_string(partition) : "") +
                        " (its next offset is " + std::to_string(end) + ")");
      }
      offsets[partition] = offset;
    }
    move_group(topic, group, offsets);
  }

  void seek_to_time(const std::string& topic, const std::string& group, Micros at) override {
    check_topic(topic, "topic");
    check_group(group, "group");
    move_group(topic, group, topics_->offsets_at(topic, at));
  }

  std::int64_t purge(Micros before) override { return topics_->purge(before); }

 private:
  Micros now() const { return options_.clock->now(); }

  // Moves the group: through this bus's consumer of it when there is one,
  // else by committing the offsets for the group (refused by Kafka while
  // the group has members elsewhere).
  void move_group(const std::string& topic, const std::string& group,
                  const std::map<std::int32_t, std::int64_t>& offsets) {
    if (auto* c = existing_consumer(topic, group)) {
      std::lock_guard lock(c->mu);
      c->seek(offsets);
    } else {
      kafka::Client client = kafka::make_client(
          RD_KAFKA_CONSUMER, kafka::make_conf({{"bootstrap.servers", brokers_},
                                               {"group.id", kafka::kafka_group(topic, group)},
                                               {"enable.auto.commit", "false"}}));
      kafka::PartitionList list = kafka::new_partition_list(static_cast<int>(offsets.size()));
      for (const auto& [partition, offset] : offsets)
        rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = offset;
      if (const auto err = rd_kafka_commit(client.get(), list.get(), 0)) {
        throw Error(ErrorCode::kConflict,
                    "kafka: cannot move group " + group + " in " + topic + ": " +
                        rd_kafka_err2str(err) +
                        " (a group with members elsewhere is moved from one of them)");
      }
    }
    subscriptions_->wake_all();
  }

  GroupConsumer& consumer(const std::string& topic, const std::string& group) {
    if (kafka::redriven_topic(topic, group).size() > kafka::kMaxTopicName) {
      throw Error(ErrorCode::kInvalidArgument,
                  "group: \"" + group + "\" with topic \"" + topic +
                      "\" makes a retry topic longer than Kafka's 249 characters");
    }
    topics_->add_user_topic(topic);
    std::lock_guard lock(consumers_mu_);
    auto& slot = consumers_[{topic, group}];
    if (!slot) {
      topics_->ensure_topics({topic, kafka::retry_topic(topic, group),
                              kafka::dlq_topic(topic, group), kafka::redriven_topic(topic, group)});
      slot = std::make_unique<GroupConsumer>(
          GroupConsumer::Context{brokers_, name_, session_timeout_ms_, producer_.get(),
                                 dead_letters_.get()},
          topic, group);
    }
    return *slot;
  }

  GroupConsumer* existing_consumer(const std::string& topic, const std::string& group) {
    std::lock_guard lock(consumers_mu_);
    const auto it = consumers_.find({topic, group});
    return it == consumers_.end() ? nullptr : it->second.get();
  }

  std::string brokers_;
  int session_timeout_ms_;  // how soon a consumer that died loses its partitions
  BusOptions options_;
  std::string name_;
  std::unique_ptr<Producer> producer_;
  std::unique_ptr<kafka::BatchProducer> batches_;
  std::unique_ptr<kafka::TopicAdmin> topics_;
  std::unique_ptr<kafka::DeadLetterStore> dead_letters_;
  std::mutex consumers_mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<GroupConsumer>> consumers_;
  std::shared_ptr<SubscriptionThreads> subscriptions_ = SubscriptionThreads::create();
};

}  // namespace

std::unique_ptr<MessageBus> open_kafka_bus(const std::string& url, BusOptions options) {
  const auto parsed = parse_url(url, "bus");
  if (parsed.scheme != "kafka" || parsed.hosts.empty())
    fail_setting("bus", url, "is not kafka://host:port[,host:port...]");
  std::string brokers;
  for (const auto& h : parsed.hosts) {
    if (!brokers.empty()) brokers += ",";
    brokers += h.host + ":" + std::to_string(h.port.value_or(9092));
  }
  int partitions = 1, replication = 1, connect_timeout_ms = 10'000, close_timeout_ms = 30'000,
      session_timeout_ms = 45'000;
  for (const auto& [k, v] : parsed.query) {
    int* target = k == "partitions"           ? &partitions
                  : k == "replication"        ? &replication
                  : k == "connect_timeout_ms" ? &connect_timeout_ms
                  : k == "close_timeout_ms"   ? &close_timeout_ms
                  : k == "session_timeout_ms" ? &session_timeout_ms
                                              : nullptr;
    if (!target)
      fail_setting("bus", url,
                   "has an unknown parameter \"" + k +
                       "\" (known: partitions, replication, connect_timeout_ms, "
                       "close_timeout_ms, session_timeout_ms)");
    // The session timeout within the broker's defaults for
    // group.min/max.session.timeout.ms.
    const int least = target == &session_timeout_ms ? 6'000 : 1;
    const int most = target == &session_timeout_ms                                  ? 1'800'000
                     : target == &connect_timeout_ms || target == &close_timeout_ms ? 600'000
                                                                                    : 10'000;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), *target);
    if (ec != std::errc() || end != v.data() + v.size() || *target < least || *target > most)
      fail_setting("bus", url,
                   k + "=" + v + " must be a whole number from " + std::to_string(least) + " to " +
                       std::to_string(most));
  }
  return std::make_unique<KafkaBus>(brokers, partitions, replication, connect_timeout_ms,
                                    close_timeout_ms, session_timeout_ms, std::move(options));
}

std::vector<std::map<std::string, std::string>> kafka_producer_settings(
    MessageBus& bus, const std::vector<std::string>& names) {
  auto* kafka_bus = dynamic_cast<KafkaBus*>(&bus);
  if (!kafka_bus) throw Error(ErrorCode::kInvalidArgument, "bus: not a kafka:// bus");
  std::vector<std::map<std::string, std::string>> out;
  for (const Producer* p : kafka_bus->producers()) {
    const rd_kafka_conf_t* conf = rd_kafka_conf(p->get());
    auto& settings = out.emplace_back();
    for (const auto& name : names) {
      char value[512];
      std::size_t size = sizeof value;
      if (rd_kafka_conf_get(conf, name.c_str(), value, &size) == RD_KAFKA_CONF_OK)
        settings[name] = value;
    }
  }
  return out;
}

}  // namespace devcycle::internal
