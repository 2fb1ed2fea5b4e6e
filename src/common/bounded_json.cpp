#include "common/bounded_json.h"

#include <string>

#include "devcycle/common/error.h"

namespace devcycle {

bool json_deeper_than(std::string_view text, int limit) noexcept {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // whatever is escaped, it neither ends the string nor nests
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > limit) return true;
        break;
      case ']':
      case '}':
        --depth;
        break;
      default:
        break;
    }
  }
  return false;
}

}  // namespace devcycle

namespace devcycle::internal {

using nlohmann::json;

json parse_json(std::string_view text, std::string_view field) {
  if (json_deeper_than(text, kMaxJsonDepth)) {
    throw Error(ErrorCode::kInvalidArgument, std::string(field) + ": nested deeper than " +
                                                 std::to_string(kMaxJsonDepth) +
                                                 " levels, the limit");
  }
  try {
    return json::parse(text);
  } catch (const json::out_of_range&) {
    // 406: a number beyond a double (1e400)
    throw Error(ErrorCode::kInvalidArgument,
                std::string(field) + ": a number is out of range (beyond a 64-bit double)");
  } catch (const json::parse_error& e) {
    // e.what() reads "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
    std::string what = e.what();
    if (const auto i = what.find("] "); i != std::string::npos) what = what.substr(i + 2);
    throw Error(ErrorCode::kInvalidArgument, std::string(field) + ": not valid JSON: " + what);
  }
}

}  // namespace devcycle::internal
