#include "devcycle/observability/logger.h"

#include <nlohmann/json.hpp>

#include "devcycle/common/error.h"

namespace devcycle {

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

LogLevel parse_log_level(std::string_view text, std::string_view setting) {
  for (auto level :
       {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (text == to_string(level)) return level;
  }
  throw Error(ErrorCode::kInvalidArgument,
              std::string(setting) + ": \"" + std::string(text) +
                  "\" is not a log level (expected trace, debug, info, warn or error)");
}

std::string format_json_line(const LogRecord& r) {
  // nlohmann::ordered_json keeps the documented field order.
  nlohmann::ordered_json j;
  j["ts"] = format_rfc3339(r.ts);
  j["level"] = to_string(r.level);
  j["msg"] = r.msg;
  j["logger"] = r.logger;
  if (!r.request_id.empty()) j["request_id"] = r.request_id;
  if (!r.trace_id.empty()) j["trace_id"] = r.trace_id;
  for (const auto& f : r.fields) {
    std::string key = f.key;
    if (key == "ts" || key == "level" || key == "msg" || key == "logger" || key == "request_id" ||
        key == "trace_id") {
      key += '_';
    }
    std::visit([&](const auto& v) { j[key] = v; }, f.value);
  }
  // Invalid UTF-8 in a message must not lose the line: replace it.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

void JsonLinesSink::write(const LogRecord& record) {
  std::string line = format_json_line(record);
  line.push_back('\n');
  std::lock_guard lock(mu_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

void MemoryLogSink::write(const LogRecord& record) {
  std::lock_guard lock(mu_);
  records_.push_back(record);
}

std::vector<LogRecord> MemoryLogSink::records() const {
  std::lock_guard lock(mu_);
  return records_;
}

std::vector<std::string> MemoryLogSink::lines() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  out.reserve(records_.size());
  for (const auto& r : records_) out.push_back(format_json_line(r));
  return out;
}

void MemoryLogSink::clear() {
  std::lock_guard lock(mu_);
  records_.clear();
}

Logger::Logger() : Logger("devcycle", std::make_shared<JsonLinesSink>()) {}

Logger::Logger(std::string name, std::shared_ptr<LogSink> sink, LogLevel min_level,
               std::shared_ptr<Clock> clock)
    : name_(std::move(name)),
      sink_(std::move(sink)),
      min_level_(min_level),
      clock_(std::move(clock)) {
  if (!sink_) throw Error(ErrorCode::kInvalidArgument, "Logger: sink is null");
  if (!clock_) throw Error(ErrorCode::kInvalidArgument, "Logger: clock is null");
}

Logger Logger::named(std::string_view name) const {
  Logger l = *this;
  l.name_ = name_.empty() ? std::string(name) : name_ + "." + std::string(name);
  return l;
}

Logger Logger::with_request(std::string request_id, std::string trace_id) const {
  Logger l = *this;
  l.request_id_ = std::move(request_id);
  l.trace_id_ = std::move(trace_id);
  return l;
}

void Logger::log(LogLevel level, std::string_view msg,
                 std::initializer_list<LogField> fields) const {
  if (!enabled(level)) return;
  LogRecord r;
  r.ts = clock_->now();
  r.level = level;
  r.logger = name_;
  r.msg = std::string(msg);
  r.request_id = request_id_;
  r.trace_id = trace_id_;
  r.fields.assign(fields.begin(), fields.end());
  sink_->write(r);
}

}  // namespace devcycle
