// Settings: what a Platform connects to, and where those choices come from.
//
// known_settings() lists every setting of the platform — one name each, the
// same as the PlatformOptions field it fills (max_active_runs_per_owner,
// not a server's own spelling). Each setting is resolved with the precedence
// flags > DEVCYCLE_* environment
// variables > TOML config file > default. The config file is named by the
// --config flag or DEVCYCLE_CONFIG; it holds top-level keys with the settings'
// names (database = "sqlite://./devcycle.db"). A malformed URL, an unknown
// scheme, an unknown key or flag, or a value of the wrong type is an
// Error{kInvalidArgument} whose message names the setting, where it came from
// and the value.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/common/clock.h"
#include "devcycle/observability/logger.h"
#include "devcycle/observability/metrics.h"
#include "devcycle/store/database.h"
#include "devcycle/workflow/engine.h"
#include "devcycle/workflow/process_executor.h"

namespace devcycle {

struct PlatformOptions {
  std::string database =
      "sqlite://./devcycle.db";   // sqlite://PATH | sqlite::memory: | postgresql://...
  std::string bus = "inproc://";  // inproc:// | kafka://host:port[,host:port...]
  // Run and task events (topic devcycle.events) and direct-message receipts
  // (devcycle.messages) on the bus, through the transactional outbox.
  // Default: on with kafka://, where other processes read them; off with
  // inproc://, where nothing outside this process could. With kafka:// (or
  // this on) the engine also dispatches tasks of bus: agents over the bus.
  std::optional<bool> publish_events;
  std::string cache = "memory://";  // memory:// | redis://host:port[/db]
  std::string log_level = "info";   // trace | debug | info | warn | error

  // Injected parts; null means the embedded default.
  std::shared_ptr<Clock> clock;              // SystemClock
  std::shared_ptr<LogSink> log_sink;         // JSON lines on stderr
  std::shared_ptr<MetricsRegistry> metrics;  // a new registry
  DatabaseOptions database_options;          // synchronous, group commit, extra migrations
  // Agents whose last heartbeat is older than this are marked offline.
  std::chrono::milliseconds heartbeat_timeout{30'000};
  // How often the monitor looks; 0 means no monitor thread (tests call
  // Registry::sweep_offline() themselves).
  std::chrono::milliseconds monitor_interval{5'000};
  // Threads of the workflow engine running in-process tasks; 0: none (call
  // Engine::tick() yourself).
  int engine_workers = 4;
  // Quotas per owner (0: none): runs pending, running or paused at once,
  // and agents (kResourceExhausted beyond them).
  int max_active_runs_per_owner = 0;
  int max_agents_per_owner = 0;
  // The master key (32 raw bytes or 64 hex digits, see load_master_key) that
  // seals secrets and the token signing keys; empty: no secrets (tasks that
  // read one fail) and no identity (Platform::identity() throws).
  std::string master_key;
  // Password hashing cost (argon2id); tests lower it, never below OWASP's
  // minimum of 19 MiB.
  std::size_t argon2_memory_bytes = 64u * 1024 * 1024;
  // Forged or unknown credentials from one client address in 15 minutes
  // before each further one is answered 429 (Identity).
  int credential_failures_per_address = 50;
  // Process agents: the allow-list and the limits (empty allow-list: none run).
  ProcessOptions processes;
  // Where task artifacts are kept: file:///dir or file://./dir; empty: no
  // artifacts.
  std::string blob_store;
  // Starts per second (and burst) by capability, through the cache.
  std::map<std::string, RateLimit> capability_rate_limits;
  // Retention: finished runs older than this are purged, with their tasks,
  // logs and artifacts, by a sweep every `retention_sweep` (a thread of the
  // Platform); 0: kept forever.
  std::chrono::hours retention{0};
  std::chrono::milliseconds retention_sweep{std::chrono::hours(1)};
};

// One setting that resolve_options() knows.
struct SettingInfo {
  std::string_view name;         // as a flag (--name) and a config-file key
  std::string_view environment;  // DEVCYCLE_NAME
  std::string_view default_value;
  std::string_view description;
};
std::span<const SettingInfo> known_settings() noexcept;

struct ConfigSources {
  std::map<std::string, std::string> flags;        // setting name -> value
  std::map<std::string, std::string> environment;  // variable -> value; only DEVCYCLE_* are read
  std::string config_file;  // empty: DEVCYCLE_CONFIG from `environment`, else no file

  // Copies the process environment's DEVCYCLE_* variables.
  static ConfigSources from_environment();
  // from_environment() plus flags from a command line: --name=value or
  // --name value for each known setting (and each of `extra`), and --config
  // PATH. Throws Error{kInvalidArgument} naming an unknown flag or a flag
  // without a value.
  static ConfigSources from_command_line(int argc, const char* const* argv,
                                         std::span<const SettingInfo> extra = {});
};

// Settings a program adds to the platform's (the server's listen address,
// say), resolved with the same precedence from the same sources. The program
// validates the values; `source` says where each came from, for its errors
// ("port (flag --port)").
struct ExtraSettings {
  std::span<const SettingInfo> settings;
  struct Value {
    std::string value;
    std::string source;
  };
  std::map<std::string, Value> values;  // filled by resolve_options: every setting
};

// Resolves and validates every known setting. Throws as described above;
// kInvalidArgument naming the file when the config file is missing or is not
// valid TOML. With `extra`, its settings are known too (in the config file
// they may be strings, integers or booleans) and their values are filled in.
PlatformOptions resolve_options(const ConfigSources& sources, ExtraSettings* extra = nullptr);

// Checks each setting's syntax; throws Error{kInvalidArgument} naming the
// first bad setting and its value.
void validate_options(const PlatformOptions& options);

// For programs' own settings, parsed as the platform's are: an integer in
// [min, max], or Error{kInvalidArgument} "<label>: must be ... (got "...")";
// and the trimmed entries of a comma-separated list (none for "").
long long parse_integer_setting(const std::string& value, const std::string& label, long long min,
                                long long max);
std::vector<std::string> split_setting_list(const std::string& value);

}  // namespace devcycle
