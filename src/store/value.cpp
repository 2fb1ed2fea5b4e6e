#include "devcycle/store/value.h"

#include <cstring>

#include "devcycle/common/error.h"

namespace devcycle {

Blob Blob::of(std::string_view data) {
  Blob b;
  b.bytes.resize(data.size());
  if (!data.empty()) std::memcpy(b.bytes.data(), data.data(), data.size());
  return b;
}

std::string Blob::str() const {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}
namespace {

[[noreturn]] void wrong_type(Value::Type want, Value::Type have) {
  throw Error(ErrorCode::kInternal,
              "value is " + std::string(to_string(have)) + ", not " + std::string(to_string(want)));
}

}  // namespace

std::string_view to_string(Value::Type type) noexcept {
  switch (type) {
    case Value::Type::kNull:
      return "null";
    case Value::Type::kInt:
      return "int";
    case Value::Type::kDouble:
      return "double";
    case Value::Type::kText:
      return "text";
    case Value::Type::kBlob:
      return "blob";
  }
  return "unknown";
}

std::int64_t Value::as_int() const {
  if (const auto* v = std::get_if<std::int64_t>(&v_)) return *v;
  wrong_type(Type::kInt, type());
}

double Value::as_double() const {
  if (const auto* v = std::get_if<double>(&v_)) return *v;
  if (const auto* v = std::get_if<std::int64_t>(&v_)) return static_cast<double>(*v);
  wrong_type(Type::kDouble, type());
}

const std::string& Value::as_text() const {
  if (const auto* v = std::get_if<std::string>(&v_)) return *v;
  wrong_type(Type::kText, type());
}

const Blob& Value::as_blob() const {
  if (const auto* v = std::get_if<Blob>(&v_)) return *v;
  wrong_type(Type::kBlob, type());
}

std::optional<std::int64_t> Value::as_optional_int() const {
  if (is_null()) return std::nullopt;
  return as_int();
}

std::optional<std::string> Value::as_optional_text() const {
  if (is_null()) return std::nullopt;
  return as_text();
}

const Value& Row::operator[](std::string_view column) const {
  for (std::size_t i = 0; i < columns_->size(); ++i) {
    if ((*columns_)[i] == column) return values_.at(i);
  }
  throw Error(ErrorCode::kInternal, "result has no column \"" + std::string(column) + "\"");
}

}  // namespace devcycle
