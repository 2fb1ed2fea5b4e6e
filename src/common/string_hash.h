// Transparent hashing so that unordered maps keyed by std::string can be
// searched with a std::string_view without building a string. Internal.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace devcycle::internal {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

}  // namespace devcycle::internal
