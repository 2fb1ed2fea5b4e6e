#include "devcycle/common/error.h"
#include "devcycle/testing/fault_injecting_database.h"

namespace devcycle {

DatabaseWrapper::DatabaseWrapper(std::unique_ptr<Database> target) : target_(std::move(target)) {
  if (!target_) throw Error(ErrorCode::kInvalidArgument, "DatabaseWrapper: target is null");
}

FaultInjectingDatabase::FaultInjectingDatabase(std::unique_ptr<Database> target,
                                               FaultOptions options)
    : DatabaseWrapper(std::move(target)), options_(options), rng_(options.seed) {
  if (!(options_.fail_fraction >= 0.0 && options_.fail_fraction <= 1.0)) {
    throw Error(ErrorCode::kInvalidArgument, "FaultOptions.fail_fraction must be in [0, 1], got " +
                                                 std::to_string(options_.fail_fraction));
  }
}

bool FaultInjectingDatabase::should_fail() {
  const auto n = ++calls_;
  bool fail = options_.fail_nth != 0 && n == options_.fail_nth;
  if (options_.fail_fraction > 0) {
    std::lock_guard lock(mu_);
    const double draw = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    fail = fail || draw < options_.fail_fraction;
  }
  if (fail) ++injected_;
  return fail;
}

namespace {
Error injected_error(std::string_view where) {
  return Error(ErrorCode::kUnavailable, "injected fault (" + std::string(where) + ")");
}
}  // namespace

void FaultInjectingDatabase::submit(TxnFn fn, DoneFn done) {
  if (!should_fail()) {
    DatabaseWrapper::submit(std::move(fn), std::move(done));
  } else if (options_.point == FaultOptions::Point::kBeforeRun) {
    done(std::make_exception_ptr(injected_error("before the closure ran")));
  } else {
    // Run the closure inside its savepoint, then throw, so that the backend
    // must roll back everything it wrote.
    DatabaseWrapper::submit(
        [fn = std::move(fn)](Txn& txn) {
          fn(txn);
          throw injected_error("after the closure ran");
        },
        std::move(done));
  }
}

void FaultInjectingDatabase::read(const TxnFn& fn) {
  if (should_fail()) throw injected_error("read");
  DatabaseWrapper::read(fn);
}

}  // namespace devcycle
