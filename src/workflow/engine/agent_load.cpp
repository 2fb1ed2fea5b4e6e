#include "workflow/engine/agent_load.h"

namespace devcycle::internal {

const Runner* AgentLoad::take(const Runners& runners) {
  if (shortcut_taken_) return nullptr;
  if (!running_ && !freed_.empty()) {
    for (const auto& r : runners) {
      if (r.agent_id != freed_) continue;
      shortcut_taken_ = true;
      return &r;
    }
  }
  if (store_.postgres()) {
    // Several engines claim at once: an agent's running attempts are
    // counted under a lock on that agent, held to the commit, so that two
    // engines cannot both fill its last slot. An agent another transaction
    // is counting now counts as full here (no waiting, no deadlock); the
    // next pass looks again.
    if (!running_) running_.emplace();
    for (const auto& r : runners) {
      auto it = running_->find(r.agent_id);
      if (it == running_->end()) {
        const auto n = store_.lock_and_count_running(r.agent_id);
        it = running_->emplace(r.agent_id, n ? *n : r.capacity).first;
      }
      if (it->second >= r.capacity) continue;
      ++it->second;
      return &r;
    }
    return nullptr;
  }
  if (!running_) running_ = store_.running_by_agent();
  for (const auto& r : runners) {
    auto& n = (*running_)[r.agent_id];
    if (n >= r.capacity) continue;
    ++n;
    return &r;
  }
  return nullptr;
}

}  // namespace devcycle::internal
