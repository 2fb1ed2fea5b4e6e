// A JSON writer straight into a string, for the hot responses (lists of
// agents): building an nlohmann::json tree first and parsing stored JSON
// text again cost most of such a request. Stored JSON (configurations) is
// spliced in as it is: the library only stores valid JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "devcycle/common/clock.h"

namespace devcycle::server {

class JsonOut {
 public:
  JsonOut& begin_object();
  JsonOut& end_object();
  JsonOut& begin_array();
  JsonOut& end_array();
  JsonOut& key(std::string_view k);
  JsonOut& str(std::string_view s);
  JsonOut& num(std::int64_t n);
  JsonOut& boolean(bool b);
  JsonOut& null();
  // JSON text as it is; empty text is null.
  JsonOut& raw(std::string_view json_text);
  // RFC 3339 with microseconds, as format_time().
  JsonOut& time(Micros t);
  JsonOut& time(const std::optional<Micros>& t) { return t ? time(*t) : null(); }
  JsonOut& str_or_null(const std::optional<std::string>& s) { return s ? str(*s) : null(); }

  // key(k).str(v) and the like.
  template <class V>
  JsonOut& field(std::string_view k, const V& v);

  const std::string& text() const noexcept { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void separate();
  std::string out_;
  std::vector<bool> first_;  // per open container: nothing written in it yet
  bool after_key_ = false;
};

template <class V>
JsonOut& JsonOut::field(std::string_view k, const V& v) {
  key(k);
  if constexpr (std::is_same_v<V, bool>) {
    return boolean(v);
  } else if constexpr (std::is_integral_v<V>) {
    return num(static_cast<std::int64_t>(v));
  } else {
    return str(v);
  }
}

}  // namespace devcycle::server
