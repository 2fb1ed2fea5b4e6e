#include "messaging/kafka/headers.h"

#include <algorithm>
#include <charconv>

namespace devcycle::internal::kafka {

std::string message_id(std::string_view topic, std::int32_t partition, std::int64_t offset,
                       std::int64_t timestamp_ms) {
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (const unsigned char c : topic) h = (h ^ c) * 16777619u;
  const std::uint64_t ms =
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, timestamp_ms)) & 0xFFFF'FFFF'FFFFull;
  const std::uint64_t hi = (ms << 16) | 0x7000u | (static_cast<std::uint32_t>(partition) & 0xFFFu);
  const std::uint64_t lo = (0b10ull << 62) | (static_cast<std::uint64_t>(h & 0x3F'FFFFu) << 40) |
                           (static_cast<std::uint64_t>(offset) & 0xFF'FFFF'FFFFull);
  // 8-4-4-4-12 hex digits; by hand, since every report formats one.
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  std::size_t at = 0;
  auto put = [&](std::uint64_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i) out[at++] = kHex[(v >> (4 * i)) & 0xF];
  };
  put(hi >> 32, 8);
  ++at;
  put((hi >> 16) & 0xFFFF, 4);
  ++at;
  put(hi & 0xFFFF, 4);
  ++at;
  put(lo >> 48, 4);
  ++at;
  put(lo & 0xFFFF'FFFF'FFFFull, 12);
  return out;
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

rd_kafka_headers_t* copy_headers(const Delivery& d, const std::string& count,
                                 std::vector<std::pair<const char*, std::string>> more) {
  std::vector<std::pair<const char*, std::string>> ours{
      {kIdHeader, d.id},
      {kCountHeader, count},
      {kOffsetHeader, std::to_string(d.offset)},
      {kPartitionHeader, std::to_string(d.partition)},
      {kPublishedHeader, std::to_string(d.published_at)}};
  for (auto& m : more) ours.push_back(std::move(m));
  return make_headers(d.message.headers, ours);
}

}  // namespace devcycle::internal::kafka
