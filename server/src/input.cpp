#include "input.h"

#include <algorithm>

#include "devcycle/common/clock.h"
#include "devcycle/common/json_limits.h"

namespace devcycle::server {

namespace {

std::string type_name(const nlohmann::json& j) {
  if (j.is_object()) return "an object";
  if (j.is_array()) return "an array";
  if (j.is_string()) return "a string";
  if (j.is_boolean()) return "a boolean";
  if (j.is_number()) return "a number";
  return "null";
}

std::string field_list(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

nlohmann::json parse_json_text(std::string_view text, const std::string& field) {
  if (json_deeper_than(text)) {
    throw ValidationError(
        field, "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels, the limit");
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw ValidationError(field, "malformed JSON near byte " + std::to_string(e.byte));
  } catch (const nlohmann::json::out_of_range&) {
    throw ValidationError(field, "a number is out of range (beyond a 64-bit double)");
  }
}

BodyInput::BodyInput(const HttpRequest& req, bool empty_ok) {
  if (req.body.empty() && empty_ok) {
    json_ = nlohmann::json::object();
    return;
  }
  if (const auto* ct = req.header("content-type"); ct && ct->find("json") == std::string::npos) {
    throw ValidationError("header.Content-Type", "must be application/json, not " + *ct);
  }
  json_ = parse_json_text(req.body, "body");
  if (!json_.is_object()) {
    throw ValidationError("body", "must be a JSON object, not " + type_name(json_));
  }
}

void BodyInput::bad(const std::string& field, std::string reason) {
  problems_.push_back({field, std::move(reason)});
}

const nlohmann::json* BodyInput::take(const std::string& key, bool required) {
  read_.insert(key);
  const auto it = json_.find(key);
  if (it == json_.end()) {
    if (required) bad(key, "is required");
    return nullptr;
  }
  // A null is a value of the wrong type for a typed field ("must be a
  // string, not null"), never a silent "left out".
  return &*it;
}

std::optional<std::string> BodyInput::string(const std::string& key, bool required) {
  const auto* j = take(key, required);
  if (!j) return std::nullopt;
  if (!j->is_string()) {
    bad(key, "must be a string, not " + type_name(*j));
    return std::nullopt;
  }
  return j->get<std::string>();
}

std::optional<std::int64_t> BodyInput::integer(const std::string& key, std::int64_t min,
                                               std::int64_t max, bool required) {
  const auto* j = take(key, required);
  if (!j) return std::nullopt;
  if (!j->is_number_integer()) {
    bad(key, "must be an integer, not " + type_name(*j));
    return std::nullopt;
  }
  const auto v = j->is_number_unsigned() && j->get<std::uint64_t>() > INT64_MAX
                     ? INT64_MAX
                     : j->get<std::int64_t>();
  if (v < min || v > max) {
    bad(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> BodyInput::boolean(const std::string& key) {
  const auto* j = take(key, false);
  if (!j) return std::nullopt;
  if (!j->is_boolean()) {
    bad(key, "must be a boolean, not " + type_name(*j));
    return std::nullopt;
  }
  return j->get<bool>();
}

std::optional<std::string> BodyInput::object_json(const std::string& key, bool required) {
  const auto* j = take(key, required);
  if (!j) return std::nullopt;
  if (!j->is_object()) {
    bad(key, "must be an object, not " + type_name(*j));
    return std::nullopt;
  }
  return j->dump();
}

std::optional<std::string> BodyInput::any_json(const std::string& key, bool required) {
  const auto* j = take(key, required);
  if (!j) return std::nullopt;
  return j->dump();
}

std::optional<std::vector<std::string>> BodyInput::string_list(const std::string& key) {
  const auto* j = take(key, false);
  if (!j) return std::nullopt;
  if (!j->is_array()) {
    bad(key, "must be an array of strings, not " + type_name(*j));
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < j->size(); ++i) {
    if (!(*j)[i].is_string()) {
      bad(key + "[" + std::to_string(i) + "]", "must be a string, not " + type_name((*j)[i]));
      continue;
    }
    out.push_back((*j)[i].get<std::string>());
  }
  return out;
}

std::optional<std::map<std::string, std::string>> BodyInput::string_map(const std::string& key) {
  const auto* j = take(key, false);
  if (!j) return std::nullopt;
  if (!j->is_object()) {
    bad(key, "must be an object of strings, not " + type_name(*j));
    return std::nullopt;
  }
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : j->items()) {
    if (!v.is_string()) {
      bad(key + "." + k, "must be a string, not " + type_name(v));
      continue;
    }
    out[k] = v.get<std::string>();
  }
  return out;
}

void BodyInput::done() {
  std::vector<std::string> unknown;
  for (const auto& [k, v] : json_.items()) {
    if (!read_.count(k)) unknown.push_back(k);
  }
  for (const auto& k : unknown) {
    problems_.push_back(
        {k, "unknown field (known: " + field_list({read_.begin(), read_.end()}) + ")"});
  }
  if (!problems_.empty()) throw ValidationError(std::move(problems_));
}

QueryInput::QueryInput(const HttpRequest& req) {
  std::string_view q = req.query;
  while (!q.empty()) {
    const auto amp = q.find('&');
    const auto part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    auto key = percent_decode(part.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? "" : part.substr(eq + 1), true);
    if (!key || !value) {
      bad("query", "malformed percent-encoding in \"" + std::string(part) + "\"");
      continue;
    }
    params_.emplace(std::move(*key), std::move(*value));
  }
}

void QueryInput::bad(const std::string& field, std::string reason) {
  problems_.push_back({"query." + field, std::move(reason)});
}

std::optional<std::string> QueryInput::string(const std::string& key) {
  read_.insert(key);
  const auto n = params_.count(key);
  if (n == 0) return std::nullopt;
  if (n > 1) {
    bad(key, "given more than once");
    return std::nullopt;
  }
  return params_.find(key)->second;
}

std::optional<std::int64_t> QueryInput::integer(const std::string& key, std::int64_t min,
                                                std::int64_t max) {
  const auto s = string(key);
  if (!s) return std::nullopt;
  std::int64_t v = 0;
  std::size_t used = 0;
  try {
    v = std::stoll(*s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s->size()) {
    bad(key, "must be an integer, not \"" + *s + "\"");
    return std::nullopt;
  }
  if (v < min || v > max) {
    bad(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> QueryInput::boolean(const std::string& key) {
  const auto s = string(key);
  if (!s) return std::nullopt;
  if (*s == "true") return true;
  if (*s == "false") return false;
  bad(key, "must be true or false, not \"" + *s + "\"");
  return std::nullopt;
}

std::optional<std::int64_t> QueryInput::time(const std::string& key) {
  const auto s = string(key);
  if (!s) return std::nullopt;
  const auto t = parse_rfc3339(*s);
  if (!t) bad(key, "must be an RFC 3339 time, not \"" + *s + "\"");
  return t;
}

std::map<std::string, std::string> QueryInput::labels(const std::string& key) {
  read_.insert(key);
  std::map<std::string, std::string> out;
  const auto [b, e] = params_.equal_range(key);
  for (auto it = b; it != e; ++it) {
    const auto colon = it->second.find(':');
    if (colon == std::string::npos || colon == 0) {
      bad(key, "must be key:value, not \"" + it->second + "\"");
      continue;
    }
    out[it->second.substr(0, colon)] = it->second.substr(colon + 1);
  }
  return out;
}

void QueryInput::done() {
  std::set<std::string> unknown;
  for (const auto& [k, v] : params_) {
    if (!read_.count(k)) unknown.insert(k);
  }
  for (const auto& k : unknown) {
    bad(k, "unknown parameter (known: " + field_list({read_.begin(), read_.end()}) + ")");
  }
  if (!problems_.empty()) throw ValidationError(std::move(problems_));
}

}  // namespace devcycle::server
