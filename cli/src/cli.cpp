#include "cli.h"

#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "session.h"
#include "yaml.h"

namespace devcycle::cli {

// ---- the session ----------------------------------------------------------

std::string resolve_server(const Options& options) {
  if (!options.server.empty()) return options.server;
  if (const char* s = std::getenv("DEVCYCLE_SERVER"); s && *s) return s;
  if (auto c = load_credentials(); c && !c->server.empty()) return c->server;
  return "http://127.0.0.1:8080";
}

Session::Session(const Options& options, bool need_login)
    : server_(resolve_server(options)), client_(server_) {
  if (const char* t = std::getenv("DEVCYCLE_TOKEN"); t && *t) {
    token_ = t;  // an API key or an access token, for scripts and CI
    return;
  }
  if (auto c = load_credentials(); c && c->server == server_) {
    stored_ = std::move(c);
    token_ = stored_->access_token;
  }
  if (need_login && token_.empty()) {
    throw CliError(kNoPerm, "not logged in to " + server_ +
                                ": run devcycle login (or set DEVCYCLE_TOKEN to an API key)");
  }
}

ClientResponse Session::send(std::string_view method, const std::string& target,
                             const std::string& body,
                             std::vector<std::pair<std::string, std::string>> headers) {
  if (!token_.empty()) headers.emplace_back("Authorization", "Bearer " + token_);
  return client_.request(method, target, body, headers);
}

bool Session::refresh() {
  if (!stored_ || stored_->refresh_token.empty()) return false;
  const Json body = {{"refresh_token", stored_->refresh_token}};
  const auto r = client_.request("POST", "/api/v1/auth/refresh", body.dump());
  if (r.status != 200) return false;
  const auto j = Json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("access_token")) return false;
  stored_->access_token = j["access_token"].get<std::string>();
  stored_->refresh_token = j.value("refresh_token", stored_->refresh_token);
  token_ = stored_->access_token;
  save_credentials(*stored_);
  return true;
}

Json Session::call(std::string_view method, const std::string& target, const Json* body,
                   const std::vector<std::pair<std::string, std::string>>& headers) {
  const std::string text = body ? body->dump() : std::string();
  auto r = send(method, target, text, headers);
  if (r.status == 401 && refresh()) r = send(method, target, text, headers);
  if (r.status < 200 || r.status >= 300) fail_with(r);
  if (r.body.empty()) return Json();
  auto j = Json::parse(r.body, nullptr, false);
  if (j.is_discarded()) throw CliError(kSoftware, "the server answered with something not JSON");
  return j;
}

[[noreturn]] void fail_with(const ClientResponse& r) {
  std::string message = "HTTP " + std::to_string(r.status);
  const auto j = Json::parse(r.body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    if (j.contains("detail")) message += ": " + cell(j["detail"]);
    if (j.contains("errors") && j["errors"].is_array()) {
      for (const auto& e : j["errors"]) {
        message += "\n  " + cell(e.value("field", Json())) + ": " + cell(e.value("reason", Json()));
      }
    }
  }
  int code = kSoftware;
  if (r.status == 400 || r.status == 409 || r.status == 413 || r.status == 422) code = kDataErr;
  if (r.status == 401 || r.status == 403) code = kNoPerm;
  if (r.status == 401) message += " (log in again: devcycle login)";
  if (r.status == 404) code = kNotFound;
  if (r.status == 429) {
    code = kTempFail;
    if (const auto after = r.header("Retry-After"); !after.empty())
      message += " (retry after " + after + " s)";
  }
  if (r.status == 503) code = kUnavailable;
  throw CliError(code, message);
}

std::string url_escape(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string query(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (v.empty()) continue;
    out += (out.empty() ? "?" : "&") + k + "=" + url_escape(v);
  }
  return out;
}

void print_json(const Json& j) { std::cout << j.dump(2) << "\n"; }

namespace {

std::string read_password(bool from_stdin) {
  std::string password;
  if (from_stdin) {
    std::getline(std::cin, password);
  } else if (const char* p = std::getenv("DEVCYCLE_PASSWORD"); p && *p) {
    password = p;
  } else if (::isatty(STDIN_FILENO)) {
    std::cerr << "Password: " << std::flush;
    termios old{};
    ::tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    std::getline(std::cin, password);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  } else {
    throw CliError(kUsage,
                   "password: give it with --password-stdin or DEVCYCLE_PASSWORD (no terminal "
                   "to ask on)");
  }
  while (!password.empty() && (password.back() == '\n' || password.back() == '\r'))
    password.pop_back();
  if (password.empty()) throw CliError(kUsage, "password: empty");
  return password;
}

Json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw CliError(kNotFound, "-f: cannot read \"" + path + "\"");
  std::stringstream text;
  text << in.rdbuf();
  // JSON, or YAML (of which JSON is a subset) for .yaml / .yml files.
  if (path.ends_with(".yaml") || path.ends_with(".yml")) return yaml_to_json(text.str(), path);
  auto j = Json::parse(text.str(), nullptr, false);
  if (j.is_discarded()) {
    throw CliError(kDataErr, "-f: \"" + path + "\" is not JSON (name YAML files .yaml or .yml)");
  }
  return j;
}

void add_auth_commands(CLI::App& app, Options& options) {
  auto* login = app.add_subcommand("login", "Log in and keep the tokens for the next commands");
  static std::string username = "admin";
  static bool password_stdin = false;
  login->add_option("-u,--username", username, "Login name or e-mail")->capture_default_str();
  login->add_flag("--password-stdin", password_stdin, "Read the password from standard input");
  login->callback([&] {
    Session s(options, /*need_login=*/false);
    const Json body = {{"login", username}, {"password", read_password(password_stdin)}};
    const auto r = s.client().request("POST", "/api/v1/auth/login", body.dump());
    if (r.status != 200) fail_with(r);
    const auto j = Json::parse(r.body);
    save_credentials(
        {s.server(), username, j.value("access_token", ""), j.value("refresh_token", "")});
    if (options.format() == Format::kJson) {
      print_json({{"server", s.server()}, {"username", username}, {"logged_in", true}});
    } else {
      std::cout << "Logged in to " << s.server() << " as " << username << " (" << credentials_path()
                << ")\n";
    }
  });

  auto* logout = app.add_subcommand("logout", "Revoke the stored tokens and forget them");
  logout->callback([&] {
    auto stored = load_credentials();
    if (stored) {
      Session s(options, /*need_login=*/false);
      const Json body = {{"refresh_token", stored->refresh_token}};
      try {
        s.call("POST", "/api/v1/auth/logout", &body);
      } catch (const CliError&) {
        // Expired or revoked already: forgetting them is what is left to do.
      }
    }
    forget_credentials();
    if (options.format() == Format::kJson)
      print_json({{"logged_in", false}});
    else
      std::cout << "Logged out\n";
  });

  auto* whoami = app.add_subcommand("whoami", "Who the stored credentials are");
  whoami->callback([&] {
    Session s(options);
    const auto me = s.call("GET", "/api/v1/auth/me");
    if (options.format() == Format::kJson) return print_json(me);
    print_fields(std::cout, {{"server", s.server()},
                             {"username", cell(me.value("username", Json()))},
                             {"role", cell(me.value("role", Json()))},
                             {"id", cell(me.value("id", Json()))}});
  });
}

void add_agent_commands(CLI::App& app, Options& options) {
  auto* agents = app.add_subcommand("agents", "Registered agents");
  agents->require_subcommand(1);
  static std::string capability, status, owner;
  auto* ls = agents->add_subcommand("ls", "List agents");
  ls->add_option("--capability", capability, "Only agents offering this capability");
  ls->add_option("--status", status, "online, busy, offline or disabled");
  ls->add_option("--owner", owner, "Only this owner's agents (a user id)");
  ls->callback([&] {
    Session s(options);
    const auto page = s.call("GET", "/api/v1/agents" + query({{"capability", capability},
                                                              {"status", status},
                                                              {"owner", owner},
                                                              {"limit", "1000"}}));
    if (options.format() == Format::kJson) return print_json(page["items"]);
    std::vector<std::vector<std::string>> rows;
    for (const auto& a : page["items"]) {
      rows.push_back(
          {cell(a["id"]), cell(a["name"]), cell(a["type"]), status_text(cell(a["status"])),
           cell(a["active_version"]),
           std::to_string(a.value("load", 0)) + "/" + std::to_string(a.value("capacity", 1)),
           short_time(a["last_heartbeat"])});
    }
    print_table(std::cout, {"id", "name", "type", "status", "version", "load", "heartbeat"}, rows);
  });
  static std::string agent_id;
  auto* get = agents->add_subcommand("get", "Show one agent");
  get->add_option("id", agent_id, "Agent id")->required();
  get->callback([&] {
    Session s(options);
    const auto a = s.call("GET", "/api/v1/agents/" + url_escape(agent_id));
    if (options.format() == Format::kJson) return print_json(a);
    print_fields(std::cout, {{"id", cell(a["id"])},
                             {"name", cell(a["name"])},
                             {"owner", cell(a["owner"])},
                             {"type", cell(a["type"])},
                             {"status", status_text(cell(a["status"]))},
                             {"version", cell(a["active_version"])},
                             {"capacity", cell(a["capacity"])},
                             {"load", cell(a["load"])},
                             {"labels", cell(a["labels"])},
                             {"heartbeat", short_time(a["last_heartbeat"])}});
  });
}

void add_workflow_commands(CLI::App& app, Options& options) {
  auto* workflows = app.add_subcommand("workflows", "Workflow definitions");
  workflows->require_subcommand(1);
  static std::string file;
  auto* apply = workflows->add_subcommand("apply", "Store a definition as the next version");
  apply->add_option("-f,--file", file, "Definition (JSON, or YAML as .yaml or .yml)")->required();
  apply->callback([&] {
    Session s(options);
    const auto def = read_json_file(file);
    const auto stored = s.call("POST", "/api/v1/workflows", &def);
    if (options.format() == Format::kJson) return print_json(stored);
    std::cout << "workflow " << cell(stored["name"]) << " version " << cell(stored["version"])
              << "\n";
    for (const auto& w : stored.value("warnings", Json::array()))
      std::cerr << "warning: " << cell(w.value("path", Json())) << ": "
                << cell(w.value("message", Json())) << "\n";
  });
  auto* validate = workflows->add_subcommand("validate", "Check a definition; store nothing");
  validate->add_option("-f,--file", file, "Definition (JSON, or YAML as .yaml or .yml)")
      ->required();
  validate->callback([&] {
    Session s(options);
    const auto def = read_json_file(file);
    const auto report = s.call("POST", "/api/v1/workflows/validate", &def);
    if (options.format() == Format::kJson) {
      print_json(report);
    } else {
      for (const auto& p : report.value("problems", Json::array()))
        std::cout << cell(p.value("severity", Json())) << ": " << cell(p.value("path", Json()))
                  << ": " << cell(p.value("message", Json())) << "\n";
      std::cout << (report.value("valid", false) ? "valid" : "invalid") << "\n";
    }
    if (!report.value("valid", false)) throw CliError(kDataErr, "");
  });
  auto* ls = workflows->add_subcommand("ls", "List workflows");
  ls->callback([&] {
    Session s(options);
    const auto page = s.call("GET", "/api/v1/workflows");
    if (options.format() == Format::kJson) return print_json(page["items"]);
    std::vector<std::vector<std::string>> rows;
    for (const auto& w : page["items"])
      rows.push_back({cell(w["name"]), cell(w["latest_version"]), short_time(w["updated_at"])});
    print_table(std::cout, {"name", "version", "updated"}, rows);
  });
  static std::string name;
  static int version = 0;
  auto* get = workflows->add_subcommand("get", "Show a workflow's definition (as JSON)");
  get->add_option("name", name, "Workflow name")->required();
  get->add_option("--version", version, "A version (default: the latest)");
  get->callback([&] {
    Session s(options);
    const auto w = s.call("GET", "/api/v1/workflows/" + url_escape(name) +
                                     query({{"version", version ? std::to_string(version) : ""}}));
    print_json(options.format() == Format::kJson ? w : w["definition"]);
  });
}

const char* const kBashCompletion =
    R"(# devcycle completion for bash: source <(devcycle completion bash)
_devcycle() {
  local cur=${COMP_WORDS[COMP_CWORD]} noun=${COMP_WORDS[1]}
  local global="--server --output -o --help"
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W "serve login logout whoami agents workflows runs logs keys users secrets messages dlq admin completion version" -- "$cur"))
  elif [[ $COMP_CWORD -eq 2 ]]; then
    case $noun in
      agents) COMPREPLY=($(compgen -W "ls get" -- "$cur")) ;;
      workflows) COMPREPLY=($(compgen -W "apply validate ls get" -- "$cur")) ;;
      runs) COMPREPLY=($(compgen -W "start ls get cancel retry watch" -- "$cur")) ;;
      keys) COMPREPLY=($(compgen -W "ls create revoke" -- "$cur")) ;;
      users) COMPREPLY=($(compgen -W "ls create" -- "$cur")) ;;
      secrets) COMPREPLY=($(compgen -W "set ls rm" -- "$cur")) ;;
      messages) COMPREPLY=($(compgen -W "send receive read" -- "$cur")) ;;
      dlq) COMPREPLY=($(compgen -W "ls redrive" -- "$cur")) ;;
      admin) COMPREPLY=($(compgen -W "backup restore" -- "$cur")) ;;
      completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")) ;;
      login) COMPREPLY=($(compgen -W "--username --password-stdin $global" -- "$cur")) ;;
      *) COMPREPLY=($(compgen -W "$global" -- "$cur")) ;;
    esac
  elif [[ ${COMP_WORDS[COMP_CWORD-1]} == -f || ${COMP_WORDS[COMP_CWORD-1]} == --file ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$global" -- "$cur"))
  fi
}
complete -F _devcycle devcycle
)";

const char* const kZshCompletion = R"(#compdef devcycle
# devcycle completion for zsh: source <(devcycle completion zsh)
_devcycle() {
  local -a nouns
  nouns=(serve login logout whoami agents workflows runs logs keys users secrets messages dlq
         admin completion version)
  if (( CURRENT == 2 )); then
    _describe 'command' nouns
  elif (( CURRENT == 3 )); then
    case $words[2] in
      agents) _values 'verb' ls get ;;
      workflows) _values 'verb' apply validate ls get ;;
      runs) _values 'verb' start ls get cancel retry watch ;;
      keys) _values 'verb' ls create revoke ;;
      users) _values 'verb' ls create ;;
      secrets) _values 'verb' set ls rm ;;
      messages) _values 'verb' send receive read ;;
      dlq) _values 'verb' ls redrive ;;
      admin) _values 'verb' backup restore ;;
      completion) _values 'shell' bash zsh ;;
    esac
  else
    _files
  fi
}
compdef _devcycle devcycle
)";

void add_completion_command(CLI::App& app) {
  auto* completion = app.add_subcommand("completion", "Print a shell completion script");
  static std::string shell;
  completion->add_option("shell", shell, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
  completion->callback([&] { std::cout << (shell == "zsh" ? kZshCompletion : kBashCompletion); });
}

}  // namespace

int cli_main(int argc, char** argv) {
  CLI::App app{"devcycle: the DevCycle command-line client (docs/cli.md)", "devcycle"};
  Options options;
  app.add_option("--server", options.server,
                 "Server URL (default: DEVCYCLE_SERVER, the login's server, "
                 "http://127.0.0.1:8080)");
  app.add_option("-o,--output", options.output, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.require_subcommand(1);
  app.fallthrough();
  // Handled before parsing (main.cpp); listed here for --help.
  app.add_subcommand("serve", "Run the DevCycle server (devcycle serve --help)");
  app.add_subcommand("version", "Print the version");
  add_auth_commands(app, options);
  add_agent_commands(app, options);
  add_workflow_commands(app, options);
  add_run_commands(app, options);
  add_admin_commands(app, options);
  add_completion_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kUsage;
  } catch (const CliError& e) {
    if (e.what()[0]) std::cerr << "devcycle: " << e.what() << "\n";
    return e.code;
  } catch (const std::exception& e) {
    std::cerr << "devcycle: " << e.what() << "\n";
    return kSoftware;
  }
  return kOk;
}

}  // namespace devcycle::cli
