#include "messaging/kafka/dead_letters.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <functional>
#include <map>

#include "devcycle/common/error.h"
#include "messaging/kafka/handles.h"
#include "messaging/kafka/headers.h"
#include "messaging/kafka/topic_names.h"

namespace devcycle::internal::kafka {

namespace {

using namespace std::chrono_literals;

// Reads a whole topic, every partition from its start to its end, with a
// consumer of group `group_id` that commits nothing.
void read_all(const std::string& brokers, const std::string& group_id, const std::string& topic,
              const std::function<void(const rd_kafka_message_t*)>& fn) {
  Client c = make_client(RD_KAFKA_CONSUMER, make_conf({{"bootstrap.servers", brokers},
                                                       {"group.id", group_id},
                                                       {"enable.auto.commit", "false"},
                                                       {"isolation.level", "read_committed"}}));
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* handle = rd_kafka_topic_new(c.get(), topic.c_str(), nullptr);
  const auto err = rd_kafka_metadata(c.get(), 0, handle, &md, 10'000);
  rd_kafka_topic_destroy(handle);
  if (err) throw unavailable("cannot read the metadata of " + topic, err);
  std::map<std::int32_t, std::int64_t> ends;
  PartitionList parts = new_partition_list(1);
  for (int i = 0; i < md->topic_cnt; ++i) {
    for (int p = 0; p < md->topics[i].partition_cnt; ++p) {
      const auto id = md->topics[i].partitions[p].id;
      std::int64_t low = 0, high = 0;
      if (const auto e = watermarks(c.get(), topic, id, low, high)) {
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

}  // namespace

void DeadLetterStore::store(const std::string& topic, const std::string& group, const Delivery& d,
                            const std::string& reason, Micros now) {
  producer_.produce_and_wait(
      dlq_topic(topic, group), d.message.key, d.message.payload,
      copy_headers(d, std::to_string(d.delivery_count),
                   {{kReasonHeader, reason}, {kDeadAtHeader, std::to_string(now)}}),
      now);
}

std::vector<DeadLetter> DeadLetterStore::list(const std::string& topic, const std::string& group,
                                              int limit, std::int64_t after_offset) {
  std::vector<DeadLetter> out;
  for (auto& d : current(topic, group)) {
    if (d.letter.delivery.offset > after_offset) out.push_back(std::move(d.letter));
  }
  std::stable_sort(out.begin(), out.end(), [](const DeadLetter& a, const DeadLetter& b) {
    return a.delivery.offset < b.delivery.offset;
  });
  if (out.size() > static_cast<std::size_t>(limit)) out.resize(static_cast<std::size_t>(limit));
  return out;
}

int DeadLetterStore::redrive(const std::string& topic, const std::string& group,
                             const std::vector<std::string>& ids, const Clock& clock) {
  auto dead = current(topic, group);
  std::vector<const Dead*> chosen;
  if (ids.empty()) {
    for (const auto& d : dead) chosen.push_back(&d);
  } else {
    for (const auto& id : ids) {
      const auto it = std::find_if(dead.begin(), dead.end(),
                                   [&](const Dead& d) { return d.letter.delivery.id == id; });
      if (it == dead.end())
        throw Error(ErrorCode::kNotFound, "ids: message " + id + " is not a dead letter of " +
                                              topic + " for group " + group);
      if (std::find(chosen.begin(), chosen.end(), &*it) == chosen.end()) chosen.push_back(&*it);
    }
  }
  const Micros at = clock.now();
  for (const auto* d : chosen) {
    // Back through the retry topic with a fresh count, then marked as
    // redriven: a crash in between redrives it twice at worst, and the
    // consumer does not take a message it already holds.
    const auto& m = d->letter.delivery;
    producer_.produce_and_wait(retry_topic(topic, group), m.message.key, m.message.payload,
                               copy_headers(m, "0"), at);
    producer_.produce_and_wait(redriven_topic(topic, group), m.id, std::to_string(d->dlq_offset),
                               make_headers({}, {}), at);
  }
  return static_cast<int>(chosen.size());
}

std::set<std::string> DeadLetterStore::ids(const std::string& topic, const std::string& group) {
  std::set<std::string> out;
  for (const auto& d : current(topic, group)) out.insert(d.letter.delivery.id);
  return out;
}

// The group's dead letters as they stand: the last one of each message
// (a replayed message may be dead-lettered again), unless redriven since.
std::vector<DeadLetterStore::Dead> DeadLetterStore::current(const std::string& topic,
                                                            const std::string& group) {
  std::map<std::string, std::int64_t> redriven;  // id -> the dead-letter offset redriven
  const auto redriven_name = redriven_topic(topic, group);
  topics_.ensure_topics({redriven_name});
  read_all(brokers_, name_ + "-reader", redriven_name, [&](const rd_kafka_message_t* m) {
    if (!m->key || !m->payload) return;
    const std::string id(static_cast<const char*>(m->key), m->key_len);
    const std::string text(static_cast<const char*>(m->payload), m->len);
    std::int64_t at = -1;
    std::from_chars(text.data(), text.data() + text.size(), at);
    redriven[id] = std::max(redriven[id], at);
  });
  std::map<std::string, Dead> last;
  std::vector<std::string> order;
  const auto dlq_name = dlq_topic(topic, group);
  topics_.ensure_topics({dlq_name});
  read_all(brokers_, name_ + "-reader", dlq_name, [&](const rd_kafka_message_t* m) {
    Dead dead;
    dead.dlq_offset = m->offset;
    auto& dl = dead.letter;
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
    if (!last.count(d.id)) order.push_back(d.id);
    last[d.id] = std::move(dead);
  });
  std::vector<Dead> out;
  for (const auto& id : order) {
    auto& d = last[id];
    if (const auto r = redriven.find(id); r != redriven.end() && r->second >= d.dlq_offset)
      continue;
    out.push_back(std::move(d));
  }
  std::stable_sort(out.begin(), out.end(), [](const Dead& a, const Dead& b) {
    return a.letter.delivery.offset < b.letter.delivery.offset;
  });
  return out;
}

}  // namespace devcycle::internal::kafka
