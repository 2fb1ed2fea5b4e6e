// Direct agent messages (/api/v1/agents/{id}/messages) and the dead-letter
// queue of the bus (/api/v1/dlq, admin-only: it holds every topic's payloads).
#include "devcycle/common/error.h"
#include "input.h"
#include "services.h"

namespace devcycle::server {

namespace {

// The agent a caller acts as: its own agent (agent keys) or one it owns
// (developers), any (admins).
// Payloads are bytes: UTF-8 text goes out as it is, anything else in base64.
bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    if (c < 0x80) {
      n = 0;
    } else if ((c >> 5) == 0x6) {
      n = 1;
    } else if ((c >> 4) == 0xE) {
      n = 2;
    } else if ((c >> 3) == 0x1E) {
      n = 3;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    i += n + 1;
  }
  return true;
}

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out.push_back(kAlphabet[(v >> k) & 63]);
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

// Beside serialize.h's, which this file's own would hide.
using server::to_json;

Json to_json(const DeadLetter& d) {
  const auto& m = d.delivery.message;
  const bool text = valid_utf8(m.payload);
  return {{"id", d.delivery.id},
          {"topic", m.topic},
          {"group", d.delivery.group},
          {"key", m.key},
          {"headers", m.headers},
          {"payload", text ? m.payload : base64(m.payload)},
          {"payload_encoding", text ? "utf-8" : "base64"},
          {"offset", d.delivery.offset},
          {"partition", d.delivery.partition},
          {"delivery_count", d.delivery.delivery_count},
          {"published_at", format_time(d.delivery.published_at)},
          {"reason", d.reason},
          {"dead_at", format_time(d.dead_at)}};
}

HttpResponse send_agent_message(Services& s, Call& c) {
  BodyInput in(c.req);
  const auto recipient = in.string("recipient", true);
  const auto type = in.string("message_type", true);
  const auto payload = in.any_json("payload");
  in.done();
  return json_response(201, to_json(as(s, c).messages().send(c.param("id"), *recipient, *type,
                                                             payload.value_or("{}"))));
}

// Receiving marks the messages delivered: it is the recipient's inbox.
HttpResponse receive_agent_messages(Services& s, Call& c) {
  BodyInput in(c.req, /*empty_ok=*/true);
  const auto limit = in.integer("limit", 1, 1000);
  in.done();
  Json items = Json::array();
  for (const auto& m :
       as(s, c).messages().receive(c.param("id"), static_cast<int>(limit.value_or(100)))) {
    items.push_back(to_json(m));
  }
  return json_response(200, page(std::move(items), ""));
}

HttpResponse get_agent_message(Services& s, Call& c) {
  return json_response(200, to_json(as(s, c).messages().get(c.param("id"), c.param("message_id"))));
}

HttpResponse mark_agent_message_read(Services& s, Call& c) {
  BodyInput in(c.req, /*empty_ok=*/true);
  in.done();
  return json_response(
      200, to_json(as(s, c).messages().mark_read(c.param("id"), c.param("message_id"))));
}

HttpResponse list_dead_letters(Services& s, Call& c) {
  QueryInput q(c.req);
  const auto topic = q.string("topic");
  const auto group = q.string("group");
  const auto limit = q.integer("limit", 1, 1000).value_or(100);
  const auto after = q.integer("after_offset", -1, INT64_MAX).value_or(-1);
  std::vector<FieldProblem> missing;
  if (!topic) missing.push_back({"query.topic", "is required"});
  if (!group) missing.push_back({"query.group", "is required"});
  q.done();
  if (!missing.empty()) throw ValidationError(std::move(missing));
  Json items = Json::array();
  for (const auto& d :
       as(s, c).messages().dead_letters(*topic, *group, static_cast<int>(limit), after))
    items.push_back(to_json(d));
  return json_response(200, page(std::move(items), ""));
}

HttpResponse redrive_dead_letters(Services& s, Call& c) {
  BodyInput in(c.req);
  const auto topic = in.string("topic", true);
  const auto group = in.string("group", true);
  const auto ids = in.string_list("ids");
  in.done();
  const int n =
      as(s, c).messages().redrive(*topic, *group, ids.value_or(std::vector<std::string>{}));
  return json_response(200, {{"redriven", n}});
}

}  // namespace

std::vector<Route> message_routes(Services& s) {
  return {
      {.method = "POST",
       .path = "/api/v1/agents/{id}/messages",
       .handler = bound(s, send_agent_message)},
      {.method = "POST",
       .path = "/api/v1/agents/{id}/messages/receive",
       .handler = bound(s, receive_agent_messages)},
      {.method = "GET",
       .path = "/api/v1/agents/{id}/messages/{message_id}",
       .handler = bound(s, get_agent_message)},
      {.method = "POST",
       .path = "/api/v1/agents/{id}/messages/{message_id}/read",
       .handler = bound(s, mark_agent_message_read)},
      {.method = "GET",
       .path = "/api/v1/dlq",
       .handler = bound(s, list_dead_letters),
       .takes_query = true},
      {.method = "POST", .path = "/api/v1/dlq/redrive", .handler = bound(s, redrive_dead_letters)},
  };
}

}  // namespace devcycle::server
