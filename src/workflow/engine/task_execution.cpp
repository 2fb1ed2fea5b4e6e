// Running a claimed attempt in this process: an in-process function or a
// process agent, with the TaskContext it sees (log, heartbeat, artifacts,
// cancellation), and its outcome handed on to be recorded.
#include <algorithm>

#include "devcycle/common/uuid.h"
#include "workflow/engine/engine_impl.h"

namespace devcycle {

using internal::Claim;
using internal::RunStore;

namespace {

// What an attempt's function sees of the engine. Lives on the worker's
// stack for one attempt; cancelled() may be called from any thread.
class ContextImpl final : public TaskContext {
 public:
  // `input` is the claim's input with its secrets put in.
  ContextImpl(Engine::Impl& engine, const Claim& c, std::string input)
      : engine_(engine), c_(c), input_(std::move(input)) {}

  const std::string& run_id() const noexcept override { return c_.run_id; }
  const std::string& task_id() const noexcept override { return c_.task_id; }
  const std::string& task_key() const noexcept override { return c_.task_key; }
  int attempt() const noexcept override { return c_.attempt; }
  std::string idempotency_key() const override {
    return c_.run_id + "/" + c_.task_key + "/" + std::to_string(c_.attempt);
  }
  const std::string& input() const noexcept override { return input_; }
  const std::string& agent_id() const noexcept override { return c_.agent_id; }

  void log(LogLevel level, std::string_view message) override {
    TaskLogLine line{
        new_uuid_v7(), c_.task_id, c_.attempt, level, engine_.redact(message.substr(0, 64 * 1024)),
        engine_.now()};
    engine_.db.write([&](Txn& t) { RunStore(t).insert_log(line); });
    engine_.emit({{EngineEvent::Kind::kTaskLog, c_.run_id, c_.task_id, c_.task_key, c_.attempt,
                   std::string(to_string(level)), "", line.at, line.message}});
  }

  void heartbeat() override {
    const Micros at = engine_.now();
    const auto until = engine_.lease_until(c_.timeouts, at, c_.close_deadline);
    const bool ok = engine_.db.write([&](Txn& t) {
      return RunStore(t).extend_lease(c_.task_id, c_.attempt, c_.lease_owner, at, until);
    });
    if (!ok) {
      throw Error(ErrorCode::kConflict, "task " + c_.task_key + " attempt " +
                                            std::to_string(c_.attempt) +
                                            " no longer holds its lease");
    }
  }

  BlobInfo put_artifact(std::string_view name, std::string_view bytes) override {
    return engine_.store_artifact(c_, name, bytes);
  }

  bool cancelled() const noexcept override {
    if (engine_.cancelled.contains(c_.task_id)) return true;
    // Cancels from elsewhere (another engine, a failed sibling, a run
    // timeout) show in the database: the attempt no longer holds its task.
    const Micros at = engine_.now();
    std::lock_guard lock(mu_);
    if (lost_) return true;
    if (at - checked_at_ < 250'000 && checked_at_ != 0) return false;
    checked_at_ = at;
    try {
      lost_ = engine_.db.read([&](Txn& t) {
        const auto h = RunStore(t).holder_of(c_.task_id);
        return !h || h->status != "running" || h->attempt != c_.attempt || !h->lease_owner ||
               *h->lease_owner != c_.lease_owner;
      });
    } catch (...) {
      // Unknown: keep working; the completion is fenced anyway.
    }
    return lost_;
  }

 private:
  Engine::Impl& engine_;
  const Claim& c_;
  std::string input_;
  mutable std::mutex mu_;
  mutable Micros checked_at_ = 0;
  mutable bool lost_ = false;
};

}  // namespace

BlobInfo Engine::Impl::store_artifact(const Claim& c, std::string_view name,
                                      std::string_view bytes) {
  if (!options.blobs) {
    throw Error(ErrorCode::kUnavailable, "artifacts: this engine has no blob store");
  }
  const bool ok_name = !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
                       std::none_of(name.begin(), name.end(), [](char ch) {
                         return ch == '/' || static_cast<unsigned char>(ch) < 0x20;
                       });
  if (!ok_name) {
    throw Error(ErrorCode::kInvalidArgument,
                "artifact name: 1-255 bytes without '/' or control characters");
  }
  const auto info = options.blobs->put(bytes);
  Artifact a{new_uuid_v7(),     c.run_id,    c.task_id, c.task_key, c.attempt,
             std::string(name), info.digest, info.size, now()};
  db.write([&](Txn& t) { RunStore(t).insert_artifact(a); });
  return info;
}

std::string Engine::Impl::resolve_secrets(const Claim& c) {
  if (!options.secrets || c.input.find("[secret:") == std::string::npos) return c.input;
  return options.secrets->resolve(c.task_id, c.input, owner_of_run(c.run_id));
}

int Engine::Impl::execute(const Claim& first) {
  int ran = 0;
  for (std::optional<Claim> next = first; next; ++ran) {
    const Claim c = std::move(*next);
    next = execute_one(c);
  }
  return ran;
}

std::optional<Claim> Engine::Impl::execute_one(const Claim& c, bool async) {
  TaskFunction fn;
  if (c.function.starts_with("process:")) {
    fn = [this, timeouts = c.timeouts](TaskContext& ctx) {
      return run_process_task(ctx, timeouts);
    };
  } else {
    fn = resolver.function(c.function);
  }
  if (!fn) {
    const auto error = "no function \"" + c.function + "\" is registered in this engine";
    try {
      if (async) {
        cancelled.forget(c.task_id);
        record_later(outcome_of(c, false, error, true));
      } else {
        complete(c, false, error, true);
      }
    } catch (const Error&) {
    }
    return std::nullopt;
  }
  // A claim that waited (in the queue, or behind other inline tasks) renews
  // its lease before it starts, and is dropped if the lease is already gone.
  const Micros at = now();
  if (at > c.started_at + (c.lease_expires_at - c.started_at) / 2) {
    try {
      const auto until = lease_until(c.timeouts, at, c.close_deadline);
      const bool held = db.write([&](Txn& t) {
        return RunStore(t).extend_lease(c.task_id, c.attempt, c.lease_owner, at, until);
      });
      if (!held) return std::nullopt;
    } catch (const Error&) {
      return std::nullopt;  // the lease will expire and the task will run again
    }
  }
  bool ok = false;
  bool retryable = true;
  std::string result;
  try {
    // Secrets go in now, in memory only; a missing one fails the attempt
    // (and may exist by the next one).
    ContextImpl ctx(*this, c, resolve_secrets(c));
    const Micros began = now();
    result = fn(ctx);
    note_run_time(now() - began);
    ok = true;
  } catch (const Error& e) {
    result = e.what();
    retryable = e.code() != ErrorCode::kInvalidArgument && e.code() != ErrorCode::kPermissionDenied;
  } catch (const std::exception& e) {
    result = e.what();
  } catch (...) {
    result = "the task function threw something that is not a std::exception";
  }
  if (!ok) result = redact(result);
  try {
    if (async) {
      cancelled.forget(c.task_id);
      record_later(outcome_of(c, ok, std::move(result), retryable));
      return std::nullopt;
    }
    return complete(c, ok, result, retryable);
  } catch (const Error&) {
    // The result could not be recorded (the database failed). The attempt's
    // lease expires and the task runs again: execution is at-least-once.
    return std::nullopt;
  }
}

std::string Engine::Impl::run_process_task(TaskContext& ctx, const TaskTimeouts& timeouts) {
  const auto agent = registry.get(ctx.agent_id());
  const auto v = registry.get_version(agent.id, *agent.active_version);
  ProcessCall call;
  // Its configuration, with the secrets it names, only in the attempt's directory.
  call.files.emplace_back("agent.json", options.secrets ? options.secrets->resolve_references(
                                                              agent.configuration, agent.owner)
                                                        : agent.configuration);
  call.argv = parse_process_argv(v.executor);
  check_allowed(call.argv, options.processes);  // kPermissionDenied: retrying cannot help
  call.input = ctx.input();
  if (timeouts.start_to_close) call.timeout = *timeouts.start_to_close;
  call.on_stderr_line = [&ctx](std::string_view line) { ctx.log(LogLevel::kInfo, line); };
  call.cancelled = [&ctx] { return ctx.cancelled(); };
  const auto r = run_process(call, options.processes);
  if (r.exit_code != 0 || r.timed_out || r.cancelled || r.output_too_large) {
    throw Error(ErrorCode::kUnavailable, describe(r, options.processes));
  }
  for (const auto& [name, bytes] : r.artifacts) {
    ctx.put_artifact(name, bytes);
    ctx.log(LogLevel::kInfo, "artifact " + name + " (" + std::to_string(bytes.size()) + " bytes)");
  }
  return r.output.empty() ? "null" : r.output;
}

}  // namespace devcycle
