// Structured logging as JSON lines.
//
// Each record is one line with ts (RFC 3339 UTC, microseconds), level, msg,
// logger, and request_id and trace_id when set, followed by the call's own
// fields. A field that reuses one of those six names is written with a
// trailing underscore ("msg_"), so it can never overwrite them.
//
// A Logger is a cheap value (a name and ids over a shared sink); derive named
// or request-scoped loggers from it. Tests inject a MemoryLogSink.
//
// Thread-safety: Loggers and the sinks here may be used from any thread; each
// line is written whole.
#pragma once

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "devcycle/common/clock.h"

namespace devcycle {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };

std::string_view to_string(LogLevel level) noexcept;
// Parses trace|debug|info|warn|error. Throws Error{kInvalidArgument} naming
// `setting` and the value otherwise.
LogLevel parse_log_level(std::string_view text, std::string_view setting = "log_level");

struct LogField {
  using Value = std::variant<std::string, std::int64_t, double, bool>;
  template <class V>
  LogField(std::string_view k, V&& v) : key(k), value(make(std::forward<V>(v))) {}

  std::string key;
  Value value;

 private:
  template <class V>
  static Value make(V&& v) {
    using D = std::decay_t<V>;
    if constexpr (std::is_same_v<D, bool>)
      return v;
    else if constexpr (std::is_integral_v<D>)
      return static_cast<std::int64_t>(v);
    else if constexpr (std::is_floating_point_v<D>)
      return static_cast<double>(v);
    else
      return std::string(std::string_view(v));
  }
};

struct LogRecord {
  Micros ts = 0;
  LogLevel level = LogLevel::kInfo;
  std::string logger;
  std::string msg;
  std::string request_id;
  std::string trace_id;
  std::vector<LogField> fields;
};

// The one JSON line (without newline) for a record.
std::string format_json_line(const LogRecord& record);

class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void write(const LogRecord& record) = 0;
};

// Writes JSON lines to a stdio stream (default stderr), flushing each line.
// Does not own the stream.
class JsonLinesSink final : public LogSink {
 public:
  explicit JsonLinesSink(std::FILE* out = stderr) : out_(out) {}
  void write(const LogRecord& record) override;

 private:
  std::mutex mu_;
  std::FILE* out_;
};

// Keeps records and their JSON lines in memory, for tests.
class MemoryLogSink final : public LogSink {
 public:
  void write(const LogRecord& record) override;
  std::vector<LogRecord> records() const;
  std::vector<std::string> lines() const;
  void clear();

 private:
  mutable std::mutex mu_;
  std::vector<LogRecord> records_;
};

class Logger {
 public:
  // A logger that writes JSON lines to stderr at kInfo and above.
  Logger();
  Logger(std::string name, std::shared_ptr<LogSink> sink, LogLevel min_level = LogLevel::kInfo,
         std::shared_ptr<Clock> clock = SystemClock::instance());

  // A logger with the same sink whose name is "<this name>.<name>".
  Logger named(std::string_view name) const;
  // A logger whose records carry these ids.
  Logger with_request(std::string request_id, std::string trace_id = {}) const;

  bool enabled(LogLevel level) const noexcept { return level >= min_level_; }
  void log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {}) const;
  void trace(std::string_view m, std::initializer_list<LogField> f = {}) const {
    log(LogLevel::kTrace, m, f);
  }
  void debug(std::string_view m, std::initializer_list<LogField> f = {}) const {
    log(LogLevel::kDebug, m, f);
  }
  void info(std::string_view m, std::initializer_list<LogField> f = {}) const {
    log(LogLevel::kInfo, m, f);
  }
  void warn(std::string_view m, std::initializer_list<LogField> f = {}) const {
    log(LogLevel::kWarn, m, f);
  }
  void error(std::string_view m, std::initializer_list<LogField> f = {}) const {
    log(LogLevel::kError, m, f);
  }

  const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
  std::shared_ptr<LogSink> sink_;
  LogLevel min_level_;
  std::shared_ptr<Clock> clock_;
  std::string request_id_;
  std::string trace_id_;
};

}  // namespace devcycle
