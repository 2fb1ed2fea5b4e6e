// Values that cross the SQL layer: NULL, 64-bit integer, double, text, blob.
//
// These are the portable types of the schema. Ids are uuid v7 text, times are
// int64 microseconds UTC, JSON is text (JSONB on PostgreSQL), booleans are 0/1.
//
// Thread-safety: Value, Row and ResultSet are plain values.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace devcycle {

struct Blob {
  std::vector<std::byte> bytes;
  // From and to a std::string used as a byte buffer (any bytes, NUL included).
  static Blob of(std::string_view data);
  std::string str() const;
  bool operator==(const Blob&) const = default;
};

class Value {
 public:
  enum class Type { kNull, kInt, kDouble, kText, kBlob };

  Value() = default;
  Value(std::nullptr_t) {}
  template <std::integral T>
  Value(T v) : v_(static_cast<std::int64_t>(v)) {}
  Value(double v) : v_(v) {}
  Value(std::string v) : v_(std::move(v)) {}
  Value(std::string_view v) : v_(std::string(v)) {}
  Value(const char* v) : v_(std::string(v)) {}
  Value(Blob v) : v_(std::move(v)) {}
  template <class T>
  Value(const std::optional<T>& v) {
    if (v) *this = Value(*v);
  }

  Type type() const noexcept { return static_cast<Type>(v_.index()); }
  bool is_null() const noexcept { return type() == Type::kNull; }

  // Typed access; each throws Error{kInternal} naming both types when the
  // value holds another type. as_double() also accepts an integer.
  std::int64_t as_int() const;
  double as_double() const;
  const std::string& as_text() const;
  const Blob& as_blob() const;
  bool as_bool() const { return as_int() != 0; }
  std::optional<std::int64_t> as_optional_int() const;
  std::optional<std::string> as_optional_text() const;

  bool operator==(const Value&) const = default;

 private:
  std::variant<std::monostate, std::int64_t, double, std::string, Blob> v_;
};

std::string_view to_string(Value::Type type) noexcept;

// One row of a result; columns are shared by every row of one ResultSet.
class Row {
 public:
  Row(std::shared_ptr<const std::vector<std::string>> columns, std::vector<Value> values)
      : columns_(std::move(columns)), values_(std::move(values)) {}

  std::size_t size() const noexcept { return values_.size(); }
  const Value& operator[](std::size_t i) const { return values_.at(i); }
  // Throws Error{kInternal} naming the column when there is no such column.
  const Value& operator[](std::string_view column) const;

 private:
  std::shared_ptr<const std::vector<std::string>> columns_;
  std::vector<Value> values_;
};

struct ResultSet {
  std::shared_ptr<const std::vector<std::string>> columns;
  std::vector<Row> rows;

  bool empty() const noexcept { return rows.empty(); }
  std::size_t size() const noexcept { return rows.size(); }
  auto begin() const { return rows.begin(); }
  auto end() const { return rows.end(); }
  const Row& operator[](std::size_t i) const { return rows.at(i); }
};

}  // namespace devcycle
