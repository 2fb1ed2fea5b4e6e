// inproc://: the message bus kept in the platform's Database.
//
// A topic's messages are numbered by offset and stored in segments
// (messaging/bus_segments.h). A consumer group
// has a position (the next message it has not taken yet) and a set of
// pending messages: taken, not yet acknowledged. fetch() first takes new
// messages into the pending set, then hands out those that are visible and
// not held back by an earlier pending message with the same key; handing
// one out makes it invisible for the visibility timeout. ack() deletes it;
// nack() makes it visible again, or moves it to bus_dead after the last
// allowed delivery. Every step is one write closure, so nothing is ever
// half-done.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/field_checks.h"
#include "common/json_schema_internal.h"
#include "common/sql_rows.h"
#include "common/utf8.h"
#include "devcycle/common/error.h"
#include "devcycle/common/uuid.h"
#include "devcycle/messaging/messaging.h"
#include "messaging/bus_checks.h"
#include "messaging/bus_segments.h"
#include "messaging/subscription_threads.h"

namespace devcycle::internal {

namespace {

// How many messages one group may hold pending; fetch() takes no new ones
// beyond it, which bounds the work of one fetch.
constexpr int kMaxPending = 10'000;

std::string headers_json(const std::map<std::string, std::string>& headers) {
  return headers.empty() ? "{}" : nlohmann::json(headers).dump();
}

std::map<std::string, std::string> parse_headers(const std::string& text) {
  return nlohmann::json::parse(text).get<std::map<std::string, std::string>>();
}

Micros ms(std::chrono::milliseconds d) { return d.count() * 1000; }

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
    db_.submit(
        [messages = std::move(messages), at, result](Txn& t) { *result = insert(t, messages, at); },
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

  static std::int64_t next_offset(Txn& t, const std::string& topic) {
    auto rs = t.query("SELECT next_offset FROM bus_topics WHERE topic = $1", {topic});
    return rs.empty() ? 0 : rs[0][0].as_int();
  }

  // Stores `messages` in order; each topic's offset counter is read and
  // written once per call, whatever the number of messages, and each
  // topic's messages go into segments of consecutive offsets.
  static std::vector<Published> insert(Txn& t, const std::vector<Message>& messages, Micros at) {
    struct Run {
      const std::string* topic;
      std::vector<const Message*> messages;
      std::vector<std::size_t> index;  // of each in `messages` of the call
    };
    std::vector<Run> runs;
    std::size_t current = 0;
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const auto& m = messages[i];
      if (runs.empty() || *runs[current].topic != m.topic) {
        current = static_cast<std::size_t>(
            std::find_if(runs.begin(), runs.end(),
                         [&](const Run& r) { return *r.topic == m.topic; }) -
            runs.begin());
        if (current == runs.size()) runs.push_back({&m.topic, {}, {}});
      }
      runs[current].messages.push_back(&m);
      runs[current].index.push_back(i);
    }
    // Each topic's offsets reserved in one statement that locks the topic's
    // row until the commit: publishers in other transactions (other
    // processes, on PostgreSQL) wait and take the offsets after these, so
    // no two take the same and a topic's offsets commit in order. Topics in
    // name order, so that two publishers never wait for each other.
    std::sort(runs.begin(), runs.end(),
              [](const Run& a, const Run& b) { return *a.topic < *b.topic; });
    std::vector<Published> out(messages.size());
    for (auto& run : runs) {
      const auto n = static_cast<std::int64_t>(run.messages.size());
      const auto rs = t.query(
          "INSERT INTO bus_topics (topic, next_offset) VALUES ($1, $2) ON CONFLICT (topic) DO "
          "UPDATE SET next_offset = bus_topics.next_offset + excluded.next_offset "
          "RETURNING next_offset",
          {*run.topic, n});
      const auto first = rs[0][0].as_int() - n;
      std::vector<std::string> ids, headers;
      ids.reserve(run.messages.size());
      headers.reserve(run.messages.size());
      for (std::size_t k = 0; k < run.messages.size(); ++k) {
        ids.push_back(new_uuid_v7());
        headers.push_back(headers_json(run.messages[k]->headers));
        out[run.index[k]] = Published{ids.back(), first + static_cast<std::int64_t>(k), at};
      }
      write_segments(t, *run.topic, first, run.messages, ids, headers, at);
    }
    return out;
  }

  // INSERT INTO bus_pending of `rows` new pending messages ($1..$5, ...).
  static const std::string& pending_insert_sql(std::size_t rows) {
    static const auto all = multi_row_statements(
        "INSERT INTO bus_pending (topic, grp, msg_offset, msg_key, delivery_count, visible_at, "
        "reason) VALUES ",
        "(?, ?, ?, ?, 0, ?, NULL)", " ON CONFLICT DO NOTHING");
    return all.at(rows);
  }

  static void set_position(Txn& t, const std::string& topic, const std::string& group,
                           std::int64_t offset) {
    t.execute(
        "INSERT INTO bus_groups (topic, grp, position) VALUES ($1, $2, $3) "
        "ON CONFLICT (topic, grp) DO UPDATE SET position = excluded.position",
        {topic, group, offset});
  }

  static void bury(Txn& t, const std::string& topic, const std::string& group, std::int64_t offset,
                   std::int64_t count, const std::string& reason, Micros at) {
    t.execute("DELETE FROM bus_pending WHERE topic = $1 AND grp = $2 AND msg_offset = $3",
              {topic, group, offset});
    t.execute(
        "INSERT INTO bus_dead (topic, grp, msg_offset, delivery_count, reason, dead_at) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (topic, grp, msg_offset) DO UPDATE SET "
        "delivery_count = excluded.delivery_count, reason = excluded.reason, "
        "dead_at = excluded.dead_at",
        {topic, group, offset, count, reason, at});
  }

  static Delivery delivery(const std::string& topic, const std::string& group,
                           const StoredMessage& m, int count) {
    Delivery d;
    d.id = m.id;
    d.offset = m.offset;
    d.group = group;
    d.message.topic = topic;
    d.message.key = m.key;
    d.message.headers = parse_headers(m.headers);
    d.message.payload = m.payload;
    d.delivery_count = count;
    d.published_at = m.published_at;
    return d;
  }

  // One fetch, inside one transaction.
  static std::vector<Delivery> take(Txn& t, const std::string& topic, const std::string& group,
                                    int max, const ConsumeOptions& o, Micros at) {
    // A group starts at the topic's beginning the first time it is seen.
    // Its row is locked first, so that takes of one group run one at a time
    // even in several processes (PostgreSQL; SQLite has one writer): two
    // would otherwise both hand out the same visible messages.
    t.execute(
        "INSERT INTO bus_groups (topic, grp, position) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING",
        {topic, group});
    const std::int64_t position =
        t.query(std::string("SELECT position FROM bus_groups WHERE topic = $1 AND grp = $2") +
                    (t.dialect() == Dialect::kPostgres ? " FOR UPDATE" : ""),
                {topic, group})[0][0]
            .as_int();
    // Take new messages into the pending set, up to the group's bound.
    const auto pending_count =
        t.query("SELECT COUNT(*) FROM bus_pending WHERE topic = $1 AND grp = $2",
                {topic, group})[0][0]
            .as_int();
    const auto room = std::min<std::int64_t>(kMaxPending - pending_count, std::max(max, 64));
    const auto available = next_offset(t, topic) - position;
    SegmentReader stored(t, topic);
    if (const auto n = std::min(room, available); n > 0) {
      // Offsets are contiguous, so [position, position + n) are the next n
      // messages (those purged meanwhile are skipped). Some may still be
      // pending after a seek back: kept as they are.
      const auto taken = stored.range(position, position + n);
      std::vector<Value> params;
      for (std::size_t i = 0; i < taken.size(); i += 64) {
        const auto rows = std::min<std::size_t>(64, taken.size() - i);
        params.clear();
        for (std::size_t k = i; k < i + rows; ++k)
          params.insert(params.end(), {Value(topic), Value(group), Value(taken[k]->offset),
                                       Value(taken[k]->key), Value(at)});
        t.execute(pending_insert_sql(rows), params);
      }
      set_position(t, topic, group, position + n);
    }
    // Hand out what is visible, in offset order, skipping keys held by an
    // earlier pending message.
    auto rows = t.query(
        "SELECT msg_offset, msg_key, delivery_count, visible_at, reason FROM bus_pending "
        "WHERE topic = $1 AND grp = $2 ORDER BY msg_offset",
        {topic, group});
    std::set<std::string> held;
    std::vector<std::pair<std::int64_t, int>> chosen;  // offset, new delivery count
    for (const auto& r : rows) {
      if (static_cast<int>(chosen.size()) >= max) break;
      const auto offset = r[0].as_int();
      const auto& key = r[1].as_text();
      const auto count = r[2].as_int();
      const bool visible = r[3].as_int() <= at;
      const bool blocked = !key.empty() && held.count(key);
      if (!key.empty()) held.insert(key);
      if (!visible || blocked) continue;
      if (count >= o.max_deliveries) {
        // Its last delivery expired: it will not be delivered again.
        bury(t, topic, group, offset, count,
             r[4].is_null() ? "not acknowledged within the visibility timeout, " +
                                  std::to_string(count) + " deliveries"
                            : r[4].as_text(),
             at);
        if (!key.empty()) held.erase(key);  // the next message of the key may go
        continue;
      }
      chosen.emplace_back(offset, static_cast<int>(count) + 1);
    }
    std::vector<Delivery> out;
    if (chosen.empty()) return out;
    out.reserve(chosen.size());
    // One UPDATE and one read for the whole span of chosen offsets (pending
    // messages lie within it, so the span is at most the pending bound).
    const auto first = chosen.front().first, last = chosen.back().first;
    std::set<std::int64_t> wanted;
    for (const auto& c : chosen) wanted.insert(c.first);
    if (wanted.size() == static_cast<std::size_t>(last - first + 1)) {
      t.execute(
          "UPDATE bus_pending SET delivery_count = delivery_count + 1, visible_at = $5, "
          "reason = NULL WHERE topic = $1 AND grp = $2 AND msg_offset >= $3 AND msg_offset <= $4",
          {topic, group, first, last, at + ms(o.visibility_timeout)});
    } else {
      for (const auto& [offset, count] : chosen) {
        t.execute(
            "UPDATE bus_pending SET delivery_count = $4, visible_at = $5, reason = NULL WHERE "
            "topic = $1 AND grp = $2 AND msg_offset = $3",
            {topic, group, offset, count, at + ms(o.visibility_timeout)});
      }
    }
    // Pending messages are never purged; one read for a contiguous span,
    // else one per segment (a replay, a redrive, keys held back).
    if (wanted.size() == static_cast<std::size_t>(last - first + 1)) stored.range(first, last + 1);
    for (const auto& [offset, count] : chosen) {
      const auto* m = stored.at(offset);
      if (!m) {
        throw Error(ErrorCode::kInternal, "bus: pending message " + topic + " offset " +
                                              std::to_string(offset) + " is not stored");
      }
      out.push_back(delivery(topic, group, *m, count));
    }
    return out;
  }

  // A subscription's thread. Nothing may escape it: every failure either
  // leaves a message pending (its visibility timeout decides) or is retried.

  Database& db_;
  BusOptions options_;
  std::shared_ptr<SubscriptionThreads> workers_ = SubscriptionThreads::create();
};

}  // namespace

std::unique_ptr<MessageBus> open_inproc_bus(Database& db, BusOptions options) {
  return std::make_unique<InprocBus>(db, std::move(options));
}

}  // namespace devcycle::internal
