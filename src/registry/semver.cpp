#include "devcycle/registry/semver.h"

#include <charconv>
#include <optional>

#include "devcycle/common/error.h"

namespace devcycle {
namespace {

constexpr std::size_t kMaxText = 256;

bool is_digits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

bool is_ident(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-')) {
      return false;
    }
  }
  return true;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const auto i = s.find(sep);
    out.push_back(s.substr(0, i));
    if (i == std::string_view::npos) return out;
    s = s.substr(i + 1);
  }
}

struct VersionError {
  std::string reason;
};

// A numeric identifier: digits, no leading zero, fits in 64 bits.
std::uint64_t number(std::string_view s, std::string_view what) {
  if (!is_digits(s))
    throw VersionError{std::string(what) + " \"" + std::string(s) + "\" is not a number"};
  if (s.size() > 1 && s[0] == '0') {
    throw VersionError{std::string(what) + " \"" + std::string(s) + "\" has a leading zero"};
  }
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    throw VersionError{std::string(what) + " \"" + std::string(s) + "\" is too large"};
  }
  return v;
}

std::vector<std::string> identifiers(std::string_view s, bool numeric_rules,
                                     std::string_view what) {
  std::vector<std::string> out;
  for (auto part : split(s, '.')) {
    if (!is_ident(part)) {
      throw VersionError{std::string(what) + " identifier \"" + std::string(part) +
                         "\" must be non-empty [0-9A-Za-z-]"};
    }
    if (numeric_rules && is_digits(part) && part.size() > 1 && part[0] == '0') {
      throw VersionError{std::string(what) + " identifier \"" + std::string(part) +
                         "\" has a leading zero"};
    }
    out.emplace_back(part);
  }
  return out;
}

// major[.minor[.patch[-pre][+build]]] where any number may be x, X or *.
struct Partial {
  std::optional<std::uint64_t> major, minor, patch;  // nullopt: wildcard or absent
  std::vector<std::string> prerelease;
  std::vector<std::string> build;
};

Partial parse_partial(std::string_view s) {
  Partial p;
  if (const auto plus = s.find('+'); plus != std::string_view::npos) {
    p.build = identifiers(s.substr(plus + 1), false, "build");
    s = s.substr(0, plus);
  }
  // The pre-release starts at the first '-' after the patch number.
  const auto parts3 =
      s.find('.') == std::string_view::npos ? std::string_view::npos : s.find('.', s.find('.') + 1);
  const auto dash = s.find('-', parts3 == std::string_view::npos ? 0 : parts3);
  if (dash != std::string_view::npos && parts3 != std::string_view::npos) {
    p.prerelease = identifiers(s.substr(dash + 1), true, "pre-release");
    s = s.substr(0, dash);
  }
  const auto parts = split(s, '.');
  if (parts.size() > 3) throw VersionError{"more than three numbers"};
  auto field = [](std::string_view part, std::string_view what) -> std::optional<std::uint64_t> {
    if (part == "x" || part == "X" || part == "*") return std::nullopt;
    return number(part, what);
  };
  p.major = field(parts[0], "major");
  if (parts.size() > 1) p.minor = field(parts[1], "minor");
  if (parts.size() > 2) p.patch = field(parts[2], "patch");
  // Once a number is a wildcard, the rest must be too (1.x.3 means nothing).
  if ((!p.major && (p.minor || p.patch)) || (!p.minor && p.patch) ||
      ((!p.major || !p.minor || !p.patch) && !p.prerelease.empty())) {
    throw VersionError{"a number follows a wildcard, or a pre-release follows a partial version"};
  }
  if (parts.size() > 1 && !p.minor && parts[1].empty()) throw VersionError{"empty minor"};
  return p;
}

int compare_identifiers(const std::string& a, const std::string& b) {
  const bool an = is_digits(a), bn = is_digits(b);
  if (an && bn) {
    if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
    return a.compare(b) < 0 ? -1 : (a == b ? 0 : 1);
  }
  if (an != bn) return an ? -1 : 1;  // numeric identifiers sort first
  return a.compare(b) < 0 ? -1 : (a == b ? 0 : 1);
}

}  // namespace

Version::Version(std::uint64_t major, std::uint64_t minor, std::uint64_t patch,
                 std::vector<std::string> prerelease, std::vector<std::string> build)
    : major_(major),
      minor_(minor),
      patch_(patch),
      prerelease_(std::move(prerelease)),
      build_(std::move(build)) {}

Version Version::parse(std::string_view text, std::string_view field) {
  auto fail = [&](const std::string& reason) -> Error {
    return Error(ErrorCode::kInvalidArgument, std::string(field) + ": \"" +
                                                  std::string(text.substr(0, kMaxText)) +
                                                  "\" is not a semantic version: " + reason);
  };
  if (text.size() > kMaxText) throw fail("longer than 256 characters");
  try {
    const auto p = parse_partial(text);
    if (!p.major || !p.minor || !p.patch) throw VersionError{"expected MAJOR.MINOR.PATCH"};
    return Version(*p.major, *p.minor, *p.patch, p.prerelease, p.build);
  } catch (const VersionError& e) {
    throw fail(e.reason);
  }
}

std::string Version::to_string() const {
  std::string out =
      std::to_string(major_) + "." + std::to_string(minor_) + "." + std::to_string(patch_);
  for (std::size_t i = 0; i < prerelease_.size(); ++i) out += (i ? "." : "-") + prerelease_[i];
  for (std::size_t i = 0; i < build_.size(); ++i) out += (i ? "." : "+") + build_[i];
  return out;
}

std::strong_ordering Version::operator<=>(const Version& o) const noexcept {
  if (auto c = major_ <=> o.major_; c != 0) return c;
  if (auto c = minor_ <=> o.minor_; c != 0) return c;
  if (auto c = patch_ <=> o.patch_; c != 0) return c;
  if (prerelease_.empty() || o.prerelease_.empty()) {
    return o.prerelease_.size() == 0
               ? (prerelease_.empty() ? std::strong_ordering::equal : std::strong_ordering::less)
               : std::strong_ordering::greater;
  }
  for (std::size_t i = 0; i < prerelease_.size() && i < o.prerelease_.size(); ++i) {
    const int c = compare_identifiers(prerelease_[i], o.prerelease_[i]);
    if (c != 0) return c < 0 ? std::strong_ordering::less : std::strong_ordering::greater;
  }
  return prerelease_.size() <=> o.prerelease_.size();
}

namespace {

using Op = VersionRange::Op;
using Comparator = VersionRange::Comparator;

Version lowest(std::uint64_t ma, std::uint64_t mi, std::uint64_t pa) {
  return Version(ma, mi, pa, {"0"});
}

// Appends the comparators that `token` (one operator and partial version) means.
void desugar(std::string_view token, std::vector<Comparator>& out) {
  std::string_view op;
  for (std::string_view candidate : {">=", "<=", ">", "<", "=", "^", "~"}) {
    if (token.starts_with(candidate)) {
      op = candidate;
      break;
    }
  }
  token.remove_prefix(op.size());
  if (token.starts_with('v')) token.remove_prefix(1);  // npm tolerates ^v1.2
  if (token.empty()) throw VersionError{"operator \"" + std::string(op) + "\" without a version"};
  const Partial p = parse_partial(token);
  const std::uint64_t ma = p.major.value_or(0), mi = p.minor.value_or(0), pa = p.patch.value_or(0);
  const Version exact(ma, mi, pa, p.prerelease);

  if (!p.major) {  // *, x: anything; <* or >* match nothing useful
    if (op == "<" || op == ">") out.push_back({Op::kLess, lowest(0, 0, 0)});
    return;
  }
  if (op == "^") {
    out.push_back({Op::kGreaterEqual, exact});
    if (ma > 0 || !p.minor)
      out.push_back({Op::kLess, lowest(ma + 1, 0, 0)});
    else if (mi > 0 || !p.patch)
      out.push_back({Op::kLess, lowest(0, mi + 1, 0)});
    else
      out.push_back({Op::kLess, lowest(0, 0, pa + 1)});
    return;
  }
  if (op == "~") {
    out.push_back({Op::kGreaterEqual, exact});
    if (!p.minor)
      out.push_back({Op::kLess, lowest(ma + 1, 0, 0)});
    else
      out.push_back({Op::kLess, lowest(ma, mi + 1, 0)});
    return;
  }
  const bool partial = !p.minor || !p.patch;
  // The exclusive upper end of a partial version: 1 -> 2.0.0-0, 1.2 -> 1.3.0-0.
  const Version next = !p.minor ? lowest(ma + 1, 0, 0) : lowest(ma, mi + 1, 0);
  if (op.empty() || op == "=") {
    if (!partial) {
      out.push_back({Op::kEqual, exact});
    } else {
      out.push_back({Op::kGreaterEqual, Version(ma, mi, pa)});
      out.push_back({Op::kLess, next});
    }
  } else if (op == ">=") {
    out.push_back({Op::kGreaterEqual, exact});
  } else if (op == ">") {
    if (partial)
      out.push_back({Op::kGreaterEqual, Version(next.major(), next.minor(), next.patch())});
    else
      out.push_back({Op::kGreater, exact});
  } else if (op == "<") {
    out.push_back({Op::kLess, partial ? lowest(ma, mi, pa) : exact});
  } else if (op == "<=") {
    if (partial)
      out.push_back({Op::kLess, next});
    else
      out.push_back({Op::kLessEqual, exact});
  }
}

bool passes(const Comparator& c, const Version& v) {
  switch (c.op) {
    case Op::kLess:
      return v < c.version;
    case Op::kLessEqual:
      return v <= c.version;
    case Op::kGreater:
      return v > c.version;
    case Op::kGreaterEqual:
      return v >= c.version;
    case Op::kEqual:
      return v == c.version;
  }
  return false;
}

}  // namespace

VersionRange VersionRange::parse(std::string_view text, std::string_view field) {
  auto fail = [&](const std::string& reason) -> Error {
    return Error(ErrorCode::kInvalidArgument, std::string(field) + ": \"" +
                                                  std::string(text.substr(0, kMaxText)) +
                                                  "\" is not a version range: " + reason);
  };
  if (text.size() > kMaxText) throw fail("longer than 256 characters");
  VersionRange r;
  r.sets_.clear();
  try {
    std::string_view rest = text;
    bool after_bar = false;
    for (;;) {
      const auto bar = rest.find("||");
      std::string_view set_text = rest.substr(0, bar);
      std::vector<Comparator> set;
      // Tokens are separated by spaces; "> = 1.0" style gaps after an operator are joined.
      std::string pending;
      std::size_t i = 0;
      bool any = false;
      while (i < set_text.size()) {
        while (i < set_text.size() && set_text[i] == ' ') ++i;
        if (i >= set_text.size()) break;
        std::size_t j = i;
        while (j < set_text.size() && set_text[j] != ' ') ++j;
        std::string token(set_text.substr(i, j - i));
        i = j;
        if (token == "-") throw VersionError{"hyphen ranges are not supported; write >=A <=B"};
        if (token.find_first_not_of("<>=^~") == std::string::npos) {
          pending += token;  // an operator alone: it applies to the next token
          continue;
        }
        desugar(pending + token, set);
        pending.clear();
        any = true;
      }
      if (!pending.empty()) throw VersionError{"operator \"" + pending + "\" without a version"};
      if (!any && (bar != std::string_view::npos || after_bar)) {
        throw VersionError{"empty set beside ||"};
      }
      r.sets_.push_back(std::move(set));
      if (bar == std::string_view::npos) break;
      rest = rest.substr(bar + 2);
      after_bar = true;
    }
  } catch (const VersionError& e) {
    throw fail(e.reason);
  }
  auto trimmed = text;
  while (!trimmed.empty() && trimmed.front() == ' ') trimmed.remove_prefix(1);
  while (!trimmed.empty() && trimmed.back() == ' ') trimmed.remove_suffix(1);
  r.text_ = trimmed.empty() ? "*" : std::string(trimmed);
  return r;
}

bool VersionRange::contains(const Version& v) const noexcept {
  for (const auto& set : sets_) {
    bool ok = true;
    for (const auto& c : set) {
      if (!passes(c, v)) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    if (!v.is_prerelease()) return true;
    for (const auto& c : set) {
      const auto& w = c.version;
      if (w.is_prerelease() && w.major() == v.major() && w.minor() == v.minor() &&
          w.patch() == v.patch()) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace devcycle
