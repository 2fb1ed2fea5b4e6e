#include "messaging/inproc/topic_log.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "devcycle/common/uuid.h"
#include "messaging/bus_segments.h"

namespace devcycle::internal::inproc {

namespace {

std::string headers_json(const std::map<std::string, std::string>& headers) {
  return headers.empty() ? "{}" : nlohmann::json(headers).dump();
}

}  // namespace

std::int64_t next_offset(Txn& t, const std::string& topic) {
  auto rs = t.query("SELECT next_offset FROM bus_topics WHERE topic = $1", {topic});
  return rs.empty() ? 0 : rs[0][0].as_int();
}

std::vector<Published> append_messages(Txn& t, const std::vector<Message>& messages, Micros at) {
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
      current =
          static_cast<std::size_t>(std::find_if(runs.begin(), runs.end(),
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

}  // namespace devcycle::internal::inproc
