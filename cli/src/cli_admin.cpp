// devcycle logs | keys | users | secrets | messages | dlq
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "cli.h"
#include "devcycle/common/error.h"
#include "devcycle/store/database.h"
#include "session.h"

namespace devcycle::cli {

namespace {

// A secret or a password: from standard input only, never from argv (shell
// history, `ps`).
std::string read_stdin_value(const char* what) {
  std::string value;
  std::getline(std::cin, value);
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  if (value.empty()) throw CliError(kUsage, std::string(what) + ": nothing on standard input");
  return value;
}

Json parse_json_arg(const std::string& text, const char* flag) {
  auto j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) throw CliError(kUsage, std::string(flag) + ": not JSON");
  return j;
}

void add_log_commands(CLI::App& app, Options& options) {
  static std::string task_id;
  static int attempt = 0;
  static bool follow = false;
  static int interval_ms = 500;
  auto* logs = app.add_subcommand("logs", "A task's log lines, oldest first");
  logs->add_option("task", task_id, "Task id")->required();
  logs->add_option("--attempt", attempt, "Only this attempt");
  logs->add_flag("-f,--follow", follow, "Keep printing new lines until the task ends");
  logs->add_option("--interval-ms", interval_ms, "How often -f looks")->capture_default_str();
  logs->callback([&] {
    Session s(options);
    const std::string base = "/api/v1/tasks/" + url_escape(task_id);
    std::string after;
    for (;;) {
      // The task's end is read before its lines: every line written before
      // the end is among those drained next.
      const bool ended = follow && terminal_status(cell(s.call("GET", base)["status"]));
      // Everything there is now, a page at a time.
      for (;;) {
        const auto page =
            s.call("GET", base + "/logs" +
                              query({{"attempt", attempt ? std::to_string(attempt) : ""},
                                     {"limit", "1000"},
                                     {"page_token", after}}));
        for (const auto& line : page["items"]) {
          after = cell(line["id"]);
          if (options.format() == Format::kJson) {
            std::cout << line.dump() << "\n";
          } else {
            std::cout << short_time(line["at"]) << "  " << cell(line["level"]) << "  #"
                      << cell(line["attempt"]) << "  " << cell(line["message"]) << "\n";
          }
        }
        std::cout << std::flush;
        if (page["next_page_token"].is_null() || cell(page["next_page_token"]).empty()) break;
      }
      if (!follow || ended) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(std::max(50, interval_ms)));
    }
  });
}

void add_key_commands(CLI::App& app, Options& options) {
  auto* keys = app.add_subcommand("keys", "API keys (yours; an admin's: anyone's)");
  keys->require_subcommand(1);
  static std::string owner, name, role = "developer", agent, expires, key_id;
  static std::vector<std::string> capabilities;
  auto* ls = keys->add_subcommand("ls", "List API keys (never their secrets)");
  ls->add_option("--owner", owner, "Another user's keys (admins)");
  ls->callback([&] {
    Session s(options);
    const auto page = s.call("GET", "/api/v1/api-keys" + query({{"owner", owner}}));
    if (options.format() == Format::kJson) return print_json(page["items"]);
    std::vector<std::vector<std::string>> rows;
    for (const auto& k : page["items"]) {
      rows.push_back({cell(k["id"]), cell(k["name"]), cell(k["prefix"]), cell(k["role"]),
                      short_time(k["expires_at"]), short_time(k["last_used_at"]),
                      k["revoked_at"].is_null() ? "" : "revoked"});
    }
    print_table(std::cout, {"id", "name", "prefix", "role", "expires", "used", ""}, rows);
  });
  auto* create = keys->add_subcommand("create", "Create a key; its secret is shown once");
  create->add_option("name", name, "A name for people")->required();
  create->add_option("--role", role, "viewer, developer, operator or agent")->capture_default_str();
  create->add_option("--agent", agent, "The agent an agent-role key acts as");
  create->add_option("--capability", capabilities, "Limit the key to a capability (repeatable)");
  create->add_option("--expires-at", expires, "RFC 3339 time");
  create->callback([&] {
    Session s(options);
    Json body = {{"name", name}, {"role", role}};
    if (!agent.empty()) body["agent_id"] = agent;
    if (!capabilities.empty()) body["capabilities"] = capabilities;
    if (!expires.empty()) body["expires_at"] = expires;
    const auto k = s.call("POST", "/api/v1/api-keys", &body);
    if (options.format() == Format::kJson) return print_json(k);
    std::cout << "key " << cell(k["id"]) << " (" << cell(k["role"]) << ")\n"
              << "secret: " << cell(k["secret"]) << "\n"
              << "It is shown only this once.\n";
  });
  auto* revoke = keys->add_subcommand("revoke", "Revoke a key");
  revoke->add_option("id", key_id, "Key id")->required();
  revoke->callback([&] {
    Session s(options);
    s.call("DELETE", "/api/v1/api-keys/" + url_escape(key_id));
    if (options.format() == Format::kJson) return print_json({{"id", key_id}, {"revoked", true}});
    std::cout << "key " << key_id << " revoked\n";
  });
}

void add_user_commands(CLI::App& app, Options& options) {
  auto* users = app.add_subcommand("users", "User accounts (admins)");
  users->require_subcommand(1);
  static std::string role, email, username;
  auto* ls = users->add_subcommand("ls", "List users");
  ls->add_option("--role", role, "Only this role");
  ls->callback([&] {
    Session s(options);
    const auto page = s.call("GET", "/api/v1/users" + query({{"role", role}, {"limit", "1000"}}));
    if (options.format() == Format::kJson) return print_json(page["items"]);
    std::vector<std::vector<std::string>> rows;
    for (const auto& u : page["items"]) {
      rows.push_back({cell(u["id"]), cell(u["username"]), cell(u["email"]), cell(u["role"]),
                      u.value("active", true) ? "active" : "inactive"});
    }
    print_table(std::cout, {"id", "username", "email", "role", "state"}, rows);
  });
  static std::string new_role = "developer";
  auto* create =
      users->add_subcommand("create", "Create a user; the password is read from standard input");
  create->add_option("username", username, "Login name")->required();
  create->add_option("--email", email, "E-mail address")->required();
  create->add_option("--role", new_role, "viewer, developer, operator or admin")
      ->capture_default_str();
  create->callback([&] {
    Session s(options);
    const Json body = {{"username", username},
                       {"email", email},
                       {"role", new_role},
                       {"password", read_stdin_value("password")}};
    const auto u = s.call("POST", "/api/v1/users", &body);
    if (options.format() == Format::kJson) return print_json(u);
    std::cout << "user " << cell(u["username"]) << " " << cell(u["id"]) << " (" << cell(u["role"])
              << ")\n";
  });
}

void add_secret_commands(CLI::App& app, Options& options) {
  auto* secrets = app.add_subcommand("secrets", "Named secrets (values are never shown)");
  secrets->require_subcommand(1);
  static std::string name;
  auto* set = secrets->add_subcommand(
      "set", "Create or replace a secret; its value is read from standard input");
  set->add_option("name", name, "Secret name")->required();
  set->callback([&] {
    Session s(options);
    const Json body = {{"value", read_stdin_value("value")}};
    const auto info = s.call("PUT", "/api/v1/secrets/" + url_escape(name), &body);
    if (options.format() == Format::kJson) return print_json(info);
    std::cout << "secret " << cell(info["name"]) << " version " << cell(info["version"]) << "\n";
  });
  auto* ls = secrets->add_subcommand("ls", "List secret names");
  ls->callback([&] {
    Session s(options);
    const auto page = s.call("GET", "/api/v1/secrets");
    if (options.format() == Format::kJson) return print_json(page["items"]);
    std::vector<std::vector<std::string>> rows;
    for (const auto& i : page["items"])
      rows.push_back({cell(i["name"]), cell(i["version"]), short_time(i["updated_at"])});
    print_table(std::cout, {"name", "version", "updated"}, rows);
  });
  auto* rm = secrets->add_subcommand("rm", "Delete a secret");
  rm->add_option("name", name, "Secret name")->required();
  rm->callback([&] {
    Session s(options);
    s.call("DELETE", "/api/v1/secrets/" + url_escape(name));
    if (options.format() == Format::kJson) return print_json({{"name", name}, {"deleted", true}});
    std::cout << "secret " << name << " deleted\n";
  });
}

void add_message_commands(CLI::App& app, Options& options) {
  auto* messages = app.add_subcommand("messages", "Direct messages between agents");
  messages->require_subcommand(1);
  static std::string from, to, type, payload = "{}", agent, message_id;
  auto* send = messages->add_subcommand("send", "Send a message as an agent");
  send->add_option("--from", from, "Sending agent id")->required();
  send->add_option("--to", to, "Receiving agent id")->required();
  send->add_option("--type", type, "message_type")->required();
  send->add_option("--payload", payload, "JSON")->capture_default_str();
  send->callback([&] {
    Session s(options);
    const Json body = {{"recipient", to},
                       {"message_type", type},
                       {"payload", parse_json_arg(payload, "--payload")}};
    const auto m = s.call("POST", "/api/v1/agents/" + url_escape(from) + "/messages", &body);
    if (options.format() == Format::kJson) return print_json(m);
    std::cout << "message " << cell(m["id"]) << " " << cell(m["status"]) << "\n";
  });
  auto* receive =
      messages->add_subcommand("receive", "An agent's new messages (marks them delivered)");
  receive->add_option("agent", agent, "Receiving agent id")->required();
  receive->callback([&] {
    Session s(options);
    const auto page = s.call("POST", "/api/v1/agents/" + url_escape(agent) + "/messages/receive");
    if (options.format() == Format::kJson) return print_json(page["items"]);
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : page["items"]) {
      rows.push_back({cell(m["id"]), cell(m["sender"]), cell(m["message_type"]),
                      cell(m["payload"]).substr(0, 60), short_time(m["sent_at"])});
    }
    print_table(std::cout, {"id", "sender", "type", "payload", "sent"}, rows);
  });
  auto* read = messages->add_subcommand("read", "Mark a received message read");
  read->add_option("agent", agent, "Receiving agent id")->required();
  read->add_option("message", message_id, "Message id")->required();
  read->callback([&] {
    Session s(options);
    const auto m = s.call("POST", "/api/v1/agents/" + url_escape(agent) + "/messages/" +
                                      url_escape(message_id) + "/read");
    if (options.format() == Format::kJson) return print_json(m);
    std::cout << "message " << cell(m["id"]) << " " << cell(m["status"]) << "\n";
  });
}

void add_dlq_commands(CLI::App& app, Options& options) {
  auto* dlq = app.add_subcommand("dlq", "Dead letters of the message bus (admins)");
  dlq->require_subcommand(1);
  static std::string topic, group;
  static std::vector<std::string> ids;
  auto* ls = dlq->add_subcommand("ls", "Dead letters of a topic and group");
  ls->add_option("--topic", topic, "Topic")->required();
  ls->add_option("--group", group, "Consumer group")->required();
  ls->callback([&] {
    Session s(options);
    const auto page = s.call("GET", "/api/v1/dlq" + query({{"topic", topic}, {"group", group}}));
    if (options.format() == Format::kJson) return print_json(page["items"]);
    std::vector<std::vector<std::string>> rows;
    for (const auto& d : page["items"]) {
      rows.push_back({cell(d.value("id", Json())), cell(d.value("delivery_count", Json())),
                      cell(d.value("reason", Json())).substr(0, 60),
                      short_time(d.value("dead_at", Json()))});
    }
    print_table(std::cout, {"id", "deliveries", "reason", "dead"}, rows);
  });
  auto* redrive = dlq->add_subcommand("redrive", "Deliver dead letters again (all, or --id)");
  redrive->add_option("--topic", topic, "Topic")->required();
  redrive->add_option("--group", group, "Consumer group")->required();
  redrive->add_option("--id", ids, "Only these (repeatable)");
  redrive->callback([&] {
    Session s(options);
    Json body = {{"topic", topic}, {"group", group}};
    if (!ids.empty()) body["ids"] = ids;
    const auto r = s.call("POST", "/api/v1/dlq/redrive", &body);
    if (options.format() == Format::kJson) return print_json(r);
    std::cout << cell(r["redriven"]) << " redriven\n";
  });
}

// Local commands: they open the database file themselves, next to the server.
void add_backup_commands(CLI::App& app, Options& options) {
  auto* admin = app.add_subcommand("admin", "Backups of the server's SQLite database (local)");
  admin->require_subcommand(1);
  static std::string database, file;
  const auto database_url = [] {
    if (!database.empty()) return database;
    if (const char* d = std::getenv("DEVCYCLE_DATABASE"); d && *d) return std::string(d);
    return std::string("sqlite://./devcycle.db");  // devcycle serve's default
  };
  const auto run = [&](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      const int code = e.code() == ErrorCode::kNotFound        ? kNotFound
                       : e.code() == ErrorCode::kUnavailable   ? kUnavailable
                       : e.code() == ErrorCode::kAlreadyExists ? kDataErr
                                                               : kUsage;
      throw CliError(code, e.what());
    }
  };
  auto* backup = admin->add_subcommand(
      "backup", "Copy the database into a new file, online (SQLite; PostgreSQL: pg_dump)");
  backup->add_option("file", file, "The new backup file")->required();
  backup->add_option("--database", database,
                     "Database URL (default: DEVCYCLE_DATABASE, sqlite://./devcycle.db)");
  backup->callback([&, database_url, run] {
    run([&] { backup_database(database_url(), file); });
    if (options.format() == Format::kJson)
      return print_json({{"database", database_url()}, {"backup", file}});
    std::cout << "backed up " << database_url() << " to " << file << "\n";
  });
  auto* restore = admin->add_subcommand(
      "restore", "Replace the database with a backup (stop devcycle serve first)");
  restore->add_option("file", file, "A file made by devcycle admin backup")->required();
  restore->add_option("--database", database,
                      "Database URL (default: DEVCYCLE_DATABASE, sqlite://./devcycle.db)");
  restore->callback([&, database_url, run] {
    run([&] { restore_database(file, database_url()); });
    if (options.format() == Format::kJson)
      return print_json({{"database", database_url()}, {"restored_from", file}});
    std::cout << "restored " << database_url() << " from " << file << "\n";
  });
}

}  // namespace

void add_admin_commands(CLI::App& app, Options& options) {
  add_backup_commands(app, options);
  add_log_commands(app, options);
  add_key_commands(app, options);
  add_user_commands(app, options);
  add_secret_commands(app, options);
  add_message_commands(app, options);
  add_dlq_commands(app, options);
}

}  // namespace devcycle::cli
