// Strict reading of request bodies and query strings: a type mismatch, a
// missing required field or an unknown field is a FieldProblem, and every
// problem of one request is reported at once by done() (ValidationError).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "http_server.h"
#include "problem.h"

namespace devcycle::server {

// Parses untrusted JSON text within the limits of devcycle/common/json_limits.h.
// Throws ValidationError naming `field`: malformed, nested too deeply, or a
// number beyond a double.
nlohmann::json parse_json_text(std::string_view text, const std::string& field);

class BodyInput {
 public:
  // Parses the body as a JSON object. Throws ValidationError for a body
  // that is not JSON ("body") or not an object; an empty body is {} when
  // `empty_ok`.
  explicit BodyInput(const HttpRequest& req, bool empty_ok = false);

  std::optional<std::string> string(const std::string& key, bool required = false);
  std::optional<std::int64_t> integer(const std::string& key, std::int64_t min, std::int64_t max,
                                      bool required = false);
  std::optional<bool> boolean(const std::string& key);
  // An object or any JSON value, returned as its JSON text.
  std::optional<std::string> object_json(const std::string& key, bool required = false);
  std::optional<std::string> any_json(const std::string& key, bool required = false);
  std::optional<std::vector<std::string>> string_list(const std::string& key);
  std::optional<std::map<std::string, std::string>> string_map(const std::string& key);
  // Throws ValidationError when any problem was found or a field was not read.
  void done();

  const nlohmann::json& json() const noexcept { return json_; }

 private:
  const nlohmann::json* take(const std::string& key, bool required);
  void bad(const std::string& field, std::string reason);

  nlohmann::json json_;
  std::set<std::string> read_;
  std::vector<FieldProblem> problems_;
};

class QueryInput {
 public:
  // Percent-decodes the query. A parameter given twice is a problem.
  explicit QueryInput(const HttpRequest& req);

  std::optional<std::string> string(const std::string& key);
  std::optional<std::int64_t> integer(const std::string& key, std::int64_t min, std::int64_t max);
  std::optional<bool> boolean(const std::string& key);
  // An RFC 3339 time, in microseconds since the epoch.
  std::optional<std::int64_t> time(const std::string& key);
  // label=key:value, repeatable, into a map.
  std::map<std::string, std::string> labels(const std::string& key);
  void done();

 private:
  void bad(const std::string& field, std::string reason);
  std::multimap<std::string, std::string> params_;
  std::set<std::string> read_;
  std::vector<FieldProblem> problems_;
};

// Percent-decoding for paths and queries ('+' is a space only in queries).
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

}  // namespace devcycle::server
