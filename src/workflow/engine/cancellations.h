// Task ids whose running attempt in this engine should stop: read by
// TaskContext::cancelled(), set by cancels, cleared when an attempt ends or
// a new one is claimed. Thread-safe; throws nothing but std::bad_alloc.
#pragma once

#include <mutex>
#include <set>
#include <string>

namespace devcycle::internal {

class Cancellations {
 public:
  void mark(const std::string& task_id) {
    std::lock_guard lock(mu_);
    ids_.insert(task_id);
  }
  void forget(const std::string& task_id) {
    std::lock_guard lock(mu_);
    ids_.erase(task_id);
  }
  bool contains(const std::string& task_id) {
    std::lock_guard lock(mu_);
    return ids_.count(task_id) > 0;
  }

 private:
  std::mutex mu_;
  std::set<std::string> ids_;
};

}  // namespace devcycle::internal
