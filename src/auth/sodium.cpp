#include "auth/sodium.h"

#include <sodium.h>

#include <mutex>

#include "devcycle/common/error.h"

namespace devcycle::internal {

void init_sodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) throw Error(ErrorCode::kInternal, "libsodium failed to initialise");
  });
}

}  // namespace devcycle::internal
