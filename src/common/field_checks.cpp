#include "common/field_checks.h"

#include <string>

#include "common/utf8.h"
#include "devcycle/common/error.h"

namespace devcycle::internal {
namespace {

[[noreturn]] void fail(std::string_view field, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, std::string(field) + ": " + why);
}

bool in_set(char c, std::string_view set) {
  for (std::size_t i = 0; i < set.size(); ++i) {
    if (i + 2 < set.size() && set[i + 1] == '-') {
      if (c >= set[i] && c <= set[i + 2]) return true;
      i += 2;
    } else if (c == set[i]) {
      return true;
    }
  }
  return false;
}

}  // namespace

void check_text(std::string_view field, std::string_view value, std::size_t max_bytes,
                bool required) {
  if (required && value.empty()) fail(field, "must not be empty");
  if (value.size() > max_bytes) {
    fail(field, "is " + std::to_string(value.size()) + " bytes, more than the " +
                    std::to_string(max_bytes) + " allowed");
  }
  if (!valid_utf8(value)) fail(field, "is not valid UTF-8");
  for (unsigned char c : value) {
    if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
      fail(field, "contains a control character");
    }
  }
}

void check_name(std::string_view field, std::string_view value, std::size_t max_length,
                std::string_view first, std::string_view rest, std::string_view rule) {
  if (value.empty()) fail(field, "must not be empty");
  if (value.size() > max_length) {
    fail(field, "is longer than " + std::to_string(max_length) + " characters");
  }
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (!in_set(value[i], i == 0 ? first : rest)) {
      fail(field, "\"" + std::string(valid_utf8(value) ? value : "(invalid UTF-8)") +
                      "\" must match " + std::string(rule));
    }
  }
}

void check_lower_name(std::string_view field, std::string_view value, std::size_t max_length) {
  check_name(field, value, max_length, "a-z0-9", "a-z0-9._-", "[a-z0-9][a-z0-9._-]*");
}

}  // namespace devcycle::internal
