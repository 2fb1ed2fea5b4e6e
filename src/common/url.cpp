#include "common/url.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "devcycle/common/error.h"

namespace devcycle::internal {
namespace {

[[noreturn]] void fail(std::string_view label, std::string_view text, std::string_view reason) {
  throw Error(ErrorCode::kInvalidArgument, std::string(label) + ": \"" + redact_url(text) +
                                               "\" is not a valid URL: " + std::string(reason));
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s, std::string_view label, std::string_view text) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) fail(label, text, "truncated %-escape");
    const int hi = hex_value(s[i + 1]);
    const int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) fail(label, text, "bad %-escape");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

HostPort parse_host_port(std::string_view hp, std::string_view label, std::string_view text) {
  HostPort out;
  std::string_view host = hp;
  std::string_view port;
  if (!hp.empty() && hp.front() == '[') {  // [::1]:5432
    const auto close = hp.find(']');
    if (close == std::string_view::npos) fail(label, text, "unclosed '[' in host");
    host = hp.substr(1, close - 1);
    const auto rest = hp.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') fail(label, text, "unexpected text after ']'");
      port = rest.substr(1);
    }
  } else if (const auto colon = hp.rfind(':'); colon != std::string_view::npos) {
    host = hp.substr(0, colon);
    port = hp.substr(colon + 1);
  }
  if (host.empty()) fail(label, text, "missing host");
  for (char c : host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ||
          c == ':')) {
      fail(label, text, "bad character '" + std::string(1, c) + "' in host");
    }
  }
  out.host = std::string(host);
  if (!port.empty() || hp.ends_with(':')) {
    int p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p < 1 || p > 65535) {
      fail(label, text, "port \"" + std::string(port) + "\" is not a number from 1 to 65535");
    }
    out.port = p;
  }
  return out;
}

}  // namespace

const std::string* Url::query_value(std::string_view key) const {
  for (const auto& [k, v] : query) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query,
                                                             std::string_view label,
                                                             std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      fail(label, text, "query parameter \"" + std::string(part) + "\" is not key=value");
    }
    out.emplace_back(percent_decode(part.substr(0, eq), label, text),
                     percent_decode(part.substr(eq + 1), label, text));
  }
  return out;
}

Url parse_url(std::string_view text, std::string_view label) {
  Url url;
  const auto sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) fail(label, text, "expected scheme://...");
  for (char c : text.substr(0, sep)) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.')) {
      fail(label, text, "bad character in scheme");
    }
    url.scheme.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  std::string_view rest = text.substr(sep + 3);
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    url.query = parse_query(rest.substr(q + 1), label, text);
    rest = rest.substr(0, q);
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) url.path = percent_decode(rest.substr(slash), label, text);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const auto userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const auto colon = userinfo.find(':');
    url.user = percent_decode(userinfo.substr(0, colon), label, text);
    if (colon != std::string_view::npos) {
      url.password = percent_decode(userinfo.substr(colon + 1), label, text);
    }
  }
  while (!authority.empty()) {
    const auto comma = authority.find(',');
    url.hosts.push_back(parse_host_port(authority.substr(0, comma), label, text));
    authority = comma == std::string_view::npos ? std::string_view() : authority.substr(comma + 1);
    if (comma != std::string_view::npos && authority.empty())
      fail(label, text, "empty host after ','");
  }
  return url;
}

void fail_setting(std::string_view label, std::string_view text, std::string_view reason) {
  throw Error(ErrorCode::kInvalidArgument,
              std::string(label) + ": \"" + redact_url(text) + "\" " + std::string(reason));
}

void require_bare(const Url& url, std::string_view text, std::string_view label) {
  if (!url.hosts.empty() || !url.path.empty() || !url.query.empty() || !url.user.empty()) {
    fail_setting(label, text,
                 "must be exactly " + url.scheme + ":// (it takes no host, path or parameters)");
  }
}

std::string redact_url(std::string_view text) {
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) return std::string(text);
  const auto start = sep + 3;
  const auto end = text.find_first_of("/?", start);
  const auto authority = text.substr(start, end == std::string_view::npos ? end : end - start);
  const auto at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(text);
  const auto colon = authority.substr(0, at).find(':');
  if (colon == std::string_view::npos) return std::string(text);
  std::string out(text.substr(0, start + colon + 1));
  out += "***";
  out += text.substr(start + at);
  return out;
}

}  // namespace devcycle::internal
