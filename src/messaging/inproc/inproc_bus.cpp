// inproc://: the message bus kept in the platform's Database. The facade:
// it checks what callers hand it and runs each call as one write closure,
// so nothing is ever half-done.
//
// A topic's messages are numbered by offset and stored in segments
// (inproc/topic_log.h, messaging/bus_segments.h). A consumer group has a
// position (the next message it has not taken yet) and a set of pending
// messages: taken, not yet acknowledged (inproc/group_queue.h). fetch()
// first takes new messages into the pending set, then hands out those that
// are visible and not held back by an earlier pending message with the
// same key; handing one out makes it invisible for the visibility timeout.
// ack() deletes it; nack() makes it visible again, or moves it to bus_dead
// after the last allowed delivery.
#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "devcycle/common/error.h"
#include "devcycle/messaging/messaging.h"
#include "messaging/bus_checks.h"
#include "messaging/bus_segments.h"
#include "messaging/inproc/group_queue.h"
#include "messaging/inproc/topic_log.h"
#include "messaging/subscription_threads.h"

namespace devcycle::internal {

namespace {

using inproc::append_messages;
using inproc::bury;
using inproc::delivery;
using inproc::next_offset;
using inproc::set_position;
using inproc::take;

class InprocBus final : public MessageBus {
 public:
  InprocBus(Database& db, BusOptions options) : db_(db), options_(std::move(options)) {
    if (!options_.clock)
      throw Error(ErrorCode::kInvalidArgument, "BusOptions.clock: must not be null");
    db_.migrate(MessageBus::migrations());
  }

  ~InprocBus() override { workers_->stop_all(); }

  std::future<Published> publish(Message message) override {
    check_message(message, options_.max_payload_bytes, "message");
    const Micros at = options_.clock->now();
    std::vector<Message> one;
    one.push_back(std::move(message));
    return submit_insert<Published>(
        std::move(one), at, [](std::vector<Published>&& p) { return std::move(p.front()); });
  }

  std::future<std::vector<Published>> publish_batch(std::vector<Message> messages) override {
    check_batch(messages, options_.max_payload_bytes);
    const Micros at = options_.clock->now();
    return submit_insert<std::vector<Published>>(
        std::move(messages), at, [](std::vector<Published>&& p) { return std::move(p); });
  }

  std::vector<Delivery> fetch(const std::string& topic, const std::string& group, int max,
                              const ConsumeOptions& options) override {
    check_topic(topic, "topic");
    check_group(group, "group");
    check_consume(options);
    if (max < 1 || max > 10'000) throw Error(ErrorCode::kInvalidArgument, "max: must be 1..10000");
    const Micros at = options_.clock->now();
    return db_.write([&](Txn& t) { return take(t, topic, group, max, options, at); });
  }

  void ack(const Delivery& d) override {
    check_topic(d.message.topic, "delivery.message.topic");
    check_group(d.group, "delivery.group");
    ack(std::vector<Delivery>{d});
  }

  void ack(const std::vector<Delivery>& deliveries) override {
    for (const auto& d : deliveries) {
      check_topic(d.message.topic, "delivery.message.topic");
      check_group(d.group, "delivery.group");
    }
    if (deliveries.empty()) return;
    db_.write([&](Txn& t) {
      // Runs of consecutive offsets of one topic and group go in one DELETE.
      for (std::size_t i = 0; i < deliveries.size();) {
        const auto& d = deliveries[i];
        std::size_t j = i + 1;
        while (j < deliveries.size() && deliveries[j].message.topic == d.message.topic &&
               deliveries[j].group == d.group &&
               deliveries[j].offset == d.offset + static_cast<std::int64_t>(j - i))
          ++j;
        const auto end = d.offset + static_cast<std::int64_t>(j - i);
        // The delivery count is the delivery's token: an acknowledgement of
        // an older delivery (whose visibility timeout passed and which was
        // handed out again) does not count. Throwing rolls back the others.
        const auto present = t.query(
            "SELECT msg_offset, delivery_count FROM bus_pending WHERE topic = $1 AND grp = $2 "
            "AND msg_offset >= $3 AND msg_offset < $4 ORDER BY msg_offset",
            {d.message.topic, d.group, d.offset, end});
        std::size_t k = i;
        for (const auto& r : present) {
          if (k == j || r[0].as_int() != deliveries[k].offset ||
              r[1].as_int() != deliveries[k].delivery_count)
            break;
          ++k;
        }
        if (k != j) throw not_pending(deliveries[k]);
        t.execute(
            "DELETE FROM bus_pending WHERE topic = $1 AND grp = $2 AND msg_offset >= $3 AND "
            "msg_offset < $4",
            {d.message.topic, d.group, d.offset, end});
        i = j;
      }
    });
  }

  void nack(const Delivery& d, const std::string& reason, const ConsumeOptions& options) override {
    check_topic(d.message.topic, "delivery.message.topic");
    check_group(d.group, "delivery.group");
    check_consume(options);
    const std::string why = reason.empty() ? "refused" : clean_reason(reason);
    const Micros at = options_.clock->now();
    const bool found = db_.write([&](Txn& t) {
      auto rs = t.query(
          "SELECT delivery_count FROM bus_pending WHERE topic = $1 AND grp = $2 AND msg_offset = "
          "$3 AND delivery_count = $4",
          {d.message.topic, d.group, d.offset, d.delivery_count});
      if (rs.empty()) return false;
      const auto count = rs[0][0].as_int();
      if (count >= options.max_deliveries) {
        bury(t, d.message.topic, d.group, d.offset, count, why, at);
      } else {
        t.execute(
            "UPDATE bus_pending SET visible_at = $4, reason = $5 WHERE topic = $1 AND grp = $2 "
            "AND msg_offset = $3",
            {d.message.topic, d.group, d.offset, at, why});
      }
      return true;
    });
    if (!found) throw not_pending(d);
    workers_->wake_all();
  }

  Subscription subscribe(const std::string& topic, const std::string& group, MessageHandler handler,
                         SubscribeOptions options) override {
    return workers_->start(*this, topic, group, std::move(handler), std::move(options));
  }

  std::vector<DeadLetter> dead_letters(const std::string& topic, const std::string& group,
                                       int limit, std::int64_t after_offset) override {
    check_dead_letters_query(topic, group, limit);
    return db_.read([&](Txn& t) {
      std::vector<DeadLetter> out;
      SegmentReader stored(t, topic);
      for (const auto& r :
           t.query("SELECT msg_offset, delivery_count, reason, dead_at FROM bus_dead "
                   "WHERE topic = $1 AND grp = $2 AND msg_offset > $3 "
                   "ORDER BY msg_offset LIMIT $4",
                   {topic, group, after_offset, limit})) {
        const auto* m = stored.at(r[0].as_int());
        if (!m) continue;  // dead letters are never purged
        DeadLetter dl;
        dl.delivery = delivery(topic, group, *m, static_cast<int>(r[1].as_int()));
        dl.reason = r[2].as_text();
        dl.dead_at = r[3].as_int();
        out.push_back(std::move(dl));
      }
      return out;
    });
  }

  int redrive(const std::string& topic, const std::string& group,
              const std::vector<std::string>& ids) override {
    check_topic(topic, "topic");
    check_group(group, "group");
    check_message_ids(ids);
    std::vector<std::string> unique;
    for (const auto& id : ids) {
      if (std::find(unique.begin(), unique.end(), id) == unique.end()) unique.push_back(id);
    }
    const Micros at = options_.clock->now();
    const int moved = db_.write([&](Txn& t) {
      SegmentReader stored(t, topic);
      std::map<std::string, const StoredMessage*> dead;  // by id
      for (const auto& r : t.query("SELECT msg_offset FROM bus_dead WHERE topic = $1 AND grp = $2",
                                   {topic, group})) {
        if (const auto* m = stored.at(r[0].as_int())) dead.emplace(m->id, m);
      }
      std::vector<const StoredMessage*> chosen;
      if (unique.empty()) {
        for (const auto& [id, m] : dead) chosen.push_back(m);
      } else {
        for (const auto& id : unique) {
          const auto it = dead.find(id);
          if (it == dead.end())
            throw Error(ErrorCode::kNotFound, "ids: message " + id + " is not a dead letter of " +
                                                  topic + " for group " + group);
          chosen.push_back(it->second);
        }
      }
      for (const auto* m : chosen) {
        t.execute("DELETE FROM bus_dead WHERE topic = $1 AND grp = $2 AND msg_offset = $3",
                  {topic, group, m->offset});
        t.execute(
            "INSERT INTO bus_pending (topic, grp, msg_offset, msg_key, delivery_count, "
            "visible_at, reason) VALUES ($1, $2, $3, $4, 0, $5, NULL) ON CONFLICT DO NOTHING",
            {topic, group, m->offset, m->key, at});
      }
      return static_cast<int>(chosen.size());
    });
    if (moved > 0) workers_->wake_all();
    return moved;
  }

  void seek(const std::string& topic, const std::string& group, std::int64_t offset) override {
    check_topic(topic, "topic");
    check_group(group, "group");
    if (offset < 0) throw Error(ErrorCode::kInvalidArgument, "offset: must not be negative");
    db_.write([&](Txn& t) {
      if (const auto end = next_offset(t, topic); offset > end) {
        throw Error(ErrorCode::kInvalidArgument,
                    "offset: " + std::to_string(offset) + " is beyond the end of topic " + topic +
                        " (its next offset is " + std::to_string(end) + ")");
      }
      set_position(t, topic, group, offset);
    });
    workers_->wake_all();
  }

  void seek_to_time(const std::string& topic, const std::string& group, Micros at) override {
    check_topic(topic, "topic");
    check_group(group, "group");
    db_.write([&](Txn& t) {
      auto rs = t.query(
          "SELECT MIN(first_offset) FROM bus_segments WHERE topic = $1 AND published_at >= $2",
          {topic, at});
      std::int64_t offset = 0;
      if (!rs.empty() && !rs[0][0].is_null()) {
        offset = rs[0][0].as_int();
      } else {
        offset = next_offset(t, topic);  // nothing that recent: only new messages
      }
      set_position(t, topic, group, offset);
    });
    workers_->wake_all();
  }

  std::int64_t purge(Micros before) override {
    return db_.write([&](Txn& t) {
      std::int64_t removed = 0;
      for (const auto& r : t.query("SELECT topic FROM bus_topics")) {
        // A segment goes whole, once none of its messages is pending or dead.
        for (const auto& gone : t.query(
                 "DELETE FROM bus_segments WHERE topic = $1 AND published_at < $2 "
                 "AND NOT EXISTS (SELECT 1 FROM bus_pending p WHERE p.topic = bus_segments.topic "
                 "AND p.msg_offset >= bus_segments.first_offset "
                 "AND p.msg_offset < bus_segments.first_offset + bus_segments.msg_count) "
                 "AND NOT EXISTS (SELECT 1 FROM bus_dead d WHERE d.topic = bus_segments.topic "
                 "AND d.msg_offset >= bus_segments.first_offset "
                 "AND d.msg_offset < bus_segments.first_offset + bus_segments.msg_count) "
                 "RETURNING msg_count",
                 {r[0].as_text(), before}))
          removed += gone[0].as_int();
      }
      return removed;
    });
  }

 private:
  // Stores messages and wakes the subscriptions once they are committed;
  // the future holds pick(the published list).
  template <class R, class Pick>
  std::future<R> submit_insert(std::vector<Message> messages, Micros at, Pick pick) {
    auto promise = std::make_shared<std::promise<R>>();
    auto future = promise->get_future();
    auto result = std::make_shared<std::vector<Published>>();
    db_.submit([messages = std::move(messages), at,
                result](Txn& t) { *result = append_messages(t, messages, at); },
               [promise, result, pick, workers = workers_](std::exception_ptr e) {
                 if (e) {
                   promise->set_exception(e);
                   return;
                 }
                 promise->set_value(pick(std::move(*result)));
                 workers->wake_all();
               });
    return future;
  }

  Database& db_;
  BusOptions options_;
  std::shared_ptr<SubscriptionThreads> workers_ = SubscriptionThreads::create();
};

}  // namespace

std::unique_ptr<MessageBus> open_inproc_bus(Database& db, BusOptions options) {
  return std::make_unique<InprocBus>(db, std::move(options));
}

}  // namespace devcycle::internal
