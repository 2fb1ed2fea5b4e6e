// What every Platform runs beside its parts, for any embedder: the engine's
// and registry's metrics, and the retention sweep. Internal.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "devcycle/observability/logger.h"
#include "devcycle/observability/metrics.h"
#include "devcycle/registry/registry.h"
#include "devcycle/workflow/engine.h"

namespace devcycle::internal {

// Counters of runs started and finished and tasks finished (from the
// engine's events), and the gauges tasks_open{status} and agents{status}
// (read from the database whenever the metrics are rendered). Owns its
// engine subscription and its collector; thread-safe.
class PlatformMetrics {
 public:
  PlatformMetrics(MetricsRegistry& metrics, Engine& engine, Database& db);
  ~PlatformMetrics();
  PlatformMetrics(const PlatformMetrics&) = delete;
  PlatformMetrics& operator=(const PlatformMetrics&) = delete;

 private:
  void count(const EngineEvent& e);
  void refresh_gauges();

  MetricsRegistry& metrics_;
  Database& db_;
  Counter* runs_started_ = nullptr;
  std::uint64_t collector_ = 0;
  Subscription events_;
};

// Purges finished runs older than `retention` every `sweep`, on a thread of
// its own until destroyed. Errors are logged, never thrown.
class RetentionSweeper {
 public:
  RetentionSweeper(Engine& engine, const Clock& clock, Logger log, std::chrono::hours retention,
                   std::chrono::milliseconds sweep);
  ~RetentionSweeper();
  RetentionSweeper(const RetentionSweeper&) = delete;
  RetentionSweeper& operator=(const RetentionSweeper&) = delete;

 private:
  void run();

  Engine& engine_;
  const Clock& clock_;
  Logger log_;
  std::chrono::hours retention_;
  std::chrono::milliseconds sweep_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;  // last: started when the rest exists
};

}  // namespace devcycle::internal
