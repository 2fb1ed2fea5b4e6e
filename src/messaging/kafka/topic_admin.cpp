#include "messaging/kafka/topic_admin.h"

#include <algorithm>
#include <charconv>
#include <string_view>

#include "devcycle/common/error.h"
#include "messaging/kafka/handles.h"

namespace devcycle::internal::kafka {

namespace {

// A record's bytes beyond its key, value and headers (batch and record
// framing), with room to spare.
constexpr std::size_t kRecordOverhead = 512;

}  // namespace

std::size_t max_record_bytes(std::size_t max_payload_bytes) {
  constexpr std::size_t kKey = 1024, kHeaders = 64 * (256 + 4096), kOwnHeaders = 8 * 1024,
                        kFraming = 64 * 1024;
  return std::max<std::size_t>(1'000'000,
                               max_payload_bytes + kKey + kHeaders + kOwnHeaders + kFraming);
}

void TopicAdmin::ensure_topic(const std::string& topic) {
  {
    std::lock_guard lock(mu_);
    if (known_topics_.count(topic) && user_topics_.count(topic)) return;
  }
  ensure_topics({topic}, /*user=*/true);
}

void TopicAdmin::ensure_topics(const std::vector<std::string>& wanted, bool user) {
  std::vector<std::string> missing;
  const auto remember = [&] {
    // A topic made elsewhere may take less than the bus: learn its limit,
    // so that a message it would refuse is refused before it is produced
    // (a refusal by the broker inside a transaction costs the commit's
    // whole timeout).
    auto limits = missing.empty() ? std::map<std::string, std::size_t>{} : record_limits(missing);
    std::lock_guard lock(mu_);
    known_topics_.insert(missing.begin(), missing.end());
    topic_limits_.merge(limits);
    // Only topics that exist: purge() lists what it covers.
    if (user) user_topics_.insert(wanted.begin(), wanted.end());
  };
  {
    std::lock_guard lock(mu_);
    for (const auto& t : wanted) {
      if (!known_topics_.count(t) && std::find(missing.begin(), missing.end(), t) == missing.end())
        missing.push_back(t);
    }
  }
  if (missing.empty()) return remember();
  std::vector<rd_kafka_NewTopic_t*> specs;
  char err[512];
  const auto max_record = std::to_string(max_record_bytes_);
  for (const auto& t : missing) {
    auto* spec = rd_kafka_NewTopic_new(t.c_str(), partitions_, replication_, err, sizeof err);
    if (!spec) {
      for (auto* s : specs) rd_kafka_NewTopic_destroy(s);
      throw Error(ErrorCode::kInvalidArgument, "kafka: topic " + t + ": " + err);
    }
    specs.push_back(spec);
    // The broker takes what the bus takes (its own default is 1 MiB).
    rd_kafka_NewTopic_set_config(spec, "max.message.bytes", max_record.c_str());
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(client_);
  rd_kafka_CreateTopics(client_, specs.data(), specs.size(), nullptr, queue);
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
  remember();
}

void TopicAdmin::add_user_topic(const std::string& topic) {
  std::lock_guard lock(mu_);
  user_topics_.insert(topic);
}

std::map<std::string, std::size_t> TopicAdmin::record_limits(
    const std::vector<std::string>& topics) {
  std::map<std::string, std::size_t> out;
  std::vector<rd_kafka_ConfigResource_t*> resources;
  for (const auto& t : topics)
    resources.push_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, t.c_str()));
  struct Free {
    std::vector<rd_kafka_ConfigResource_t*>& r;
    ~Free() { rd_kafka_ConfigResource_destroy_array(r.data(), r.size()); }
  } free_resources{resources};
  admin(
      [&](rd_kafka_queue_t* q) {
        rd_kafka_DescribeConfigs(client_, resources.data(), resources.size(), nullptr, q);
      },
      [&](rd_kafka_event_t* ev) {
        std::size_t n = 0;
        const auto** described = rd_kafka_DescribeConfigs_result_resources(
            rd_kafka_event_DescribeConfigs_result(ev), &n);
        for (std::size_t i = 0; i < n; ++i) {
          if (rd_kafka_ConfigResource_error(described[i])) continue;
          std::size_t entries = 0;
          const auto** configs = rd_kafka_ConfigResource_configs(described[i], &entries);
          for (std::size_t j = 0; j < entries; ++j) {
            const char* value = rd_kafka_ConfigEntry_value(configs[j]);
            if (std::string_view(rd_kafka_ConfigEntry_name(configs[j])) != "max.message.bytes" ||
                !value)
              continue;
            std::size_t limit = 0;
            const std::string_view v(value);
            if (std::from_chars(v.data(), v.data() + v.size(), limit).ec == std::errc())
              out[rd_kafka_ConfigResource_name(described[i])] = limit;
          }
        }
      },
      "describe topics");
  return out;
}

std::size_t TopicAdmin::topic_limit(const std::string& topic) {
  std::lock_guard lock(mu_);
  const auto it = topic_limits_.find(topic);
  return it == topic_limits_.end() ? max_record_bytes_ : it->second;
}

void TopicAdmin::check_fits(const Message& m, std::size_t limit, std::optional<std::size_t> index) {
  std::size_t size = m.payload.size() + m.key.size() + kRecordOverhead;
  for (const auto& [k, v] : m.headers) size += k.size() + v.size() + 16;
  if (size <= limit) return;
  throw Error(ErrorCode::kInvalidArgument,
              (index ? "messages[" + std::to_string(*index) + "]" : std::string("message")) + ": " +
                  std::to_string(size) + " bytes with its key and headers; topic " + m.topic +
                  " takes records of at most " + std::to_string(limit) +
                  " bytes (its max.message.bytes)");
}

void TopicAdmin::admin(const std::function<void(rd_kafka_queue_t*)>& send,
                       const std::function<void(rd_kafka_event_t*)>& read,
                       const std::string& what) {
  rd_kafka_queue_t* queue = rd_kafka_queue_new(client_);
  send(queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 30'000);
  rd_kafka_queue_destroy(queue);
  if (!ev) throw Error(ErrorCode::kUnavailable, "kafka: " + what + ": no answer within 30 s");
  struct Free {
    rd_kafka_event_t* ev;
    ~Free() { rd_kafka_event_destroy(ev); }
  } free_ev{ev};
  if (rd_kafka_event_error(ev))
    throw Error(ErrorCode::kUnavailable, "kafka: " + what + ": " + rd_kafka_event_error_string(ev));
  read(ev);
}

std::vector<std::string> TopicAdmin::groups() {
  std::vector<std::string> out;
  admin([&](rd_kafka_queue_t* q) { rd_kafka_ListConsumerGroups(client_, nullptr, q); },
        [&](rd_kafka_event_t* ev) {
          std::size_t n = 0;
          const auto** listed = rd_kafka_ListConsumerGroups_result_valid(
              rd_kafka_event_ListConsumerGroups_result(ev), &n);
          for (std::size_t i = 0; i < n; ++i)
            out.emplace_back(rd_kafka_ConsumerGroupListing_group_id(listed[i]));
        },
        "list consumer groups");
  return out;
}

std::map<TopicAdmin::Key, std::int64_t> TopicAdmin::committed(
    const std::string& group, const rd_kafka_topic_partition_list_t* partitions) {
  std::map<Key, std::int64_t> out;
  rd_kafka_ListConsumerGroupOffsets_t* request =
      rd_kafka_ListConsumerGroupOffsets_new(group.c_str(), partitions);
  try {
    admin(
        [&](rd_kafka_queue_t* q) {
          rd_kafka_ListConsumerGroupOffsets(client_, &request, 1, nullptr, q);
        },
        [&](rd_kafka_event_t* ev) {
          std::size_t n = 0;
          const auto** results = rd_kafka_ListConsumerGroupOffsets_result_groups(
              rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
          for (std::size_t i = 0; i < n; ++i) {
            if (rd_kafka_group_result_error(results[i])) continue;
            const auto* parts = rd_kafka_group_result_partitions(results[i]);
            for (int j = 0; parts && j < parts->cnt; ++j) {
              if (!parts->elems[j].err)
                out[{parts->elems[j].topic, parts->elems[j].partition}] = parts->elems[j].offset;
            }
          }
        },
        "read the offsets of group " + group);
  } catch (...) {
    rd_kafka_ListConsumerGroupOffsets_destroy(request);
    throw;
  }
  rd_kafka_ListConsumerGroupOffsets_destroy(request);
  return out;
}

std::map<std::int32_t, std::pair<std::int64_t, std::int64_t>> TopicAdmin::partition_bounds(
    const std::string& topic) {
  ensure_topics({topic});
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* handle = rd_kafka_topic_new(client_, topic.c_str(), nullptr);
  const auto err = rd_kafka_metadata(client_, 0, handle, &md, 10'000);
  rd_kafka_topic_destroy(handle);
  if (err) throw unavailable("cannot read the metadata of " + topic, err);
  std::vector<std::int32_t> ids;
  for (int i = 0; i < md->topic_cnt; ++i)
    for (int p = 0; p < md->topics[i].partition_cnt; ++p)
      ids.push_back(md->topics[i].partitions[p].id);
  rd_kafka_metadata_destroy(md);
  std::map<std::int32_t, std::pair<std::int64_t, std::int64_t>> bounds;
  for (const auto id : ids) {
    std::int64_t low = 0, high = 0;
    if (const auto e = watermarks(client_, topic, id, low, high))
      throw unavailable("cannot read the end of " + topic, e);
    bounds[id] = {low, high};
  }
  return bounds;
}

std::map<std::int32_t, std::int64_t> TopicAdmin::partition_ends(const std::string& topic) {
  std::map<std::int32_t, std::int64_t> ends;
  for (const auto& [id, lh] : partition_bounds(topic)) ends[id] = lh.second;
  return ends;
}

std::map<std::int32_t, std::int64_t> TopicAdmin::offsets_at(const std::string& topic, Micros at) {
  const auto ends = partition_ends(topic);
  PartitionList list = new_partition_list(static_cast<int>(ends.size()));
  for (const auto& [partition, end] : ends)
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset =
        std::max<Micros>(0, at) / 1000;
  if (const auto err = rd_kafka_offsets_for_times(client_, list.get(), 10'000))
    throw unavailable("cannot find the offsets of " + topic + " at that time", err);
  std::map<std::int32_t, std::int64_t> offsets;
  for (int i = 0; i < list->cnt; ++i) {
    const auto& e = list->elems[i];
    // Nothing that recent: only what comes next.
    offsets[e.partition] = e.err || e.offset < 0 ? ends.at(e.partition) : e.offset;
  }
  return offsets;
}

std::int64_t TopicAdmin::purge(Micros before) {
  std::vector<std::string> topics;
  {
    std::lock_guard lock(mu_);
    topics.assign(user_topics_.begin(), user_topics_.end());
  }
  std::map<Key, std::pair<std::int64_t, std::int64_t>> plan;  // low, cut
  PartitionList all = new_partition_list(1);
  for (const auto& topic : topics) {
    const auto bounds = partition_bounds(topic);
    PartitionList times = new_partition_list(static_cast<int>(bounds.size()));
    for (const auto& [partition, lh] : bounds) {
      rd_kafka_topic_partition_list_add(times.get(), topic.c_str(), partition)->offset =
          std::max<Micros>(0, before) / 1000;
      rd_kafka_topic_partition_list_add(all.get(), topic.c_str(), partition);
    }
    if (const auto err = rd_kafka_offsets_for_times(client_, times.get(), 10'000))
      throw unavailable("cannot find the offsets of " + topic + " at that time", err);
    for (int i = 0; i < times->cnt; ++i) {
      const auto& e = times->elems[i];
      const auto [low, high] = bounds.at(e.partition);
      // The first message published at or after `before`; none: the end.
      plan[{topic, e.partition}] = {low, e.err || e.offset < 0 ? high : e.offset};
    }
  }
  if (plan.empty()) return 0;
  // No further than where any group's unfinished work starts.
  for (const auto& group : groups()) {
    for (const auto& [key, offset] : committed(group, all.get())) {
      if (auto it = plan.find(key); it != plan.end() && offset >= 0)
        it->second.second = std::min(it->second.second, offset);
    }
  }
  PartitionList cut = new_partition_list(static_cast<int>(plan.size()));
  std::int64_t removed = 0;
  for (const auto& [key, lc] : plan) {
    if (lc.second <= lc.first) continue;
    rd_kafka_topic_partition_list_add(cut.get(), key.first.c_str(), key.second)->offset = lc.second;
    removed += lc.second - lc.first;
  }
  if (cut->cnt == 0) return 0;
  rd_kafka_DeleteRecords_t* request = rd_kafka_DeleteRecords_new(cut.get());
  admin([&](rd_kafka_queue_t* q) { rd_kafka_DeleteRecords(client_, &request, 1, nullptr, q); },
        [&](rd_kafka_event_t* ev) {
          const auto* offsets =
              rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
          for (int i = 0; offsets && i < offsets->cnt; ++i) {
            if (offsets->elems[i].err)
              throw unavailable(
                  "cannot delete old records of " + std::string(offsets->elems[i].topic),
                  offsets->elems[i].err);
          }
        },
        "delete old records");
  rd_kafka_DeleteRecords_destroy(request);
  return removed;
}

}  // namespace devcycle::internal::kafka
