// libsodium must be initialised once before use. Internal.
#pragma once

namespace devcycle::internal {

// Initialises libsodium (thread-safe, idempotent). Throws Error{kInternal}
// if it cannot.
void init_sodium();

}  // namespace devcycle::internal
