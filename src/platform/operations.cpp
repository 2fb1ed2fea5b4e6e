#include "platform/operations.h"

#include <map>

namespace devcycle::internal {

PlatformMetrics::PlatformMetrics(MetricsRegistry& metrics, Engine& engine, Database& db)
    : metrics_(metrics), db_(db) {
  runs_started_ = &metrics_.counter("runs_started_total", "Workflow runs started");
  collector_ = metrics_.add_collector([this] { refresh_gauges(); });
  events_ = engine.subscribe([this](const EngineEvent& e) { count(e); });
}

PlatformMetrics::~PlatformMetrics() {
  events_.reset();
  metrics_.remove_collector(collector_);
}

void PlatformMetrics::count(const EngineEvent& e) {
  using K = EngineEvent::Kind;
  if (e.kind == K::kRunStarted) {
    runs_started_->inc();
  } else if (e.kind == K::kRunFinished) {
    metrics_
        .counter("runs_finished_total", "Workflow runs finished, by outcome",
                 {{"status", e.status}})
        .inc();
  } else if (e.kind == K::kTaskSucceeded || e.kind == K::kTaskFailed ||
             e.kind == K::kTaskCancelled || e.kind == K::kTaskSkipped) {
    metrics_.counter("tasks_finished_total", "Tasks finished, by outcome", {{"status", e.status}})
        .inc();
  }
}

void PlatformMetrics::refresh_gauges() {
  try {
    db_.read([&](Txn& t) {
      std::map<std::string, double> tasks{{"ready", 0}, {"running", 0}, {"waiting", 0}};
      for (const auto& row :
           t.query("SELECT status, COUNT(*) FROM tasks WHERE status IN ('ready', 'running', "
                   "'waiting') GROUP BY status")) {
        tasks[row[0].as_text()] = static_cast<double>(row[1].as_int());
      }
      for (const auto& [status, n] : tasks) {
        metrics_.gauge("tasks_open", "Tasks ready, running or waiting now", {{"status", status}})
            .set(n);
      }
      std::map<std::string, double> agents{
          {"offline", 0}, {"online", 0}, {"busy", 0}, {"disabled", 0}};
      for (const auto& row : t.query("SELECT status, COUNT(*) FROM agents GROUP BY status")) {
        agents[row[0].as_text()] = static_cast<double>(row[1].as_int());
      }
      for (const auto& [status, n] : agents) {
        metrics_.gauge("agents", "Registered agents by status", {{"status", status}}).set(n);
      }
    });
  } catch (const std::exception&) {
    // The database is unreachable: the gauges keep their last values, and
    // the database's own metrics say why.
  }
}

RetentionSweeper::RetentionSweeper(Engine& engine, const Clock& clock, Logger log,
                                   std::chrono::hours retention, std::chrono::milliseconds sweep)
    : engine_(engine),
      clock_(clock),
      log_(std::move(log)),
      retention_(retention),
      sweep_(sweep),
      thread_([this] { run(); }) {}

RetentionSweeper::~RetentionSweeper() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void RetentionSweeper::run() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, sweep_, [&] { return stopping_; })) {
    lock.unlock();
    try {
      const Micros before =
          clock_.now() - std::chrono::duration_cast<std::chrono::microseconds>(retention_).count();
      int total = 0;
      for (int n = 500; n == 500;) total += n = engine_.purge_finished(before, 500);
      if (total > 0) log_.info("retention: purged finished runs", {{"runs", total}});
    } catch (const std::exception& e) {
      log_.error("retention sweep failed", {{"error", e.what()}});
    }
    lock.lock();
  }
}

}  // namespace devcycle::internal
