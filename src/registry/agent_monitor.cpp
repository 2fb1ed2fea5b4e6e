#include <condition_variable>
#include <mutex>
#include <thread>

#include "devcycle/common/error.h"
#include "devcycle/registry/registry.h"

namespace devcycle {

struct AgentMonitor::Impl {
  Impl(Registry& r, std::chrono::milliseconds i) : registry(r), interval(i) {}
  Registry& registry;
  std::chrono::milliseconds interval;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread thread;

  void run() {
    std::unique_lock lock(mu);
    while (!cv.wait_for(lock, interval, [this] { return stopping; })) {
      lock.unlock();
      try {
        registry.sweep_offline();
      } catch (const Error&) {
        // The database may be briefly unavailable; the next round retries.
      }
      lock.lock();
    }
  }
};

AgentMonitor::AgentMonitor(Registry& registry, std::chrono::milliseconds interval)
    : impl_(std::make_unique<Impl>(registry, interval)) {
  if (interval.count() <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "AgentMonitor interval: must be positive");
  }
  impl_->thread = std::thread([this] { impl_->run(); });
}

AgentMonitor::~AgentMonitor() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
}

}  // namespace devcycle
