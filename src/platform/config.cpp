#include "devcycle/platform/config.h"

#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <map>
#include <vector>

#include "cache/cache_args.h"
#include "common/url.h"
#include "devcycle/common/error.h"
#include "messaging/bus_url.h"
#include "store/database_url.h"

extern char** environ;

namespace devcycle {
namespace {

// Every setting of the platform, one name each, as a flag, a config-file key
// and a DEVCYCLE_* variable; a program adds its own with ExtraSettings.
constexpr std::array<SettingInfo, 15> kSettings{{
    {"database", "DEVCYCLE_DATABASE", "sqlite://./devcycle.db",
     "Where state is kept: sqlite://PATH, sqlite::memory: or postgresql://user@host:port/db"},
    {"bus", "DEVCYCLE_BUS", "inproc://",
     "The message bus: inproc:// or kafka://host:port[,host:port...]"},
    {"cache", "DEVCYCLE_CACHE", "memory://", "The cache: memory:// or redis://host:port/db"},
    {"log_level", "DEVCYCLE_LOG_LEVEL", "info", "trace, debug, info, warn or error"},
    {"max_active_runs_per_owner", "DEVCYCLE_MAX_ACTIVE_RUNS_PER_OWNER", "0",
     "Quota: runs one owner may have pending, running or paused at once (0: no limit)"},
    {"max_agents_per_owner", "DEVCYCLE_MAX_AGENTS_PER_OWNER", "0",
     "Quota: agents one owner may have (0: no limit)"},
    {"blob_store", "DEVCYCLE_BLOB_STORE", "file://./devcycle-blobs",
     "Where task artifacts are kept: file:///dir or file://./dir"},
    {"retention_days", "DEVCYCLE_RETENTION_DAYS", "0",
     "Finished runs older than this many days are purged with their tasks, logs and artifacts "
     "(0: kept forever)"},
    {"retention_sweep_ms", "DEVCYCLE_RETENTION_SWEEP_MS", "3600000",
     "How often retention looks for runs to purge"},
    {"publish_events", "DEVCYCLE_PUBLISH_EVENTS", "auto",
     "Run and task events (devcycle.events) and message receipts (devcycle.messages) on the "
     "bus: true, false, or auto (true with kafka://)"},
    {"capability_rate_limits", "DEVCYCLE_CAPABILITY_RATE_LIMITS", "",
     "Task starts per second by capability, e.g. deploy=0.5,codegen=10 (burst: the rate, at "
     "least 1)"},
    {"process_allow", "DEVCYCLE_PROCESS_ALLOW", "",
     "Executables process agents may run, comma-separated absolute real paths; "
     "interpreter:/usr/bin/python3 for interpreters (empty: no process agents)"},
    {"process_memory_mb", "DEVCYCLE_PROCESS_MEMORY_MB", "1024",
     "Address-space limit of each process agent's attempt, in MiB"},
    {"argon2_memory_kib", "DEVCYCLE_ARGON2_MEMORY_KIB", "65536",
     "Memory of each password hash (argon2id), in KiB; at least 19456 (OWASP's minimum)"},
    {"credential_failures_per_address", "DEVCYCLE_CREDENTIAL_FAILURES_PER_ADDRESS", "50",
     "Forged or unknown credentials one client address may present in 15 minutes before each "
     "further one is answered 429; genuine credentials are never refused for their address"},
}};
constexpr std::string_view kConfigEnv = "DEVCYCLE_CONFIG";

std::string* field(PlatformOptions& o, std::string_view name) {
  if (name == "database") return &o.database;
  if (name == "bus") return &o.bus;
  if (name == "cache") return &o.cache;
  if (name == "log_level") return &o.log_level;
  return nullptr;
}

const std::string* field(const PlatformOptions& o, std::string_view name) {
  return field(const_cast<PlatformOptions&>(o), name);  // reads only
}

std::string known_names(std::string_view prefix, bool dashes,
                        std::span<const SettingInfo> extra = {}) {
  std::string out;
  std::vector<SettingInfo> all(kSettings.begin(), kSettings.end());
  all.insert(all.end(), extra.begin(), extra.end());
  for (const auto& s : all) {
    if (!out.empty()) out += ", ";
    std::string n(s.name);
    if (dashes) std::replace(n.begin(), n.end(), '_', '-');
    out += std::string(prefix) + n;
  }
  return out;
}

void validate_one(std::string_view name, const std::string& value, const std::string& label) {
  if (name == "database")
    internal::check_database_url(value, label);
  else if (name == "bus")
    internal::check_bus_url(value, label);
  else if (name == "cache")
    internal::check_cache_url(value, label);
  else if (name == "log_level")
    parse_log_level(value, label);
}

[[noreturn]] void bad(const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, message);
}

// The typed settings (everything but the four URL-like strings), from their
// resolved text into `o`. `label` says where each value came from.
void apply_typed(PlatformOptions& o, const std::map<std::string, std::string>& values,
                 std::map<std::string, std::string>& label) {
  const auto text = [&](const char* name) -> const std::string& { return values.at(name); };
  const auto integer = [&](const char* name, long long min, long long max) {
    return parse_integer_setting(text(name), label[name], min, max);
  };
  o.max_active_runs_per_owner =
      static_cast<int>(integer("max_active_runs_per_owner", 0, 1'000'000));
  o.max_agents_per_owner = static_cast<int>(integer("max_agents_per_owner", 0, 1'000'000));
  o.blob_store = text("blob_store");
  if (!o.blob_store.empty() && (!o.blob_store.starts_with("file://") || o.blob_store.size() == 7)) {
    bad(label["blob_store"] + ": must be file:///dir or file://./dir (got \"" + o.blob_store +
        "\")");
  }
  o.retention = std::chrono::hours(24 * integer("retention_days", 0, 36500));
  o.retention_sweep = std::chrono::milliseconds(integer("retention_sweep_ms", 100, 86'400'000));
  if (const auto& p = text("publish_events"); p == "true") {
    o.publish_events = true;
  } else if (p == "false") {
    o.publish_events = false;
  } else if (p != "auto") {
    bad(label["publish_events"] + ": must be true, false or auto (got \"" + p + "\")");
  }
  for (const auto& entry : split_setting_list(text("capability_rate_limits"))) {
    const auto eq = entry.find('=');
    double rate = 0;
    std::size_t used = 0;
    try {
      if (eq != std::string::npos) rate = std::stod(entry.substr(eq + 1), &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (eq == std::string::npos || eq == 0 || used == 0 || used != entry.size() - eq - 1 ||
        !(rate > 0)) {
      bad(label["capability_rate_limits"] +
          ": each entry is capability=starts_per_second, e.g. deploy=0.5 (got \"" + entry + "\")");
    }
    o.capability_rate_limits[entry.substr(0, eq)] = {rate, std::max(1.0, rate)};
  }
  for (auto entry : split_setting_list(text("process_allow"))) {
    AllowedExecutable e;
    if (entry.starts_with("interpreter:")) {
      e.interpreter = true;
      entry = entry.substr(12);
    }
    if (entry.empty() || entry.front() != '/') {
      bad(label["process_allow"] +
          ": each entry is an absolute path, or interpreter:/absolute/path (got \"" + entry +
          "\")");
    }
    e.path = entry;
    o.processes.allow.push_back(e);
  }
  o.processes.memory_bytes = static_cast<std::uint64_t>(integer("process_memory_mb", 16, 1 << 20))
                             << 20;
  o.argon2_memory_bytes =
      static_cast<std::size_t>(integer("argon2_memory_kib", 19456, 4 * 1024 * 1024)) * 1024;
  o.credential_failures_per_address =
      static_cast<int>(integer("credential_failures_per_address", 1, 1'000'000));
}

}  // namespace

long long parse_integer_setting(const std::string& value, const std::string& label, long long min,
                                long long max) {
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size())
    bad(label + ": must be an integer (got \"" + value + "\")");
  if (n < min || n > max) {
    bad(label + ": must be between " + std::to_string(min) + " and " + std::to_string(max) +
        " (got \"" + value + "\")");
  }
  return n;
}

std::vector<std::string> split_setting_list(const std::string& value) {
  std::vector<std::string> out;
  if (value.empty()) return out;
  std::size_t at = 0;
  for (;;) {
    const auto comma = value.find(',', at);
    auto entry = value.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    while (!entry.empty() && entry.front() == ' ') entry.erase(0, 1);
    while (!entry.empty() && entry.back() == ' ') entry.pop_back();
    out.push_back(std::move(entry));
    if (comma == std::string::npos) return out;
    at = comma + 1;
  }
}

std::span<const SettingInfo> known_settings() noexcept { return kSettings; }

ConfigSources ConfigSources::from_environment() {
  ConfigSources s;
  for (char** e = environ; e && *e; ++e) {
    const std::string_view entry(*e);
    if (!entry.starts_with("DEVCYCLE_")) continue;
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    s.environment.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return s;
}

ConfigSources ConfigSources::from_command_line(int argc, const char* const* argv,
                                               std::span<const SettingInfo> extra) {
  ConfigSources s = from_environment();
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg(argv[i]);
    if (!arg.starts_with("--") || arg.size() == 2) {
      bad("argument \"" + std::string(arg) +
          "\": expected --name=value (known: " + known_names("--", true, extra) + ", --config)");
    }
    std::string name(arg.substr(2));
    std::string value;
    bool has_value = false;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    std::replace(name.begin(), name.end(), '-', '_');
    const auto named = [&](const auto& k) { return k.name == name; };
    const bool known = name == "config" || std::any_of(kSettings.begin(), kSettings.end(), named) ||
                       std::any_of(extra.begin(), extra.end(), named);
    if (!known) {
      bad("flag --" + std::string(arg.substr(2)) +
          ": unknown (known: " + known_names("--", true, extra) + ", --config)");
    }
    if (!has_value) {
      if (i + 1 >= argc) bad("flag " + std::string(arg) + ": needs a value");
      value = argv[++i];
    }
    if (name == "config")
      s.config_file = value;
    else
      s.flags[name] = value;
  }
  return s;
}

PlatformOptions resolve_options(const ConfigSources& sources, ExtraSettings* extra) {
  PlatformOptions o;
  std::map<std::string, std::string> label;  // setting -> where its value came from
  for (const auto& s : kSettings) label[std::string(s.name)] = std::string(s.name) + " (default)";
  const std::span<const SettingInfo> extras =
      extra ? extra->settings : std::span<const SettingInfo>{};
  // Extra settings: name -> value; a pointer into it stands in for a field.
  std::map<std::string, std::string> extra_values;
  for (const auto& s : extras) {
    extra_values[std::string(s.name)] = std::string(s.default_value);
    label[std::string(s.name)] = std::string(s.name) + " (default)";
  }
  // The platform's typed settings, as text until apply_typed() parses them.
  std::map<std::string, std::string> typed_values;
  for (const auto& s : kSettings) {
    if (!field(o, s.name)) typed_values[std::string(s.name)] = std::string(s.default_value);
  }
  const auto target_of = [&](std::string_view name) -> std::string* {
    if (auto* f = field(o, name)) return f;
    if (auto it = typed_values.find(std::string(name)); it != typed_values.end())
      return &it->second;
    if (auto it = extra_values.find(std::string(name)); it != extra_values.end())
      return &it->second;
    return nullptr;
  };

  std::string file = sources.config_file;
  if (file.empty()) {
    if (auto it = sources.environment.find(std::string(kConfigEnv));
        it != sources.environment.end()) {
      file = it->second;
    }
  }
  if (!file.empty()) {
    toml::table table;
    try {
      table = toml::parse_file(file);
    } catch (const toml::parse_error& e) {
      const auto& where = e.source().begin;
      if (where.line == 0)
        bad("config file " + file + ": cannot be read: " + std::string(e.description()));
      bad("config file " + file + ": line " + std::to_string(where.line) + ", column " +
          std::to_string(where.column) + ": " + std::string(e.description()));
    }
    for (const auto& [key, node] : table) {
      const std::string k(key.str());
      std::string* target = target_of(k);
      if (!target) {
        bad("config file " + file + ": unknown key \"" + k +
            "\" (known: " + known_names("", false, extras) + ")");
      }
      const bool is_extra = !field(o, k);
      if (const auto* str = node.as_string()) {
        *target = str->get();
      } else if (const auto* i = node.as_integer(); i && is_extra) {
        *target = std::to_string(i->get());
      } else if (const auto* b = node.as_boolean(); b && is_extra) {
        *target = b->get() ? "true" : "false";
      } else {
        bad("config file " + file + ": key \"" + k + "\" must be a string" +
            (is_extra ? ", an integer or a boolean" : ""));
      }
      label[k] = k + " (config file " + file + ")";
    }
  }

  const auto from_environment = [&](const SettingInfo& s) {
    if (auto it = sources.environment.find(std::string(s.environment));
        it != sources.environment.end()) {
      *target_of(s.name) = it->second;
      label[std::string(s.name)] = std::string(s.name) + " (" + std::string(s.environment) + ")";
    }
  };
  for (const auto& s : kSettings) from_environment(s);
  for (const auto& s : extras) from_environment(s);

  for (const auto& [name, value] : sources.flags) {
    std::string* target = target_of(name);
    if (!target)
      bad("flag --" + name + ": unknown (known: " + known_names("--", true, extras) +
          ", --config)");
    *target = value;
    std::string dashed = name;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    label[name] = name + " (flag --" + dashed + ")";
  }

  for (const auto& s : kSettings) {
    if (const auto* f = field(o, s.name)) validate_one(s.name, *f, label[std::string(s.name)]);
  }
  apply_typed(o, typed_values, label);
  if (extra) {
    extra->values.clear();
    for (auto& [name, value] : extra_values) {
      extra->values[name] = {std::move(value), label[name]};
    }
  }
  return o;
}

void validate_options(const PlatformOptions& options) {
  for (const auto& s : kSettings) {
    if (const auto* f = field(options, s.name)) validate_one(s.name, *f, std::string(s.name));
  }
}

}  // namespace devcycle
