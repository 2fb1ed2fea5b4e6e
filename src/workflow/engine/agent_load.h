// Running attempts per agent as one write transaction sees them, counted on
// first use and kept as it claims, so that no agent runs more than its
// capacity at once, across every engine on the database. `freed` names the
// agent of an attempt this transaction just ended: it has room for one
// claim without counting (the completion fast path claims at most one).
//
// Lives inside one write closure; not thread-safe. take() throws what the
// transaction throws (devcycle::Error).
#pragma once

#include <optional>
#include <string>
#include <unordered_map>

#include "workflow/engine/claim.h"
#include "workflow/run_store.h"

namespace devcycle::internal {

class AgentLoad {
 public:
  explicit AgentLoad(RunStore& store, std::string freed = {})
      : store_(store), freed_(std::move(freed)) {}
  // The first runner with room, now counted; null when every one is full.
  const Runner* take(const Runners& runners);

 private:
  RunStore& store_;
  std::string freed_;
  bool shortcut_taken_ = false;
  std::optional<std::unordered_map<std::string, int>> running_;
};

}  // namespace devcycle::internal
