#include "devcycle/common/json_schema.h"

#include <re2/re2.h>

#include <cmath>
#include <map>
#include <memory>
#include <set>

#include "common/json_schema_internal.h"
#include "common/utf8.h"
#include "devcycle/common/error.h"

namespace devcycle {

using nlohmann::json;

struct JsonSchema::Impl {
  json schema = json::object();
  // By pattern text. RE2 matches in time linear in the value, without
  // recursion: no pattern and value can stall or crash the caller.
  std::map<std::string, std::shared_ptr<const re2::RE2>> patterns;
};

namespace internal {

std::string json_path_child(const std::string& parent, const std::string& key) {
  bool plain = !key.empty() && !(key[0] >= '0' && key[0] <= '9');
  for (char c : key) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
      plain = false;
    }
  }
  if (plain) return parent + "." + key;
  return parent + "[" + json(key).dump(-1, ' ', false, json::error_handler_t::replace) + "]";
}

}  // namespace internal

namespace {

constexpr std::size_t kMaxPatternInput = 64 * 1024;

const std::set<std::string, std::less<>> kKeywords = {"type",
                                                      "enum",
                                                      "const",
                                                      "properties",
                                                      "required",
                                                      "additionalProperties",
                                                      "items",
                                                      "minItems",
                                                      "maxItems",
                                                      "minimum",
                                                      "maximum",
                                                      "exclusiveMinimum",
                                                      "exclusiveMaximum",
                                                      "minLength",
                                                      "maxLength",
                                                      "pattern",
                                                      "title",
                                                      "description",
                                                      "default",
                                                      "examples",
                                                      "$schema",
                                                      "$id",
                                                      "$comment"};
const std::set<std::string, std::less<>> kTypes = {"null",   "boolean", "object", "array",
                                                   "number", "integer", "string"};

[[noreturn]] void bad_schema(std::string_view field, const std::string& path,
                             const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, std::string(field) + " " + path + ": " + why);
}

bool is_count(const json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0);
}

void check_schema(const json& s, const std::string& path, int depth, std::string_view field,
                  JsonSchema::Impl& impl) {
  if (depth > kMaxJsonDepth) bad_schema(field, path, "nested too deeply");
  if (s.is_boolean()) return;
  if (!s.is_object()) bad_schema(field, path, "a schema must be an object or a boolean");
  for (const auto& [key, v] : s.items()) {
    const auto kp = internal::json_path_child(path, key);
    if (!kKeywords.count(key)) {
      bad_schema(
          field, kp,
          "unsupported keyword \"" + key + "\" (see docs/concepts.md for the supported subset)");
    }
    if (key == "type") {
      auto check_name = [&](const json& t) {
        if (!t.is_string() || !kTypes.count(t.get<std::string>())) {
          bad_schema(field, kp,
                     "must name null, boolean, object, array, number, integer or string");
        }
      };
      if (v.is_array()) {
        if (v.empty()) bad_schema(field, kp, "must not be empty");
        for (const auto& t : v) check_name(t);
      } else {
        check_name(v);
      }
    } else if (key == "enum") {
      if (!v.is_array() || v.empty()) bad_schema(field, kp, "must be a non-empty array");
    } else if (key == "properties") {
      if (!v.is_object()) bad_schema(field, kp, "must be an object of schemas");
      for (const auto& [name, sub] : v.items()) {
        check_schema(sub, internal::json_path_child(kp, name), depth + 1, field, impl);
      }
    } else if (key == "required") {
      if (!v.is_array()) bad_schema(field, kp, "must be an array of property names");
      for (const auto& n : v) {
        if (!n.is_string()) bad_schema(field, kp, "must be an array of property names");
      }
    } else if (key == "additionalProperties" || key == "items") {
      check_schema(v, kp, depth + 1, field, impl);
    } else if (key == "minimum" || key == "maximum" || key == "exclusiveMinimum" ||
               key == "exclusiveMaximum") {
      if (!v.is_number()) bad_schema(field, kp, "must be a number");
    } else if (key == "minLength" || key == "maxLength" || key == "minItems" || key == "maxItems") {
      if (!is_count(v)) bad_schema(field, kp, "must be a non-negative integer");
    } else if (key == "pattern") {
      if (!v.is_string()) bad_schema(field, kp, "must be a string");
      const auto text = v.get<std::string>();
      if (text.size() > 512) bad_schema(field, kp, "longer than 512 characters");
      re2::RE2::Options options;
      options.set_log_errors(false);
      auto re = std::make_shared<const re2::RE2>(text, options);
      if (!re->ok()) {
        // Backreferences and lookaround, which cannot match in linear time,
        // are refused here with RE2's reason.
        bad_schema(field, kp, "not a valid regular expression (RE2 syntax): " + re->error());
      }
      impl.patterns.emplace(text, std::move(re));
    }
  }
}

bool has_type(const json& v, const std::string& t) {
  if (t == "null") return v.is_null();
  if (t == "boolean") return v.is_boolean();
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "number") return v.is_number();
  if (t == "string") return v.is_string();
  if (t == "integer") {
    if (v.is_number_integer()) return true;
    if (v.is_number_float()) {
      const double d = v.get<double>();
      return std::isfinite(d) && std::floor(d) == d;
    }
  }
  return false;
}

std::string number_text(const json& v) { return v.dump(); }

void check(const JsonSchema::Impl& impl, const json& s, const json& v, const std::string& path,
           std::vector<SchemaViolation>& out) {
  if (s.is_boolean()) {
    if (!s.get<bool>()) out.push_back({path, "is not allowed here"});
    return;
  }
  if (const auto t = s.find("type"); t != s.end()) {
    bool ok = false;
    std::string names;
    const auto one = [&](const json& name) {
      ok = ok || has_type(v, name.get<std::string>());
      names += (names.empty() ? "" : " or ") + name.get<std::string>();
    };
    if (t->is_array()) {
      for (const auto& n : *t) one(n);
    } else {
      one(*t);
    }
    if (!ok) {
      out.push_back({path, "must be " +
                               (names == "integer" || names == "array" || names == "object"
                                    ? std::string("an ")
                                    : std::string("a ")) +
                               names});
      return;  // the other keywords would only repeat the type error
    }
  }
  if (const auto e = s.find("enum"); e != s.end()) {
    bool found = false;
    for (const auto& option : *e) found = found || option == v;
    if (!found) out.push_back({path, "must be one of " + e->dump()});
  }
  if (const auto c = s.find("const"); c != s.end() && *c != v) {
    out.push_back({path, "must be " + c->dump()});
  }
  if (v.is_object()) {
    const auto props = s.find("properties");
    if (const auto r = s.find("required"); r != s.end()) {
      for (const auto& name : *r) {
        if (!v.contains(name.get<std::string>())) {
          out.push_back({internal::json_path_child(path, name.get<std::string>()), "is required"});
        }
      }
    }
    const auto extra = s.find("additionalProperties");
    for (const auto& [key, child] : v.items()) {
      const auto cp = internal::json_path_child(path, key);
      if (props != s.end() && props->contains(key)) {
        check(impl, (*props)[key], child, cp, out);
      } else if (extra != s.end()) {
        if (extra->is_boolean() && !extra->get<bool>()) {
          out.push_back({cp, "is not an allowed property"});
        } else {
          check(impl, *extra, child, cp, out);
        }
      }
    }
  }
  if (v.is_array()) {
    if (const auto it = s.find("items"); it != s.end()) {
      for (std::size_t i = 0; i < v.size(); ++i) {
        check(impl, *it, v[i], path + "[" + std::to_string(i) + "]", out);
      }
    }
    if (const auto m = s.find("minItems"); m != s.end() && v.size() < m->get<std::size_t>()) {
      out.push_back({path, "must have at least " + m->dump() + " items"});
    }
    if (const auto m = s.find("maxItems"); m != s.end() && v.size() > m->get<std::size_t>()) {
      out.push_back({path, "must have at most " + m->dump() + " items"});
    }
  }
  if (v.is_number()) {
    const double d = v.get<double>();
    if (const auto m = s.find("minimum"); m != s.end() && d < m->get<double>()) {
      out.push_back({path, "must be at least " + number_text(*m)});
    }
    if (const auto m = s.find("maximum"); m != s.end() && d > m->get<double>()) {
      out.push_back({path, "must be at most " + number_text(*m)});
    }
    if (const auto m = s.find("exclusiveMinimum"); m != s.end() && d <= m->get<double>()) {
      out.push_back({path, "must be greater than " + number_text(*m)});
    }
    if (const auto m = s.find("exclusiveMaximum"); m != s.end() && d >= m->get<double>()) {
      out.push_back({path, "must be less than " + number_text(*m)});
    }
  }
  if (v.is_string()) {
    const auto& text = v.get_ref<const std::string&>();
    const auto len = internal::utf8_length(text);
    if (const auto m = s.find("minLength"); m != s.end() && len < m->get<std::size_t>()) {
      out.push_back({path, "must be at least " + m->dump() + " characters long"});
    }
    if (const auto m = s.find("maxLength"); m != s.end() && len > m->get<std::size_t>()) {
      out.push_back({path, "must be at most " + m->dump() + " characters long"});
    }
    if (const auto p = s.find("pattern"); p != s.end()) {
      if (text.size() > kMaxPatternInput) {
        out.push_back({path, "is longer than " + std::to_string(kMaxPatternInput) +
                                 " bytes, the most a pattern is matched against"});
      } else if (!re2::RE2::PartialMatch(text, *impl.patterns.at(p->get<std::string>()))) {
        out.push_back({path, "must match the pattern " + p->dump()});
      }
    }
  }
}

}  // namespace

JsonSchema::JsonSchema() : impl_(std::make_shared<Impl>()) {}

JsonSchema JsonSchema::parse(std::string_view schema_json, std::string_view field) {
  if (schema_json.size() > 64 * 1024) {
    throw Error(ErrorCode::kInvalidArgument, std::string(field) + ": larger than 64 KiB");
  }
  auto impl = std::make_shared<Impl>();
  impl->schema = internal::parse_json(schema_json, field);
  check_schema(impl->schema, "$", 0, field, *impl);
  JsonSchema out;
  out.impl_ = std::move(impl);
  return out;
}

std::vector<SchemaViolation> JsonSchema::validate(std::string_view document_json) const {
  try {
    return internal::validate(*this, internal::parse_json(document_json, "document"));
  } catch (const Error& e) {
    return {{"$", e.what()}};
  }
}

std::string JsonSchema::to_string() const { return impl_->schema.dump(); }

std::string describe(const std::vector<SchemaViolation>& violations) {
  std::string out;
  for (const auto& v : violations) {
    if (!out.empty()) out += "; ";
    out += v.path + ": " + v.message;
  }
  return out;
}

namespace internal {

std::vector<SchemaViolation> validate(const JsonSchema& schema, const json& doc) {
  std::vector<SchemaViolation> out;
  check(schema.impl(), schema.impl().schema, doc, "$", out);
  return out;
}

}  // namespace internal
}  // namespace devcycle
