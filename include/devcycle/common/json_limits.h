// The bounds every JSON input of DevCycle is held to, for programs (the
// server, bindings) that parse JSON themselves before handing it on.
//
// Why a depth limit: a JSON parser may be iterative, but serialising,
// comparing and copying a document recurse; 300,000 nested arrays parse and
// then overflow the stack of whoever writes them out. Every JSON text the
// library takes (run inputs, signal payloads, completions, configurations,
// definitions, schemas, bus payloads, process-agent output) is refused with
// Error{kInvalidArgument} "<field>: nested deeper than 64 levels, the
// limit" above it; a number beyond a double (1e400) likewise.
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>

namespace devcycle {

inline constexpr int kMaxJsonDepth = 64;

// True when `text`, read as JSON, opens more than `limit` arrays or objects
// inside one another (brackets inside strings do not count). Linear, and it
// stops at the first level over the limit: call it before parsing.
bool json_deeper_than(std::string_view text, int limit = kMaxJsonDepth) noexcept;

}  // namespace devcycle
