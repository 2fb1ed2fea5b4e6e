// The registered and DevCycle claims of a JWT payload, read without a JSON
// DOM when the payload is the flat object DevCycle issues. Internal.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string_view>
#include <vector>

namespace devcycle::internal {

// Views into the decoded payload (or into the JSON value it was read from);
// a claim that is absent or of the wrong type is empty.
struct RawClaims {
  std::optional<std::string_view> iss, sub, jti, typ, role, fam;
  std::vector<std::string_view> aud;  // string entries of aud, or aud itself
  std::optional<std::int64_t> exp, nbf, iat, gen;
};

// Reads a flat JSON object whose values are strings without escapes or
// non-ASCII bytes, integers, or other simple values. Returns false — and the
// caller must fall back to a full JSON parser, which then decides — for
// anything else: escapes, non-ASCII, nested values, floats, duplicate keys,
// malformed JSON. It never accepts a text that a JSON parser would refuse.
bool read_flat_claims(std::string_view json, RawClaims& out);

// The same claims from a parsed JSON object; the views point into `object`.
void read_claims(const nlohmann::json& object, RawClaims& out);

}  // namespace devcycle::internal
