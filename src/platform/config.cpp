#include "devcycle/config.h"

#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>

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

std::string known_names(std::string_view prefix, bool dashes) {
  std::string out;
  for (const auto& s : kSettings) {
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

ConfigSources ConfigSources::from_command_line(int argc, const char* const* argv) {
  ConfigSources s = from_environment();
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg(argv[i]);
    if (!arg.starts_with("--") || arg.size() == 2) {
      bad("argument \"" + std::string(arg) +
          "\": expected --name=value (known: " + known_names("--", true) + ", --config)");
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
    const bool known =
        name == "config" || std::any_of(kSettings.begin(), kSettings.end(),
                                        [&](const auto& k) { return k.name == name; });
    if (!known) {
      bad("flag --" + std::string(arg.substr(2)) + ": unknown (known: " + known_names("--", true) +
          ", --config)");
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

PlatformOptions resolve_options(const ConfigSources& sources) {
  PlatformOptions o;
  std::map<std::string, std::string> label;  // setting -> where its value came from
  for (const auto& s : kSettings) label[std::string(s.name)] = std::string(s.name) + " (default)";

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
      std::string* target = field(o, k);
      if (!target) {
        bad("config file " + file + ": unknown key \"" + k +
            "\" (known: " + known_names("", false) + ")");
      }
      const auto* str = node.as_string();
      if (!str) bad("config file " + file + ": key \"" + k + "\" must be a string");
      *target = str->get();
      label[k] = k + " (config file " + file + ")";
    }
  }

  for (const auto& s : kSettings) {
    if (auto it = sources.environment.find(std::string(s.environment));
        it != sources.environment.end()) {
      *field(o, s.name) = it->second;
      label[std::string(s.name)] = std::string(s.name) + " (" + std::string(s.environment) + ")";
    }
  }

  for (const auto& [name, value] : sources.flags) {
    std::string* target = field(o, name);
    if (!target)
      bad("flag --" + name + ": unknown (known: " + known_names("--", true) + ", --config)");
    *target = value;
    std::string dashed = name;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    label[name] = name + " (flag --" + dashed + ")";
  }

  for (const auto& s : kSettings) {
    validate_one(s.name, *field(o, s.name), label[std::string(s.name)]);
  }
  return o;
}

void validate_options(const PlatformOptions& options) {
  for (const auto& s : kSettings) {
    validate_one(s.name, *field(options, s.name), std::string(s.name));
  }
}

}  // namespace devcycle
