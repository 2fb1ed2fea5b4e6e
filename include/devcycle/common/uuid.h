// Identifiers: UUID version 7 (RFC 9562) as 36-character lowercase text.
//
// Version 7 ids sort by creation time, which keeps database indexes compact.
// Ids made by one process are strictly increasing, even within a millisecond.
//
// Thread-safety: new_uuid_v7 may be called from any thread.
#pragma once

#include <string>
#include <string_view>

namespace devcycle {

std::string new_uuid_v7();

// True for any canonical lowercase or uppercase UUID text (any version).
bool is_uuid(std::string_view text) noexcept;

}  // namespace devcycle
