#include "json_out.h"

#include <ctime>

namespace devcycle::server {

void JsonOut::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_.push_back(',');
    first_.back() = false;
  }
}

JsonOut& JsonOut::begin_object() {
  separate();
  out_.push_back('{');
  first_.push_back(true);
  return *this;
}

JsonOut& JsonOut::end_object() {
  out_.push_back('}');
  first_.pop_back();
  return *this;
}

JsonOut& JsonOut::begin_array() {
  separate();
  out_.push_back('[');
  first_.push_back(true);
  return *this;
}

JsonOut& JsonOut::end_array() {
  out_.push_back(']');
  first_.pop_back();
  return *this;
}

JsonOut& JsonOut::key(std::string_view k) {
  str(k);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}

JsonOut& JsonOut::str(std::string_view s) {
  separate();
  out_.push_back('"');
  static constexpr char kHex[] = "0123456789abcdef";
  std::size_t plain = 0;  // start of the run of characters that need no escape
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out_.append(s.data() + plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"':
        out_ += "\\\"";
        break;
      case '\\':
        out_ += "\\\\";
        break;
      case '\n':
        out_ += "\\n";
        break;
      case '\r':
        out_ += "\\r";
        break;
      case '\t':
        out_ += "\\t";
        break;
      case '\b':
        out_ += "\\b";
        break;
      case '\f':
        out_ += "\\f";
        break;
      default:
        out_ += "\\u00";
        out_.push_back(kHex[c >> 4]);
        out_.push_back(kHex[c & 15]);
    }
  }
  out_.append(s.data() + plain, s.size() - plain);
  out_.push_back('"');
  return *this;
}

JsonOut& JsonOut::num(std::int64_t n) {
  separate();
  out_ += std::to_string(n);
  return *this;
}

JsonOut& JsonOut::boolean(bool b) {
  separate();
  out_ += b ? "true" : "false";
  return *this;
}

JsonOut& JsonOut::null() {
  separate();
  out_ += "null";
  return *this;
}

JsonOut& JsonOut::raw(std::string_view json_text) {
  if (json_text.empty()) return null();
  separate();
  out_ += json_text;
  return *this;
}

JsonOut& JsonOut::time(Micros t) {
  separate();
  const std::time_t secs =
      static_cast<std::time_t>(t >= 0 ? t / 1'000'000 : (t - 999'999) / 1'000'000);
  auto micros = t - static_cast<Micros>(secs) * 1'000'000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  const auto put = [&buf](int at, long v, int width) {
    for (int i = width - 1; i >= 0; --i, v /= 10) buf[at + i] = static_cast<char>('0' + v % 10);
  };
  put(0, tm.tm_year + 1900, 4);
  buf[4] = '-';
  put(5, tm.tm_mon + 1, 2);
  buf[7] = '-';
  put(8, tm.tm_mday, 2);
  buf[10] = 'T';
  put(11, tm.tm_hour, 2);
  buf[13] = ':';
  put(14, tm.tm_min, 2);
  buf[16] = ':';
  put(17, tm.tm_sec, 2);
  buf[19] = '.';
  put(20, static_cast<long>(micros), 6);
  buf[26] = 'Z';
  out_.push_back('"');
  out_.append(buf, 27);
  out_.push_back('"');
  return *this;
}

}  // namespace devcycle::server
