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

Router::Match Router::match(std::string_view method, std::string_view path) const {
  Match m;
  const auto parts = split(path);
  for (std::size_t r = 0; r < routes_.size(); ++r) {
    const auto& pattern = segments_[r];
    if (pattern.size() != parts.size()) continue;
    std::map<std::string, std::string> params;
    bool ok = true;
    for (std::size_t i = 0; i < parts.size() && ok; ++i) {
      const auto& p = pattern[i];
      if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
        auto decoded = percent_decode(parts[i], false);
        if (!decoded || decoded->empty()) {
          m.bad_path = !decoded.has_value();
          ok = false;
          break;
        }
        params[p.substr(1, p.size() - 2)] = std::move(*decoded);
      } else if (p != parts[i]) {
        ok = false;
      }
    }
    if (!ok) continue;
    if (routes_[r].method != method) {
      m.allowed.push_back(routes_[r].method);
      continue;
    }
    m.route = &routes_[r];
    m.params = std::move(params);
    return m;
  }
  return m;
}

}  // namespace devcycle::server
