#include "serve.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "devcycle/auth/tokens.h"
#include "devcycle/common/error.h"
#include "devcycle/platform/config.h"
#include "devcycle/platform/platform.h"
#include "devcycle/version.h"
#include "http_server.h"
#include "problem.h"
#include "server_app.h"

#ifndef DEVCYCLE_SWAGGER_UI_DIR
#define DEVCYCLE_SWAGGER_UI_DIR ""
#endif

namespace devcycle::server {

namespace {

constexpr std::array<SettingInfo, 19> kServeSettings{{
    {"listen", "DEVCYCLE_LISTEN", "127.0.0.1:8080", "Address and port to listen on (port 0: any)"},
    {"threads", "DEVCYCLE_THREADS", "2", "HTTP I/O threads"},
    {"login_threads", "DEVCYCLE_LOGIN_THREADS", "1",
     "Threads for password hashing (login, password change), apart from the others"},
    {"body_limit", "DEVCYCLE_BODY_LIMIT", "1048576", "Largest request body in bytes (413 above)"},
    {"header_limit", "DEVCYCLE_HEADER_LIMIT", "16384", "Largest request header block in bytes"},
    {"read_timeout_ms", "DEVCYCLE_READ_TIMEOUT_MS", "10000",
     "Time for a whole request to arrive once it started"},
    {"idle_timeout_ms", "DEVCYCLE_IDLE_TIMEOUT_MS", "60000",
     "Keep-alive wait for the next request"},
    {"max_connections", "DEVCYCLE_MAX_CONNECTIONS", "1024", "Open connections at most"},
    {"ws_queue_limit", "DEVCYCLE_WS_QUEUE_LIMIT", "1000",
     "Frames queued per /ws connection before a slow reader loses them (and is told)"},
    {"tls_certificate", "DEVCYCLE_TLS_CERTIFICATE", "", "PEM certificate chain; enables TLS"},
    {"tls_key", "DEVCYCLE_TLS_KEY", "", "PEM private key of the certificate"},
    {"master_key_file", "DEVCYCLE_MASTER_KEY_FILE", "./devcycle.key",
     "32-byte master key (mode 0600), created on first start; DEVCYCLE_MASTER_KEY overrides"},
    {"rate_limit", "DEVCYCLE_RATE_LIMIT", "200", "Requests per second per caller"},
    {"rate_burst", "DEVCYCLE_RATE_BURST", "400", "Burst of requests per caller"},
    {"shutdown_grace_ms", "DEVCYCLE_SHUTDOWN_GRACE_MS", "10000",
     "How long in-flight requests may finish on SIGTERM"},
    {"agent_list_cache_ms", "DEVCYCLE_AGENT_LIST_CACHE_MS", "1000",
     "How long an answer of GET /api/v1/agents is reused (changes made through another "
     "server show within it; 0: never reused)"},
    {"cors_origins", "DEVCYCLE_CORS_ORIGINS", "",
     "Comma-separated browser origins allowed cross-origin (https://app.example.com), or *"},
    {"swagger_ui_dir", "DEVCYCLE_SWAGGER_UI_DIR", DEVCYCLE_SWAGGER_UI_DIR,
     "Directory of the swagger-ui-dist package, served at /docs"},
    {"metrics_token", "DEVCYCLE_METRICS_TOKEN", "",
     "When set, GET /metrics needs \"Authorization: Bearer <this token>\" (at least 16 "
     "characters); empty: /metrics is open"},
}};

[[noreturn]] void bad_setting(const ExtraSettings::Value& v, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, v.source + ": " + why + " (got \"" + v.value + "\")");
}

long long integer_setting(const ExtraSettings& s, const char* name, long long min, long long max) {
  const auto& v = s.values.at(name);
  return parse_integer_setting(v.value, v.source, min, max);
}

struct ServeSettings {
  PlatformOptions platform;
  HttpServerOptions http;
  AppOptions app;
  std::string master_key_file;
  std::chrono::milliseconds grace{10'000};
};

ServeSettings resolve(int argc, const char* const* argv) {
  ExtraSettings extra{kServeSettings, {}};
  ServeSettings s;
  s.platform =
      resolve_options(ConfigSources::from_command_line(argc, argv, kServeSettings), &extra);
  const auto& listen = extra.values.at("listen");
  const auto colon = listen.value.rfind(':');
  if (colon == std::string::npos || colon == 0) bad_setting(listen, "must be HOST:PORT");
  s.http.address = listen.value.substr(0, colon);
  if (s.http.address.size() > 2 && s.http.address.front() == '[') {
    s.http.address = s.http.address.substr(1, s.http.address.size() - 2);
  }
  {
    ExtraSettings port_only = extra;
    port_only.values["listen"].value = listen.value.substr(colon + 1);
    s.http.port = static_cast<std::uint16_t>(integer_setting(port_only, "listen", 0, 65535));
  }
  s.http.threads = static_cast<int>(integer_setting(extra, "threads", 1, 256));
  s.http.heavy_threads = static_cast<int>(integer_setting(extra, "login_threads", 1, 64));
  s.http.body_limit =
      static_cast<std::size_t>(integer_setting(extra, "body_limit", 1024, 1LL << 30));
  s.http.header_limit =
      static_cast<std::size_t>(integer_setting(extra, "header_limit", 1024, 1 << 20));
  s.http.read_timeout =
      std::chrono::milliseconds(integer_setting(extra, "read_timeout_ms", 100, 3'600'000));
  s.http.idle_timeout =
      std::chrono::milliseconds(integer_setting(extra, "idle_timeout_ms", 100, 3'600'000));
  s.http.max_connections =
      static_cast<int>(integer_setting(extra, "max_connections", 1, 1'000'000));
  s.http.ws_queue_limit =
      static_cast<std::size_t>(integer_setting(extra, "ws_queue_limit", 1, 1'000'000));
  s.http.tls_certificate = extra.values.at("tls_certificate").value;
  s.http.tls_key = extra.values.at("tls_key").value;
  s.master_key_file = extra.values.at("master_key_file").value;
  s.app.rate_limit = static_cast<double>(integer_setting(extra, "rate_limit", 1, 10'000'000));
  s.app.rate_burst = static_cast<double>(integer_setting(extra, "rate_burst", 1, 10'000'000));
  s.grace = std::chrono::milliseconds(integer_setting(extra, "shutdown_grace_ms", 0, 3'600'000));
  s.app.swagger_ui_dir = extra.values.at("swagger_ui_dir").value;
  {
    const auto& token = extra.values.at("metrics_token");
    if (!token.value.empty() && token.value.size() < 16) {
      bad_setting(token, "must be at least 16 characters (or empty: /metrics open)");
    }
    s.app.metrics_token = token.value;
  }
  s.app.agent_list_cache =
      std::chrono::milliseconds(integer_setting(extra, "agent_list_cache_ms", 0, 60'000));
  {
    const auto& cors = extra.values.at("cors_origins");
    for (const auto& origin : split_setting_list(cors.value)) {
      check_cors_origin(origin, cors.source);
      s.app.cors_origins.push_back(origin);
    }
  }

  return s;
}

// The master key: DEVCYCLE_MASTER_KEY, else the file — created (0600) on
// first start. Sets `created` when it made the file.
std::string master_key(const std::string& file, bool& created) {
  created = false;
  if (!std::getenv("DEVCYCLE_MASTER_KEY") && !file.empty() && ::access(file.c_str(), F_OK) != 0) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  "master_key_file: cannot create " + file + ": " + std::strerror(errno));
    }
    const std::string hex = generate_master_key_hex() + "\n";
    const bool ok =
        ::write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
      ::unlink(file.c_str());
      throw Error(ErrorCode::kUnavailable, "master_key_file: cannot write " + file);
    }
    created = true;
  }
  return load_master_key(file);
}

int exit_code(const Error& e) {
  switch (e.code()) {
    case ErrorCode::kInvalidArgument:
      return 78;  // EX_CONFIG
    case ErrorCode::kUnavailable:
      return 69;  // EX_UNAVAILABLE
    default:
      return 70;  // EX_SOFTWARE
  }
}

void print_help() {
  std::cout << "Usage: devcycle serve [--name=value ...] [--config FILE]\n\n"
               "Starts the DevCycle server. Each setting may also come from its DEVCYCLE_*\n"
               "variable or the TOML config file (flags win, then variables, then the file).\n\n";
  for (const auto& s : known_settings()) {
    std::cout << "  --" << s.name << " (" << s.environment << ", default " << s.default_value
              << ")\n      " << s.description << "\n";
  }
  for (const auto& s : kServeSettings) {
    std::cout << "  --" << s.name << " (" << s.environment << ", default \"" << s.default_value
              << "\")\n      " << s.description << "\n";
  }
}

}  // namespace

int serve_main(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      print_help();
      return 0;
    }
  }
  const auto started = std::chrono::steady_clock::now();
  // Signals are taken by sigwait below; every thread started from here on
  // inherits the mask, so none of them is interrupted by them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  ServeSettings settings;
  try {
    settings = resolve(argc, argv);
  } catch (const Error& e) {
    std::cerr << "devcycle serve: " << e.what() << "\n";
    return 64;
  }
  try {
    bool key_created = false;
    settings.platform.master_key = master_key(settings.master_key_file, key_created);
    auto platform = Platform::open(settings.platform);
    const auto log = platform->logger().named("server");
    if (key_created) {
      log.warn("generated a new master key; back it up: without it the signing keys are lost",
               {{"file", settings.master_key_file}});
    }
    ServerApp app(*platform, settings.app);
    const std::string password = app.bootstrap_admin();

    HttpServer http(
        settings.http, [&app](const HttpRequest& r) { return app.handle(r); },
        [&app](const HttpRequest& r) { return app.classify(r); }, transport_problem);
    http.on_websocket(std::string(kWebSocketPath),
                      [&app](const HttpRequest& r, std::shared_ptr<WsConnection> c) {
                        return app.upgrade(r, std::move(c));
                      });
    http.start();
    const auto ready_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    const std::string scheme = settings.http.tls_certificate.empty() ? "http" : "https";
    std::cout << "devcycle " << DEVCYCLE_VERSION_STRING << " listening on " << scheme << "://"
              << settings.http.address << ":" << http.port() << " (ready in "
              << static_cast<long>(ready_ms) << " ms)\n";
    if (!password.empty()) {
      std::cout << "First start: created the admin account.\n"
                << "  login:    admin\n"
                << "  password: " << password << "\n"
                << "It is shown only this once; change it with POST /api/v1/auth/password.\n";
    }
    std::cout << std::flush;
    log.info("ready", {{"address", settings.http.address},
                       {"port", static_cast<std::int64_t>(http.port())},
                       {"ready_ms", ready_ms}});

    int sig = 0;
    sigwait(&signals, &sig);
    log.info("shutting down", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
    app.set_draining();
    http.shutdown(settings.grace);
    log.info("stopped accepting; in-flight requests finished");
    // The app, then the platform: the engine finishes its running tasks and
    // records them before the database closes.
    return 0;
  } catch (const Error& e) {
    std::cerr << "devcycle serve: " << e.what() << "\n";
    return exit_code(e);
  }
}

}  // namespace devcycle::server
