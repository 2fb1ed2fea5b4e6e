#include "messaging/inproc/group_queue.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/sql_rows.h"
#include "devcycle/common/error.h"
#include "messaging/inproc/topic_log.h"

namespace devcycle::internal::inproc {

namespace {

// How many messages one group may hold pending; fetch() takes no new ones
// beyond it, which bounds the work of one fetch.
constexpr int kMaxPending = 10'000;

std::map<std::string, std::string> parse_headers(const std::string& text) {
  return nlohmann::json::parse(text).get<std::map<std::string, std::string>>();
}

Micros ms(std::chrono::milliseconds d) { return d.count() * 1000; }

// INSERT INTO bus_pending of `rows` new pending messages ($1..$5, ...).
const std::string& pending_insert_sql(std::size_t rows) {
  static const auto all = multi_row_statements(
      "INSERT INTO bus_pending (topic, grp, msg_offset, msg_key, delivery_count, visible_at, "
      "reason) VALUES ",
      "(?, ?, ?, ?, 0, ?, NULL)", " ON CONFLICT DO NOTHING");
  return all.at(rows);
}

}  // namespace

void set_position(Txn& t, const std::string& topic, const std::string& group, std::int64_t offset) {
  t.execute(
      "INSERT INTO bus_groups (topic, grp, position) VALUES ($1, $2, $3) "
      "ON CONFLICT (topic, grp) DO UPDATE SET position = excluded.position",
      {topic, group, offset});
}

void bury(Txn& t, const std::string& topic, const std::string& group, std::int64_t offset,
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

Delivery delivery(const std::string& topic, const std::string& group, const StoredMessage& m,
                  int count) {
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

std::vector<Delivery> take(Txn& t, const std::string& topic, const std::string& group, int max,
                           const ConsumeOptions& o, Micros at) {
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

}  // namespace devcycle::internal::inproc
