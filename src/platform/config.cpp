#include "devcycle/config.h"

#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <vector>

#include "cache/cache_args.h"
#include "common/url.h"
#include "devcycle/error.h"
#include "platform/bus_url.h"
#include "store/database_url.h"

extern char** environ;

namespace devcycle {
namespace {

constexpr std::array<SettingInfo, 4> kSettings{{
    {"database", "DEVCYCLE_DATABASE", "sqlite://./devcycle.db",
     "Where state is kept: sqlite://PATH, sqlite::memory: or postgresql://user@host:port/db"},
    {"bus", "DEVCYCLE_BUS", "inproc://",
     "The message bus: inproc:// or kafka://host:port[,host:port...]"},
    {"cache", "DEVCYCLE_CACHE", "memory://", "The cache: memory:// or redis://host:port/db"},
    {"log_level", "DEVCYCLE_LOG_LEVEL", "info", "trace, debug, info, warn or error"},
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

}  // namespace

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
  const auto target_of = [&](std::string_view name) -> std::string* {
    if (auto* f = field(o, name)) return f;
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
    validate_one(s.name, *field(o, s.name), label[std::string(s.name)]);
  }
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
    validate_one(s.name, *field(options, s.name), std::string(s.name));
  }
}

}  // namespace devcycle
