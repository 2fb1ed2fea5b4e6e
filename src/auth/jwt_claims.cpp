#include "auth/jwt_claims.h"

#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

namespace devcycle::internal {

namespace {

class FlatReader {
 public:
  explicit FlatReader(std::string_view s) : p_(s.data()), end_(s.data() + s.size()) {}

  void skip_space() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool eat(char c) {
    skip_space();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool at(char c) {
    skip_space();
    return p_ < end_ && *p_ == c;
  }
  bool done() {
    skip_space();
    return p_ == end_;
  }

  // A string of printable ASCII without escapes.
  bool string(std::string_view& out) {
    if (!eat('"')) return false;
    const char* start = p_;
    while (p_ < end_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        out = std::string_view(start, static_cast<std::size_t>(p_ - start));
        ++p_;
        return true;
      }
      if (c == '\\' || c < 0x20 || c >= 0x80) return false;
      ++p_;
    }
    return false;
  }

  // A JSON integer (no fraction or exponent) that fits in int64.
  bool integer(std::int64_t& out) {
    skip_space();
    bool negative = false;
    if (p_ < end_ && *p_ == '-') {
      negative = true;
      ++p_;
    }
    if (p_ >= end_ || *p_ < '0' || *p_ > '9') return false;
    if (*p_ == '0' && p_ + 1 < end_ && p_[1] >= '0' && p_[1] <= '9') return false;
    std::uint64_t v = 0;
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
      const auto digit = static_cast<std::uint64_t>(*p_ - '0');
      if (v > (kMax - digit) / 10) return false;  // before it could wrap
      v = v * 10 + digit;
      ++p_;
    }
    if (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
    out = negative ? -static_cast<std::int64_t>(v) : static_cast<std::int64_t>(v);
    return true;
  }

  bool literal(std::string_view word) {
    skip_space();
    if (static_cast<std::size_t>(end_ - p_) < word.size() ||
        std::memcmp(p_, word.data(), word.size()) != 0)
      return false;
    p_ += word.size();
    return true;
  }

 private:
  const char* p_;
  const char* end_;
};

}  // namespace

bool read_flat_claims(std::string_view json, RawClaims& out) {
  out = RawClaims{};
  FlatReader r(json);
  if (!r.eat('{')) return false;
  unsigned seen = 0;  // one bit per claim we keep, to refuse duplicates
  auto once = [&seen](unsigned bit) {
    if (seen & bit) return false;
    seen |= bit;
    return true;
  };
  if (r.eat('}')) return r.done();
  do {
    std::string_view key;
    if (!r.string(key) || !r.eat(':')) return false;
    std::optional<std::string_view>* text = nullptr;
    std::optional<std::int64_t>* number = nullptr;
    unsigned bit = 0;
    if (key == "iss")
      text = &out.iss, bit = 1;
    else if (key == "sub")
      text = &out.sub, bit = 2;
    else if (key == "jti")
      text = &out.jti, bit = 4;
    else if (key == "typ")
      text = &out.typ, bit = 8;
    else if (key == "role")
      text = &out.role, bit = 16;
    else if (key == "fam")
      text = &out.fam, bit = 32;
    else if (key == "exp")
      number = &out.exp, bit = 64;
    else if (key == "nbf")
      number = &out.nbf, bit = 128;
    else if (key == "iat")
      number = &out.iat, bit = 256;
    else if (key == "aud")
      bit = 512;
    else if (key == "gen")
      number = &out.gen, bit = 1024;
    // Other keys may repeat only through the full parser.
    if (bit != 0 && !once(bit)) return false;

    if (r.at('"')) {
      std::string_view v;
      if (!r.string(v)) return false;
      if (text) *text = v;
      if (bit == 512) out.aud.push_back(v);
    } else if (r.at('-') || (r.at('0') || r.at('1') || r.at('2') || r.at('3') || r.at('4') ||
                             r.at('5') || r.at('6') || r.at('7') || r.at('8') || r.at('9'))) {
      std::int64_t v = 0;
      if (!r.integer(v)) return false;
      if (number) *number = v;
    } else if (!(r.literal("true") || r.literal("false") || r.literal("null"))) {
      return false;  // arrays, objects, anything malformed
    }
  } while (r.eat(','));
  return r.eat('}') && r.done();
}

void read_claims(const nlohmann::json& object, RawClaims& out) {
  out = RawClaims{};
  auto text = [&](const char* name, std::optional<std::string_view>& field) {
    const auto it = object.find(name);
    if (it != object.end() && it->is_string())
      field = std::string_view(it->get_ref<const std::string&>());
  };
  auto number = [&](const char* name, std::optional<std::int64_t>& field) {
    const auto it = object.find(name);
    if (it != object.end() && it->is_number_integer()) field = it->get<std::int64_t>();
  };
  text("iss", out.iss);
  text("sub", out.sub);
  text("jti", out.jti);
  text("typ", out.typ);
  text("role", out.role);
  text("fam", out.fam);
  number("exp", out.exp);
  number("nbf", out.nbf);
  number("iat", out.iat);
  number("gen", out.gen);
  if (const auto aud = object.find("aud"); aud != object.end()) {
    if (aud->is_string()) out.aud.emplace_back(aud->get_ref<const std::string&>());
    if (aud->is_array()) {
      for (const auto& a : *aud)
        if (a.is_string()) out.aud.emplace_back(a.get_ref<const std::string&>());
    }
  }
}

}  // namespace devcycle::internal
