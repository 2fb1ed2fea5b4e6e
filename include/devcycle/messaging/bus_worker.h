// Runs, in this process, the tasks an engine elsewhere assigns over the
// message bus to an agent whose executor is "bus:<topic>" (docs/engine.md,
// "Agents in other processes"). Each assignment is handed to a TaskFunction
// with a TaskContext, and the outcome goes back on the completion topic,
// where the engine records it with the same fence as in-process outcomes.
//
// Over the bus, TaskContext::log() and heartbeat() send messages and never
// throw: a lost lease shows only as the completion being ignored (the
// engine retries the task). cancelled() is always false.
//
// Several BusWorkers on one topic (in any processes) share its assignments
// (one consumer group). An assignment is acknowledged after its completion
// was published, so a worker killed mid-task leaves it to another one.
//
// Thread-safety: a BusWorker runs its function on a thread of its own; the
// destructor stops it after the task in hand.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "devcycle/messaging/messaging.h"
#include "devcycle/workflow/executor.h"

namespace devcycle {

struct BusWorkerOptions {
  std::string completion_topic = "devcycle.completions";
  // Workers of one agent share a group; default "devcycle-agents.<topic>".
  std::string group;
  // An assignment not finished within this is handed to another worker
  // (keep it above the task's lease).
  std::chrono::milliseconds visibility_timeout{std::chrono::minutes(10)};
  std::chrono::milliseconds poll_interval{std::chrono::milliseconds(50)};
};

class BusWorker {
 public:
  // Starts taking assignments from `topic`. `bus` must outlive the worker.
  // Throws Error{kInvalidArgument} naming a bad topic, group or empty function.
  BusWorker(MessageBus& bus, std::string topic, TaskFunction fn, BusWorkerOptions options = {});
  ~BusWorker();
  BusWorker(const BusWorker&) = delete;
  BusWorker& operator=(const BusWorker&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace devcycle
