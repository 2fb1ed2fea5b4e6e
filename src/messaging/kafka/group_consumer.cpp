#include "messaging/kafka/group_consumer.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "devcycle/common/error.h"
#include "messaging/bus_checks.h"
#include "messaging/kafka/headers.h"
#include "messaging/kafka/topic_names.h"

// librdkafka's C macros (RD_KAFKA_PARTITION_UA) cast the C way.
#pragma GCC diagnostic ignored "-Wold-style-cast"

namespace devcycle::internal::kafka {

namespace {

using namespace std::chrono_literals;

// How long a fetch waits to catch up with what the broker holds.
constexpr auto kCatchUp = 2s;

}  // namespace

GroupConsumer::GroupConsumer(const Context& context, std::string topic, std::string group)
    : context_(context),
      topic_(std::move(topic)),
      group_(std::move(group)),
      retry_(retry_topic(topic_, group_)) {
  rd_kafka_conf_t* conf =
      make_conf({{"bootstrap.servers", context_.brokers},
                 {"client.id", context_.client_id},
                 {"group.id", kafka_group(topic_, group_)},
                 {"enable.auto.commit", "false"},
                 {"enable.auto.offset.store", "false"},
                 {"auto.offset.reset", "earliest"},
                 {"isolation.level", "read_committed"},
                 {"enable.partition.eof", "true"},
                 {"session.timeout.ms", std::to_string(context_.session_timeout_ms)}});
  rd_kafka_conf_set_rebalance_cb(conf, &GroupConsumer::on_rebalance);
  rd_kafka_conf_set_opaque(conf, this);
  client_ = make_client(RD_KAFKA_CONSUMER, conf);
  rd_kafka_poll_set_consumer(client_.get());
  dead_ = context_.dead_letters->ids(topic_, group_);
  PartitionList topics = new_partition_list(2);
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
    self.offsets_.revoke(k);
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
    offsets_.reached_end(k, m->offset);
    return;
  }
  if (m->err) return;  // transient consumer errors: librdkafka retries on its own
  if (!offsets_.read(k, m->offset)) return;
  std::string id = header(m, kIdHeader);  // the bus's own copies carry it
  if (id.empty()) id = message_id(topic_, m->partition, m->offset, timestamp_ms(m));
  // A replay (after a seek) or a redrive of a message the queue holds
  // already: it is not taken twice.
  const bool held = std::any_of(queue_.begin(), queue_.end(), [&](const Entry& q) {
    return q.delivery.id == id && !id.empty() &&
           !(q.state == Entry::State::kRetrying && source == retry_);
  });
  if (held) return;
  if (source == retry_) {
    dead_.erase(id);  // redriven
  } else if (dead_.count(id)) {
    offsets_.passed_over(k);  // finished already: passed over
    return;
  }
  offsets_.open(k, m->offset);

  Entry e;
  e.source = source;
  e.partition = m->partition;
  e.source_offset = m->offset;
  auto& d = e.delivery;
  d.id = id;
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
    d.published_at = timestamp_ms(m) * 1000;
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
    if (watermarks(context_.producer->get(), k.first, k.second, low, high) ==
        RD_KAFKA_RESP_ERR_NO_ERROR)
      ends[k] = high;
  }
  const auto deadline = std::chrono::steady_clock::now() + kCatchUp;
  auto caught_up = [&] {
    for (const auto& [k, end] : ends) {
      if (!offsets_.caught_up(k, end)) return false;
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
  // What this call handed out, as it was: when a dead letter cannot be
  // stored, the call fails and they are as before it (no delivery used up
  // that nobody received).
  struct Before {
    std::list<Entry>::iterator it;
    Entry::State state;
    Micros visible_at;
  };
  std::vector<Before> handed;
  try {
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
      handed.push_back({it, e.state, e.visible_at});
      e.state = Entry::State::kOut;
      e.visible_at = now + timeout;
      ++e.delivery.delivery_count;
      out.push_back(e.delivery);
      ++it;
    }
  } catch (...) {
    for (const auto& b : handed) {
      b.it->state = b.state;
      b.it->visible_at = b.visible_at;
      --b.it->delivery.delivery_count;
    }
    commit();  // what was dead-lettered before the failure is finished
    throw;
  }
  commit();
  return out;
}

std::list<GroupConsumer::Entry>::iterator GroupConsumer::find(const Delivery& d) {
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
    context_.producer->produce_and_wait(
        retry_, m.message.key, m.message.payload,
        copy_headers(m, std::to_string(m.delivery_count), {{kReasonHeader, reason}}), now);
    finish(e);
    e.state = Entry::State::kRetrying;
  }
  commit();
}

void GroupConsumer::dead_letter(Entry& e, const std::string& reason, Micros now) {
  context_.dead_letters->store(topic_, group_, e.delivery, reason, now);
  // Only once the letter is stored: a message marked dead is skipped when
  // read again, and would otherwise be lost with a failed produce.
  dead_.insert(e.delivery.id);
}

void GroupConsumer::seek(const std::map<std::int32_t, std::int64_t>& offsets) {
  dead_.clear();  // a replay hands out again what it passes, dead letters included

  PartitionList list = new_partition_list(static_cast<int>(offsets.size()));
  for (const auto& [partition, offset] : offsets) {
    queue_.remove_if([&](const Entry& e) {
      return e.state == Entry::State::kWaiting && e.source == topic_ && e.partition == partition;
    });
    std::set<std::int64_t> unfinished;
    for (const auto& e : queue_) {
      if (e.state != Entry::State::kRetrying && e.source == topic_ && e.partition == partition)
        unfinished.insert(e.source_offset);
    }
    offsets_.seek({topic_, partition}, offset, unfinished);
    rd_kafka_topic_partition_list_add(list.get(), topic_.c_str(), partition)->offset = offset;
  }
  if (!assigned_.empty()) {
    PartitionList mine = new_partition_list(list->cnt);
    for (int i = 0; i < list->cnt; ++i) {
      if (assigned_.count({topic_, list->elems[i].partition}))
        rd_kafka_topic_partition_list_add(mine.get(), topic_.c_str(), list->elems[i].partition)
            ->offset = list->elems[i].offset;
    }
    if (mine->cnt > 0) {
      if (auto* e = rd_kafka_seek_partitions(client_.get(), mine.get(), 10'000))
        throw unavailable("cannot move group " + group_ + " in " + topic_, e);
    }
  }
  // Committed as the start of the unbroken run, so that handed-out
  // messages ahead of the new position still count as unfinished.
  commit();
}

// The entry's Kafka offset is done with; its partition may commit further.
void GroupConsumer::finish(const Entry& e) {
  offsets_.finish({e.source, e.partition}, e.source_offset);
}

void GroupConsumer::commit() {
  const auto due = offsets_.due();
  if (due.empty()) return;
  PartitionList list = new_partition_list(static_cast<int>(due.size()));
  for (const auto& c : due)
    rd_kafka_topic_partition_list_add(list.get(), c.partition.first.c_str(), c.partition.second)
        ->offset = c.offset;
  if (const auto err = rd_kafka_commit(client_.get(), list.get(), 0)) {
    // Not fatal: the next commit covers it; a crash before then redelivers.
    (void)err;
    return;
  }
  offsets_.committed(due);
}

}  // namespace devcycle::internal::kafka
