#include "messaging/bus_segments.h"

#include <algorithm>
#include <cstring>
#include <string_view>

#include "common/sql_rows.h"
#include "devcycle/common/error.h"

namespace devcycle::internal {
namespace {

// A segment ends at whichever comes first; a point read decodes one whole
// segment, so they stay small.
constexpr std::size_t kSegmentMessages = 256;
constexpr std::size_t kSegmentBytes = 256 * 1024;

// The packed body: per message, its id, key, headers and payload, each as
// a LEB128 length and its bytes.
void put_length(std::vector<std::byte>& out, std::uint64_t n) {
  do {
    auto b = static_cast<std::uint8_t>(n & 0x7F);
    n >>= 7;
    if (n) b |= 0x80;
    out.push_back(static_cast<std::byte>(b));
  } while (n);
}

void put(std::vector<std::byte>& out, std::string_view s) {
  put_length(out, s.size());
  const auto at = out.size();
  out.resize(at + s.size());
  if (!s.empty()) std::memcpy(out.data() + at, s.data(), s.size());
}

class BodyReader {
 public:
  explicit BodyReader(const std::vector<std::byte>& b) : p_(b.data()), end_(b.data() + b.size()) {}

  std::string next() {
    std::uint64_t n = 0;
    for (int shift = 0;; shift += 7) {
      if (p_ == end_ || shift > 63) corrupt();
      const auto b = static_cast<std::uint8_t>(*p_++);
      n |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) break;
    }
    if (n > static_cast<std::uint64_t>(end_ - p_)) corrupt();
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }

  bool done() const { return p_ == end_; }

  [[noreturn]] static void corrupt() {
    throw Error(ErrorCode::kInternal, "bus: a stored message segment is corrupt");
  }

 private:
  const std::byte* p_;
  const std::byte* end_;
};

// INSERT of `rows` segments ($1..$8, $9..$16, ...).
const std::string& insert_sql(std::size_t rows) {
  static const auto all = multi_row_statements(
      "INSERT INTO bus_segments (topic, first_offset, msg_count, published_at, id, msg_key, "
      "headers, body) VALUES ",
      "(?, ?, ?, ?, ?, ?, ?, ?)");
  return all.at(rows);
}

constexpr std::string_view kColumns =
    "SELECT first_offset, msg_count, published_at, id, msg_key, headers, body FROM bus_segments ";

}  // namespace

void write_segments(Txn& t, const std::string& topic, std::int64_t first_offset,
                    const std::vector<const Message*>& messages,
                    const std::vector<std::string>& ids, const std::vector<std::string>& headers,
                    Micros published_at) {
  std::vector<Value> params;
  std::size_t rows = 0;
  auto flush = [&] {
    if (rows) t.execute(insert_sql(rows), params);
    params.clear();
    rows = 0;
  };
  for (std::size_t start = 0; start < messages.size();) {
    // [start, end): the next segment.
    std::size_t end = start, bytes = 0;
    while (end < messages.size() && end - start < kSegmentMessages &&
           (end == start || bytes + messages[end]->payload.size() <= kSegmentBytes)) {
      bytes += messages[end]->payload.size();
      ++end;
    }
    const auto offset = first_offset + static_cast<std::int64_t>(start);
    const auto count = static_cast<std::int64_t>(end - start);
    if (count == 1) {
      const Message& m = *messages[start];
      params.insert(params.end(), {Value(topic), Value(offset), Value(count), Value(published_at),
                                   Value(ids[start]), Value(m.key), Value(headers[start]),
                                   Value(Blob::of(m.payload))});
    } else {
      Blob body;
      body.bytes.reserve(bytes + (end - start) * 64);
      for (std::size_t i = start; i < end; ++i) {
        put(body.bytes, ids[i]);
        put(body.bytes, messages[i]->key);
        put(body.bytes, headers[i]);
        put(body.bytes, messages[i]->payload);
      }
      params.insert(params.end(), {Value(topic), Value(offset), Value(count), Value(published_at),
                                   Value(""), Value(""), Value(""), Value(std::move(body))});
    }
    if (++rows == 64) flush();
    start = end;
  }
  flush();
}

const StoredMessage* SegmentReader::cached(std::int64_t offset) const {
  auto it = segments_.upper_bound(offset);
  if (it == segments_.begin()) return nullptr;
  --it;
  const auto index = offset - it->first;
  if (index >= static_cast<std::int64_t>(it->second.size())) return nullptr;
  return &it->second[static_cast<std::size_t>(index)];
}

void SegmentReader::decode(const Row& r) {
  const auto first = r[0].as_int();
  if (segments_.count(first)) return;
  const auto count = r[1].as_int();
  const Micros at = r[2].as_int();
  std::vector<StoredMessage> out;
  if (count == 1) {
    out.push_back(
        {first, r[3].as_text(), r[4].as_text(), r[5].as_text(), r[6].as_blob().str(), at});
  } else {
    BodyReader body(r[6].as_blob().bytes);
    out.reserve(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) {
      StoredMessage m;
      m.offset = first + i;
      m.id = body.next();
      m.key = body.next();
      m.headers = body.next();
      m.payload = body.next();
      m.published_at = at;
      out.push_back(std::move(m));
    }
    if (!body.done()) BodyReader::corrupt();
  }
  segments_.emplace(first, std::move(out));
}

const StoredMessage* SegmentReader::at(std::int64_t offset) {
  if (const auto* m = cached(offset)) return m;
  const auto rs = t_.query(std::string(kColumns) +
                               "WHERE topic = $1 AND first_offset <= $2 "
                               "ORDER BY first_offset DESC LIMIT 1",
                           {topic_, offset});
  if (rs.empty()) return nullptr;
  decode(rs[0]);
  return cached(offset);
}

std::vector<const StoredMessage*> SegmentReader::range(std::int64_t from, std::int64_t to) {
  std::vector<const StoredMessage*> out;
  if (from >= to) return out;
  // The segment holding `from` may start before it: the scan starts at it.
  const auto rs = t_.query(std::string(kColumns) +
                               "WHERE topic = $1 AND first_offset >= COALESCE((SELECT first_offset "
                               "FROM bus_segments WHERE topic = $1 AND first_offset <= $2 ORDER BY "
                               "first_offset DESC LIMIT 1), $2) AND first_offset < $3 "
                               "ORDER BY first_offset",
                           {topic_, from, to});
  for (const auto& r : rs) decode(r);
  // Segments never overlap: from the one at or before `from`, in order.
  auto it = segments_.upper_bound(from);
  if (it != segments_.begin()) --it;
  for (; it != segments_.end() && it->first < to; ++it) {
    for (const auto& m : it->second) {
      if (m.offset >= from && m.offset < to) out.push_back(&m);
    }
  }
  return out;
}

}  // namespace devcycle::internal
