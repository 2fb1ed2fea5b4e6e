#include "devcycle/version.h"

namespace devcycle {
const char* version() noexcept { return DEVCYCLE_VERSION_STRING; }
}  // namespace devcycle
