#include "devcycle/messaging/bus_worker.h"

#include <nlohmann/json.hpp>

#include "common/json_schema_internal.h"
#include "devcycle/common/error.h"
#include "messaging/bus_checks.h"

namespace devcycle {

namespace {

using nlohmann::json;

// One assignment's context: everything from the assignment message; log
// lines and heartbeats go back as messages.
class RemoteContext final : public TaskContext {
 public:
  RemoteContext(MessageBus& bus, const std::string& reply_topic, const json& a)
      : bus_(bus), reply_topic_(reply_topic), a_(a) {
    run_id_ = a.at("run_id").get<std::string>();
    task_id_ = a.at("task_id").get<std::string>();
    task_key_ = a.at("task_key").get<std::string>();
    attempt_ = a.at("attempt").get<int>();
    agent_id_ = a.value("agent_id", std::string());
    input_ = a.contains("input") ? a["input"].dump() : "null";
  }

  const std::string& run_id() const noexcept override { return run_id_; }
  const std::string& task_id() const noexcept override { return task_id_; }
  const std::string& task_key() const noexcept override { return task_key_; }
  int attempt() const noexcept override { return attempt_; }
  std::string idempotency_key() const override {
    return run_id_ + "/" + task_key_ + "/" + std::to_string(attempt_);
  }
  const std::string& input() const noexcept override { return input_; }
  const std::string& agent_id() const noexcept override { return agent_id_; }

  void log(LogLevel level, std::string_view message) override {
    send({{"kind", "log"},
          {"level", to_string(level)},
          {"message", std::string(message.substr(0, 64 * 1024))}});
  }
  void heartbeat() override { send({{"kind", "heartbeat"}}); }
  bool cancelled() const noexcept override { return false; }

  // The reply: the assignment's identity (the engine's fence) plus `body`.
  json reply(json body) const {
    for (const char* k :
         {"task_id", "run_id", "task_key", "attempt", "lease_owner", "agent_id", "started_at"}) {
      if (a_.contains(k)) body[k] = a_[k];
    }
    return body;
  }

  void send(const json& body) {
    try {
      bus_.publish({reply_topic_, run_id_, {}, reply(body).dump()}).get();
    } catch (const Error&) {
      // A lost log line or heartbeat is not the task's failure.
    }
  }

 private:
  MessageBus& bus_;
  const std::string& reply_topic_;
  const json& a_;
  std::string run_id_, task_id_, task_key_, agent_id_, input_;
  int attempt_ = 0;
};

}  // namespace

struct BusWorker::Impl {
  Subscription subscription;
};

BusWorker::BusWorker(MessageBus& bus, std::string topic, TaskFunction fn, BusWorkerOptions options)
    : impl_(std::make_unique<Impl>()) {
  internal::check_topic(topic, "topic");
  internal::check_topic(options.completion_topic, "completion_topic");
  if (options.group.empty()) options.group = "devcycle-agents." + topic;
  internal::check_group(options.group, "group");
  if (!fn) throw Error(ErrorCode::kInvalidArgument, "fn: must not be empty");
  SubscribeOptions so;
  so.consume.visibility_timeout = options.visibility_timeout;
  so.poll_interval = options.poll_interval;
  so.batch = 1;  // one task at a time: the next waits for a free worker
  const auto reply_topic = options.completion_topic;
  impl_->subscription = bus.subscribe(
      topic, options.group,
      [&bus, reply_topic, fn = std::move(fn)](const Delivery& d) {
        // A malformed assignment throws here: refused, then dead-lettered.
        const auto assignment = internal::parse_json(d.message.payload, "assignment");
        RemoteContext ctx(bus, reply_topic, assignment);
        json body = {{"kind", "completion"}};
        try {
          auto output = fn(ctx);
          body["ok"] = true;
          body["output"] = output.empty() ? json(nullptr) : internal::parse_json(output, "output");
        } catch (const Error& e) {
          body["ok"] = false;
          body["error"] = e.what();
          body["retryable"] = e.code() != ErrorCode::kInvalidArgument;
        } catch (const json::exception& e) {
          body["ok"] = false;
          body["error"] = std::string(e.what()) + " (a task's output must be JSON)";
          body["retryable"] = false;
        } catch (const std::exception& e) {
          body["ok"] = false;
          body["error"] = e.what();
        }
        // Published before the assignment is acknowledged (on return).
        bus.publish({reply_topic, ctx.run_id(), {}, ctx.reply(std::move(body)).dump()}).get();
        return Ack::kAck;
      },
      so);
}

BusWorker::~BusWorker() = default;

}  // namespace devcycle
