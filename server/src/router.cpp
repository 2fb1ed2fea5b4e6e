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

bool is_param(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
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

// Whether `parts` fit `pattern`: literals equal, a parameter takes any
// (non-empty) segment. Percent-decoding waits for the chosen route.
bool fits(const std::vector<std::string>& pattern, const std::vector<std::string>& parts) {
  if (pattern.size() != parts.size()) return false;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (!is_param(pattern[i]) && pattern[i] != parts[i]) return false;
  }
  return true;
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

}  // namespace

void Router::add(Route route) {
  auto segments = split(route.path);
  std::size_t group = routes_.size();
  for (std::size_t r = 0; r < routes_.size(); ++r) {
    if (same_path(segments_[r], segments)) {
      group = path_of_[r];
      break;
    }
  }
  path_of_.push_back(group);
  segments_.push_back(std::move(segments));
  routes_.push_back(std::move(route));
}

Router::Match Router::match(std::string_view method, std::string_view path) const {
  Match m;
  const auto parts = split(path);
  // The path's pattern is the most specific one it fits: "/workflows/validate"
  // is that literal route's path, never the workflow named "validate".
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::size_t best = kNone;
  for (std::size_t r = 0; r < routes_.size(); ++r) {
    if (path_of_[r] != r || !fits(segments_[r], parts)) continue;  // one look per path
    if (best == kNone || more_specific(segments_[r], segments_[best])) best = r;
  }
  if (best == kNone) return m;
  for (std::size_t r = best; r < routes_.size(); ++r) {
    if (path_of_[r] != best) continue;
    if (routes_[r].method == method) {
      m.route = &routes_[r];
    } else {
      m.allowed.push_back(routes_[r].method);
    }
  }
  if (!m.route) return m;
  m.allowed.clear();
  const auto& pattern = segments_[static_cast<std::size_t>(m.route - routes_.data())];
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (!is_param(pattern[i])) continue;
    auto decoded = percent_decode(parts[i], false);
    if (!decoded || decoded->empty()) {
      m.route = nullptr;
      m.params.clear();
      m.bad_path = true;
      return m;
    }
    m.params[pattern[i].substr(1, pattern[i].size() - 2)] = std::move(*decoded);
  }
  return m;
}

}  // namespace devcycle::server
