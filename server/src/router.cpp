#include "router.h"

#include "input.h"

namespace devcycle::server {

namespace {

std::vector<std::string> split(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    const auto end = path.find('/', i);
    out.emplace_back(path.substr(i, end == std::string_view::npos ? path.size() - i : end - i));
    i = end == std::string_view::npos ? path.size() : end;
  }
  return out;
}

}  // namespace

void Router::add(Route route) {
  segments_.push_back(split(route.pattern));
  routes_.push_back(std::move(route));
}

namespace {

bool is_param(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

// Whether pattern `a` is more specific than `b` (same length): at the first
// segment where one is literal and the other a parameter, the literal wins,
// as OpenAPI matches concrete paths before templated ones.
bool more_specific(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (is_param(a[i]) != is_param(b[i])) return !is_param(a[i]);
  }
  return false;
}

// Whether two patterns are one path: literals equal, parameters where the
// other has parameters (their names may differ).
bool same_path(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (is_param(a[i]) != is_param(b[i]) || (!is_param(a[i]) && a[i] != b[i])) return false;
  }
  return true;
}

}  // namespace

Router::Match Router::match(std::string_view method, std::string_view path) const {
  Match m;
  const auto parts = split(path);
  // The path's pattern is the most specific one it matches: "/workflows/validate"
  // is that literal route's path, never the workflow named "validate".
  const std::vector<std::string>* best = nullptr;
  for (std::size_t r = 0; r < routes_.size(); ++r) {
    const auto& pattern = segments_[r];
    if (pattern.size() != parts.size()) continue;
    bool ok = true;
    for (std::size_t i = 0; i < parts.size() && ok; ++i) {
      if (is_param(pattern[i])) {
        const auto decoded = percent_decode(parts[i], false);
        if (!decoded || decoded->empty()) {
          m.bad_path = m.bad_path || !decoded.has_value();
          ok = false;
        }
      } else if (pattern[i] != parts[i]) {
        ok = false;
      }
    }
    if (ok && (!best || more_specific(pattern, *best))) best = &pattern;
  }
  if (!best) return m;
  m.bad_path = false;
  for (std::size_t r = 0; r < routes_.size(); ++r) {
    if (!same_path(segments_[r], *best)) continue;
    const auto& pattern = segments_[r];
    if (routes_[r].method != method) {
      m.allowed.push_back(routes_[r].method);
      continue;
    }
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (is_param(pattern[i])) {
        m.params[pattern[i].substr(1, pattern[i].size() - 2)] = *percent_decode(parts[i], false);
      }
    }
    m.route = &routes_[r];
    m.allowed.clear();
    return m;
  }
  return m;
}

}  // namespace devcycle::server
