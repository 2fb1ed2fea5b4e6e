// The Engine facade: construction and teardown, the scheduler and worker
// threads, ticks, and the event hand-off shared by every part.
#include "devcycle/workflow/engine.h"

#include <algorithm>
#include <system_error>

#include "common/field_checks.h"
#include "devcycle/common/uuid.h"
#include "messaging/bus_checks.h"
#include "workflow/engine/engine_impl.h"

namespace devcycle {

using internal::Claim;
using internal::RunStore;

std::vector<Migration> Engine::migrations() {
  auto out = WorkflowCatalog::migrations();
  auto runs = RunStore::migrations();
  out.insert(out.end(), runs.begin(), runs.end());
  auto outbox = internal::Outbox::migrations();
  out.insert(out.end(), outbox.begin(), outbox.end());
  return out;
}

Engine::Engine(Database& db, Registry& registry, WorkflowCatalog& catalog, EngineOptions options) {
  if (!options.clock)
    throw Error(ErrorCode::kInvalidArgument, "EngineOptions.clock: must not be null");
  if (options.workers < 0 || options.workers > 1024) {
    throw Error(ErrorCode::kInvalidArgument, "EngineOptions.workers: must be between 0 and 1024");
  }
  if (options.engine_id.empty()) options.engine_id = "engine-" + new_uuid_v7();
  if (options.bus) {
    if (!options.event_topic.empty())
      internal::check_topic(options.event_topic, "EngineOptions.event_topic");
    internal::check_topic(options.completion_topic, "EngineOptions.completion_topic");
  }
  db.migrate(migrations());
  impl_ = std::make_shared<Impl>(db, registry, catalog, std::move(options));
  if (db.dialect() == Dialect::kPostgres) {
    impl_->listening =
        db.listen(internal::EventPipeline::kWorkChannel, [weak = std::weak_ptr<Impl>(impl_)] {
          if (auto impl = weak.lock()) impl->notify_scheduler();
        });
    impl_->pipeline.notify_others(static_cast<bool>(impl_->listening));
  }
  if (impl_->options.bus) {
    impl_->relay = std::make_unique<internal::OutboxRelay>(db, *impl_->options.bus);
    // Every engine on the database takes completions in one group: any of
    // them can record any completion (the fence decides).
    SubscribeOptions so;
    so.poll_interval = std::chrono::milliseconds(20);
    impl_->completions = impl_->options.bus->subscribe(
        impl_->options.completion_topic, "devcycle-engine",
        [impl = impl_.get()](const Delivery& d) {
          impl->accept_completion(d.message.payload);
          return Ack::kAck;
        },
        so);
  }
  impl_->registry_events =
      registry.subscribe([weak = std::weak_ptr<Impl>(impl_)](const AgentEvent&) {
        if (auto impl = weak.lock()) impl->resolver.forget();
      });
  if (impl_->options.workers == 0) return;
  try {
    impl_->start_threads();
  } catch (...) {
    // Nothing may call into the Impl while it is destroyed.
    impl_->completions.reset();
    impl_->registry_events.reset();
    impl_->relay.reset();
    throw;
  }
}

void Engine::Impl::start_threads() {
  try {
    for (int i = 0; i < options.workers; ++i) workers.emplace_back([this] { worker_loop(); });
    pipeline.start();
    scheduler = std::thread([this] { scheduler_loop(); });
  } catch (const std::system_error& e) {
    {
      std::lock_guard lock(queue_mu);
      stopping = true;
    }
    queue_cv.notify_all();
    for (auto& w : workers) w.join();
    pipeline.stop();
    throw Error(ErrorCode::kResourceExhausted,
                std::string("engine: cannot start its threads: ") + e.what());
  }
}

Engine::~Engine() {
  auto& impl = *impl_;
  impl.completions.reset();  // no more completions from other processes
  impl.stop_threads();
  impl.pipeline.stop();
  impl.relay.reset();  // a last attempt to publish what the outbox holds
}

void Engine::Impl::stop_threads() {
  {
    std::lock_guard lock(queue_mu);
    stopping = true;
  }
  scheduler_cv.notify_all();
  queue_cv.notify_all();
  if (scheduler.joinable()) scheduler.join();
  for (auto& w : workers) w.join();
  {
    // Outcomes handed over are recorded before the engine goes.
    std::unique_lock lock(record_mu);
    record_cv.wait(lock, [&] { return record_writes == 0; });
  }
  std::deque<Claim> unstarted;
  {
    std::lock_guard lock(queue_mu);
    unstarted.swap(queue);
  }
  // Claimed but never started: give them back without spending an attempt.
  if (!unstarted.empty()) {
    try {
      db.write([&](Txn& t) {
        RunStore store(t);
        // (An attempt is recorded when it ends, so there is no row to remove.)
        for (const auto& c : unstarted)
          store.release_unstarted(c.task_id, c.attempt, c.lease_owner);
      });
    } catch (const Error&) {
      // Their leases expire instead, and they run again.
    }
  }
}

void Engine::register_function(std::string name, TaskFunction fn) {
  internal::check_name("function name", name, 128, "a-zA-Z0-9", "a-zA-Z0-9._-",
                       "[A-Za-z0-9][A-Za-z0-9._-]*");
  if (!fn) throw Error(ErrorCode::kInvalidArgument, "function " + name + ": is empty");
  impl_->resolver.register_function(std::move(name), std::move(fn));
}

Subscription Engine::subscribe(std::function<void(const EngineEvent&)> handler) {
  return impl_->pipeline.subscribe(std::move(handler));
}

int Engine::tick() { return impl_->tick(); }

int Engine::run_until_idle() {
  if (impl_->options.workers != 0) {
    throw Error(ErrorCode::kInvalidArgument, "run_until_idle: only for engines with workers = 0");
  }
  int total = 0;
  for (int n; (n = impl_->tick()) > 0;) total += n;
  return total;
}

// Events are emitted after their transaction committed, so they can keep
// the ready queue current.
void Engine::Impl::emit(std::vector<EngineEvent> events) {
  if (events.empty()) return;
  if (relay) relay->wake();
  note_ready(events);
  pipeline.deliver(std::move(events));
}

void Engine::Impl::note_ready(const std::vector<EngineEvent>& events) {
  const Micros at = now();
  for (const auto& e : events) {
    if (e.kind == EngineEvent::Kind::kTaskRetrying && e.available_at > at) {
      Micros due = next_due.load();
      while (e.available_at < due && !next_due.compare_exchange_weak(due, e.available_at)) {
      }
    }
  }
  // On PostgreSQL claims come from the database itself (claim_locked()).
  if (db.dialect() == Dialect::kPostgres) return;
  ready.note(events, at);
}

void Engine::Impl::notify_scheduler() {
  {
    std::lock_guard lock(queue_mu);
    wake = true;
  }
  scheduler_cv.notify_one();
}

void Engine::Impl::enqueue(std::vector<Claim> claims) {
  if (claims.empty()) return;
  {
    std::lock_guard lock(queue_mu);
    for (auto& c : claims) queue.push_back(std::move(c));
  }
  queue_cv.notify_all();
}

// How long an idle scheduler sleeps: poll_interval, or — when NOTIFY wakes
// it for new work — longer after each empty pass, up to a second (timers,
// expired leases and retries need no finer grain), and never past the
// next retry this engine knows of.
std::chrono::microseconds Engine::Impl::idle_wait(int idle_passes) {
  const auto poll = std::chrono::duration_cast<std::chrono::microseconds>(options.poll_interval);
  if (!listening) return poll;
  auto wait =
      std::min<std::chrono::microseconds>(poll * (1 << std::clamp(idle_passes, 0, 6)),
                                          std::max(poll, std::chrono::microseconds(1'000'000)));
  const Micros at = now();
  const Micros due = next_due.load();
  if (due != std::numeric_limits<Micros>::max()) {
    if (due <= at) {
      next_due.store(std::numeric_limits<Micros>::max());
      return poll;
    }
    wait = std::min(wait, std::chrono::microseconds(due - at));
  }
  return std::max(wait, poll);
}

int Engine::Impl::claim_room() {
  if (options.workers == 0) return 0;
  std::lock_guard lock(queue_mu);
  return claim_ahead() * options.workers - in_flight - static_cast<int>(queue.size());
}

void Engine::Impl::note_run_time(Micros took) {
  const Micros was = typical_run.load(std::memory_order_relaxed);
  typical_run.store(was + (std::max<Micros>(took, 1) - was) / 8, std::memory_order_relaxed);
}

int Engine::Impl::claim_ahead() const {
  const Micros budget = internal::us(options.default_lease) / 10;
  const Micros took = std::max<Micros>(typical_run.load(std::memory_order_relaxed), 1);
  return static_cast<int>(std::clamp<Micros>(budget / took, 2, 32));
}

int Engine::Impl::tick() {
  std::lock_guard tick_lock(tick_mu);
  const Micros at = now();
  // Timeouts need no finer grain than this; it keeps idle polling cheap.
  if (!last_maintenance || at - *last_maintenance >= 20'000 || at < *last_maintenance) {
    maintenance(at);
    last_maintenance = at;
  }
  int free;
  if (options.workers == 0) {
    free = 64;
  } else {
    std::lock_guard lock(queue_mu);
    // Claims queued ahead keep workers busy between ticks and make claim
    // writes worth their round trip; how many depends on how long tasks
    // take, so that a queued claim never waits out its lease (a claim that
    // waits renews its lease before it starts, see execute_one()).
    free = claim_ahead() * options.workers - in_flight - static_cast<int>(queue.size());
  }
  if (free <= 0) return 0;
  auto claims = claim(at, free);
  int n = static_cast<int>(claims.size());
  if (options.workers == 0) {
    n = 0;
    for (const auto& c : claims) n += execute(c);
  } else {
    enqueue(std::move(claims));
  }
  return n;
}

void Engine::Impl::scheduler_loop() {
  int idle_passes = 0;
  while (true) {
    {
      std::lock_guard lock(queue_mu);
      if (stopping) return;
    }
    int n = 0;
    try {
      n = tick();
    } catch (const Error&) {
      // The database may be briefly unavailable; the next pass retries.
    }
    idle_passes = n == 0 && !saw_ready.exchange(false) ? idle_passes + 1 : 0;
    const auto wait = idle_wait(idle_passes - 1);
    std::unique_lock lock(queue_mu);
    if (n == 0) {
      if (scheduler_cv.wait_for(lock, wait, [&] { return stopping || wake; })) idle_passes = 0;
    }
    wake = false;
  }
}

void Engine::Impl::worker_loop() {
  while (true) {
    Claim c;
    {
      std::unique_lock lock(queue_mu);
      queue_cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (stopping) return;  // the destructor gives back what is still queued
      c = std::move(queue.front());
      queue.pop_front();
      ++in_flight;
    }
    execute_one(c, true);
    bool idle;
    {
      std::lock_guard lock(queue_mu);
      --in_flight;
      idle = queue.empty();
      if (idle) wake = true;
    }
    // Successors come with their record write (post()); the scheduler is
    // needed only when this worker is about to wait.
    if (idle) scheduler_cv.notify_one();
  }
}

}  // namespace devcycle
