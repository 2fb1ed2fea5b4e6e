// Semantic versions (semver.org 2.0.0) and version ranges.
//
// Ranges use the npm grammar that most developers already know:
//   1.2.3  =1.2.3  >1.2  >=1.0 <2.0  ^1.2  ~1.2.3  1.x  1.2.*  *  (sets joined by ||)
// Caret and tilde follow npm: ^1.2.3 := >=1.2.3 <2.0.0-0, ^0.2.3 := >=0.2.3 <0.3.0-0,
// ~1.2.3 := >=1.2.3 <1.3.0-0. A pre-release version (1.3.0-beta.1) satisfies a range
// only when a comparator of the same set names a pre-release of the same
// major.minor.patch (>=1.3.0-beta), so that ^1.2 never picks up unreleased work.
// Hyphen ranges (1.2 - 1.4) are not supported; write >=1.2 <=1.4.
//
// Thread-safety: immutable values.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace devcycle {

class Version {
 public:
  Version() = default;
  Version(std::uint64_t major, std::uint64_t minor, std::uint64_t patch,
          std::vector<std::string> prerelease = {}, std::vector<std::string> build = {});

  // Parses "1.2.3", "1.2.3-rc.1+build.5" (a leading "v" is not accepted).
  // Throws Error{kInvalidArgument} "<field>: \"<text>\" is not a semantic
  // version: <reason>".
  static Version parse(std::string_view text, std::string_view field = "version");

  std::uint64_t major() const noexcept { return major_; }
  std::uint64_t minor() const noexcept { return minor_; }
  std::uint64_t patch() const noexcept { return patch_; }
  const std::vector<std::string>& prerelease() const noexcept { return prerelease_; }
  const std::vector<std::string>& build() const noexcept { return build_; }
  bool is_prerelease() const noexcept { return !prerelease_.empty(); }

  std::string to_string() const;

  // Precedence as semver.org defines it; build metadata is ignored, so
  // 1.0.0+a == 1.0.0+b.
  std::strong_ordering operator<=>(const Version& other) const noexcept;
  bool operator==(const Version& other) const noexcept { return (*this <=> other) == 0; }

 private:
  std::uint64_t major_ = 0;
  std::uint64_t minor_ = 0;
  std::uint64_t patch_ = 0;
  std::vector<std::string> prerelease_;
  std::vector<std::string> build_;
};

class VersionRange {
 public:
  enum class Op { kLess, kLessEqual, kGreater, kGreaterEqual, kEqual };
  struct Comparator {
    Op op;
    Version version;
  };

  // The range that every release version satisfies ("*").
  VersionRange() = default;

  // Throws Error{kInvalidArgument} "<field>: \"<text>\" is not a version
  // range: <reason>".
  static VersionRange parse(std::string_view text, std::string_view field = "range");

  bool contains(const Version& v) const noexcept;

  // The text the range was parsed from, trimmed ("*" for the default).
  const std::string& to_string() const noexcept { return text_; }
  // The comparator sets (joined by ||) after desugaring ^, ~ and x.
  const std::vector<std::vector<Comparator>>& sets() const noexcept { return sets_; }

 private:
  std::string text_ = "*";
  std::vector<std::vector<Comparator>> sets_{{}};
};

}  // namespace devcycle
