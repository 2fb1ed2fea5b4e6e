// The server's parsing pieces: percent-decoding, RFC 3339 times, strict
// bodies and queries, routing.
#include <gtest/gtest.h>

#include "input.h"
#include "json_out.h"
#include "router.h"
#include "serialize.h"

namespace devcycle::server {
namespace {

HttpRequest request(std::string body, std::string query = {}) {
  HttpRequest r;
  r.method = "POST";
  r.body = std::move(body);
  r.query = std::move(query);
  r.headers.emplace_back("content-type", "application/json");
  return r;
}

std::vector<FieldProblem> problems_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ValidationError& e) {
    return e.problems();
  }
  ADD_FAILURE() << "no ValidationError";
  return {};
}

TEST(PercentDecode, DecodesAndRefusesMalformedEscapes) {
  EXPECT_EQ(percent_decode("a%20b%2Fc", false), "a b/c");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
  EXPECT_FALSE(percent_decode("%zz", false));
  EXPECT_FALSE(percent_decode("%2", false));
  EXPECT_FALSE(percent_decode("abc%", false));
}

TEST(Rfc3339, RoundTripsAndHonoursOffsets) {
  const Micros t = 1'795'680'189'476'106;
  EXPECT_EQ(format_time(t), "2026-11-26T08:03:09.476106Z");
  EXPECT_EQ(parse_time(format_time(t)), t);
  EXPECT_EQ(parse_time("2026-11-26T09:03:09.476106+01:00"), t);
  EXPECT_EQ(parse_time("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(format_time(-1), "1969-12-31T23:59:59.999999Z");
  for (const char* bad :
       {"yesterday", "2026-13-01T00:00:00Z", "2026-11-26T08:03:09", "2026-11-26 08:03:09Z",
        "2026-11-26T08:03:09.Z", "2026-11-26T08:03:09Zjunk"}) {
    EXPECT_FALSE(parse_time(bad)) << bad;
  }
}

TEST(BodyInput, ReportsEveryProblemAtOnce) {
  const auto problems = problems_of([] {
    BodyInput in(request(R"({"name": 5, "tags": ["a", 1], "size": 99, "extra": true})"));
    in.string("name", true);
    in.string_list("tags");
    in.integer("size", 1, 10);
    in.string("owner", true);
    in.done();
  });
  std::map<std::string, std::string> by_field;
  for (const auto& p : problems) by_field[p.field] = p.reason;
  EXPECT_EQ(by_field["name"], "must be a string, not a number");
  EXPECT_EQ(by_field["tags[1]"], "must be a string, not a number");
  EXPECT_EQ(by_field["size"], "must be between 1 and 10");
  EXPECT_EQ(by_field["owner"], "is required");
  EXPECT_TRUE(by_field["extra"].starts_with("unknown field"));
  EXPECT_EQ(by_field.size(), 5u);
}

TEST(BodyInput, RefusesWhatIsNotAJsonObject) {
  for (const char* body : {"{not json", "[1, 2]", "\"text\"", ""}) {
    const auto p = problems_of([&] { BodyInput in(request(body)); });
    ASSERT_EQ(p.size(), 1u) << body;
    EXPECT_EQ(p[0].field, "body");
  }
  HttpRequest form = request("a=b");
  form.headers[0].second = "application/x-www-form-urlencoded";
  EXPECT_EQ(problems_of([&] { BodyInput in(form); })[0].field, "header.Content-Type");
  BodyInput empty(request(""), /*empty_ok=*/true);
  EXPECT_NO_THROW(empty.done());
}

// Issue #20: null for an optional typed field was taken as "left out".
TEST(BodyInput, NullIsAWrongTypeForATypedFieldAndAValueForAnyJson) {
  const auto problems = problems_of([] {
    BodyInput in(
        request(R"({"name": null, "n": null, "on": null, "tags": null, "payload": null})"));
    in.string("name");
    in.integer("n", 0, 10);
    in.boolean("on");
    in.string_list("tags");
    EXPECT_EQ(in.any_json("payload"), "null");
    in.done();
  });
  ASSERT_EQ(problems.size(), 4u);
  EXPECT_EQ(problems[0].field, "name");
  EXPECT_EQ(problems[0].reason, "must be a string, not null");
  EXPECT_EQ(problems[1].reason, "must be an integer, not null");
}

// Issue #20: parsed depth and numbers are bounded before anything is built.
TEST(BodyInput, RefusesDeepNestingAndNumbersBeyondADouble) {
  const auto deep = problems_of([] {
    BodyInput in(request(R"({"a": )" + std::string(100000, '[') + std::string(100000, ']') + "}"));
  });
  ASSERT_EQ(deep.size(), 1u);
  EXPECT_EQ(deep[0].field, "body");
  EXPECT_EQ(deep[0].reason, "nested deeper than 64 levels, the limit");
  const auto huge = problems_of([] { BodyInput in(request(R"({"n": 1e400})")); });
  ASSERT_EQ(huge.size(), 1u);
  EXPECT_EQ(huge[0].reason, "a number is out of range (beyond a 64-bit double)");
}

TEST(QueryInput, ParsesStrictly) {
  QueryInput q(request("", "limit=5&label=env%3Aprod&label=team:a&flag=true&name=a+b"));
  EXPECT_EQ(q.integer("limit", 1, 10), 5);
  EXPECT_EQ(q.labels("label"),
            (std::map<std::string, std::string>{{"env", "prod"}, {"team", "a"}}));
  EXPECT_EQ(q.boolean("flag"), true);
  EXPECT_EQ(q.string("name"), "a b");
  EXPECT_NO_THROW(q.done());

  const auto p = problems_of([] {
    QueryInput bad(request("", "limit=x&limit=2&colour=red&flag=maybe"));
    bad.integer("limit", 1, 10);
    bad.boolean("flag");
    bad.done();
  });
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].field, "query.limit");
  EXPECT_EQ(p[0].reason, "given more than once");
  EXPECT_EQ(p[1].field, "query.flag");
  EXPECT_EQ(p[2].field, "query.colour");
}

TEST(JsonOut, WritesValidJsonWithEscapes) {
  JsonOut out;
  out.begin_object()
      .field("s", std::string("q\"uote\\ tab\t nl\n \x01 é"))
      .field("n", -42)
      .field("b", true)
      .key("raw")
      .raw(R"({"a":[1,2]})")
      .key("empty")
      .raw("")
      .key("list")
      .begin_array()
      .num(1)
      .begin_object()
      .end_object()
      .str("x")
      .end_array()
      .key("t")
      .time(Micros{1'795'680'189'476'106})
      .key("none")
      .time(std::optional<Micros>{})
      .end_object();
  const auto parsed = nlohmann::json::parse(out.text());
  EXPECT_EQ(parsed["s"], "q\"uote\\ tab\t nl\n \x01 é");
  EXPECT_EQ(parsed["n"], -42);
  EXPECT_EQ(parsed["b"], true);
  EXPECT_EQ(parsed["raw"]["a"][1], 2);
  EXPECT_TRUE(parsed["empty"].is_null());
  EXPECT_EQ(parsed["list"].size(), 3u);
  EXPECT_EQ(parsed["t"], "2026-11-26T08:03:09.476106Z");
  EXPECT_TRUE(parsed["none"].is_null());
}

TEST(Router, MatchesPatternsAndReportsAllowedMethods) {
  Router r;
  const auto ok = [](Call&) { return HttpResponse{}; };
  r.add({.method = "GET", .path = "/api/v1/agents", .handler = ok});
  r.add({.method = "POST", .path = "/api/v1/agents", .handler = ok});
  r.add({.method = "GET", .path = "/api/v1/agents/{id}", .handler = ok});
  r.add({.method = "POST", .path = "/api/v1/workflows/validate", .handler = ok});
  r.add({.method = "GET", .path = "/api/v1/workflows/{name}", .handler = ok});

  auto m = r.match("GET", "/api/v1/agents/a%2Fb");
  ASSERT_TRUE(m.route);
  EXPECT_EQ(m.route->path, "/api/v1/agents/{id}");
  EXPECT_EQ(m.params.at("id"), "a/b");
  EXPECT_EQ(r.match("POST", "/api/v1/workflows/validate").route->path,
            "/api/v1/workflows/validate");
  m = r.match("DELETE", "/api/v1/agents");
  EXPECT_FALSE(m.route);
  EXPECT_EQ(m.allowed, (std::vector<std::string>{"GET", "POST"}));
  EXPECT_FALSE(r.match("GET", "/api/v1/agents/x/y").route);
  EXPECT_TRUE(r.match("GET", "/api/v1/agents/%zz").bad_path);
}

}  // namespace
}  // namespace devcycle::server
