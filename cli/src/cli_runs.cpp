// devcycle runs start | ls | get | cancel | retry | watch
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "cli.h"
#include "session.h"

namespace devcycle::cli {

namespace {

std::vector<std::string> run_row(const Json& r) {
  return {cell(r["id"]),
          cell(r["workflow"]) + "@" + cell(r["workflow_version"]),
          status_text(cell(r["status"])),
          short_time(r["created_at"]),
          short_time(r["finished_at"]),
          r["error"].is_null() ? "" : cell(r["error"]).substr(0, 60)};
}

void print_run(const Json& d, Format format) {
  if (format == Format::kJson) return print_json(d);
  print_fields(std::cout,
               {{"id", cell(d["id"])},
                {"workflow", cell(d["workflow"]) + " version " + cell(d["workflow_version"])},
                {"status", status_text(cell(d["status"]))},
                {"created", short_time(d["created_at"])},
                {"started", short_time(d["started_at"])},
                {"finished", short_time(d["finished_at"])},
                {"error", cell(d["error"])}});
  if (!d.contains("tasks")) return;
  std::cout << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : d["tasks"]) {
    rows.push_back({cell(t["key"]), status_text(cell(t["status"])), cell(t["attempt"]),
                    short_time(t["started_at"]), short_time(t["finished_at"]),
                    t["error"].is_null() ? "" : cell(t["error"]).substr(0, 60)});
  }
  print_table(std::cout, {"task", "status", "attempt", "started", "finished", "error"}, rows);
}

// Follows a run until it ends: each task's changes as they are seen, a
// progress bar on a terminal; the exit code is the run's outcome.
int watch(Session& s, const std::string& run_id, Format format,
          std::chrono::milliseconds interval) {
  std::map<std::string, std::string> seen;  // task key -> status
  const bool bar = format == Format::kTable && ::isatty(STDOUT_FILENO) == 1;
  std::string run_status;
  for (;;) {
    const auto d = s.call("GET", "/api/v1/runs/" + url_escape(run_id));
    run_status = cell(d["status"]);
    std::size_t done = 0, total = 0;
    for (const auto& t : d["tasks"]) {
      if (!t["index"].is_null()) continue;  // fan-out elements show through their group
      ++total;
      const auto key = cell(t["key"]);
      const auto status = cell(t["status"]);
      if (terminal_status(status)) ++done;
      if (seen[key] == status) continue;
      seen[key] = status;
      if (bar) std::cout << "\r\033[K";
      if (format == Format::kJson) {
        std::cout << Json{{"task", key},
                          {"status", status},
                          {"attempt", t["attempt"]},
                          {"error", t["error"]}}
                         .dump()
                  << "\n";
      } else {
        std::cout << key << "  " << status_text(status)
                  << (t["error"].is_null() ? "" : "  " + cell(t["error"]).substr(0, 100)) << "\n";
      }
    }
    if (bar) {
      const std::size_t width = 30, filled = total ? done * width / total : 0;
      std::cout << "\r[" << std::string(filled, '#') << std::string(width - filled, '-') << "] "
                << done << "/" << total << " tasks  " << status_text(run_status) << std::flush;
    }
    if (terminal_status(run_status)) {
      if (bar) std::cout << "\n";
      if (format == Format::kJson) {
        print_json(d);
      } else {
        std::cout << "run " << run_id << " " << status_text(run_status)
                  << (d["error"].is_null() ? "" : ": " + cell(d["error"])) << "\n";
      }
      return run_status == "succeeded" ? kOk : kRunFailed;
    }
    std::this_thread::sleep_for(interval);
  }
}

}  // namespace

void add_run_commands(CLI::App& app, Options& options) {
  auto* runs = app.add_subcommand("runs", "Workflow runs");
  runs->require_subcommand(1);

  static std::string workflow, input, input_file, idempotency_key;
  static std::vector<std::string> labels;
  static int version = 0;
  static bool follow = false;
  static int interval_ms = 500;
  auto* start = runs->add_subcommand("start", "Start a run of a workflow");
  start->add_option("workflow", workflow, "Workflow name")->required();
  start->add_option("--input", input, "Run input (a JSON object)");
  start->add_option("--input-file", input_file, "Run input from a file");
  start->add_option("--version", version, "A workflow version (default: the latest)");
  start->add_option("--label", labels, "key=value (repeatable)");
  start->add_option("--idempotency-key", idempotency_key,
                    "Starting again with the same key returns the same run");
  start->add_flag("-w,--watch", follow, "Follow the run to its end; exit with its outcome");
  start->add_option("--interval-ms", interval_ms, "How often --watch looks")->capture_default_str();
  start->callback([&] {
    Session s(options);
    Json body = {{"workflow", workflow}};
    std::string text = input;
    if (!input_file.empty()) {
      std::ifstream in(input_file);
      if (!in) throw CliError(kNotFound, "--input-file: cannot read \"" + input_file + "\"");
      std::stringstream all;
      all << in.rdbuf();
      text = all.str();
    }
    if (!text.empty()) {
      body["input"] = Json::parse(text, nullptr, false);
      if (body["input"].is_discarded()) throw CliError(kUsage, "--input: not JSON");
    }
    if (version) body["version"] = version;
    if (!labels.empty()) {
      Json l = Json::object();
      for (const auto& kv : labels) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0)
          throw CliError(kUsage, "--label: \"" + kv + "\" is not key=value");
        l[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
      body["labels"] = l;
    }
    std::vector<std::pair<std::string, std::string>> headers;
    if (!idempotency_key.empty()) headers.emplace_back("Idempotency-Key", idempotency_key);
    const auto run = s.call("POST", "/api/v1/runs", &body, headers);
    if (!follow) {
      if (options.format() == Format::kJson) return print_json(run);
      std::cout << "run " << cell(run["id"]) << " " << status_text(cell(run["status"])) << "\n";
      return;
    }
    if (options.format() == Format::kTable) std::cout << "run " << cell(run["id"]) << "\n";
    const int code = watch(s, cell(run["id"]), options.format(),
                           std::chrono::milliseconds(std::max(50, interval_ms)));
    if (code != kOk) throw CliError(code, "");
  });

  static std::string status, owner, label;
  static int limit = 50;
  auto* ls = runs->add_subcommand("ls", "List runs, newest first");
  ls->add_option("--status", status, "pending, running, paused, succeeded, failed, ...");
  ls->add_option("--workflow", workflow, "Only runs of this workflow");
  ls->add_option("--owner", owner, "Only runs of this owner (a user id)");
  ls->add_option("--label", label, "key:value");
  ls->add_option("--limit", limit, "At most this many (1-1000)")->capture_default_str();
  ls->callback([&] {
    Session s(options);
    const auto page = s.call("GET", "/api/v1/runs" + query({{"status", status},
                                                            {"workflow", workflow},
                                                            {"owner", owner},
                                                            {"label", label},
                                                            {"limit", std::to_string(limit)}}));
    if (options.format() == Format::kJson) return print_json(page["items"]);
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : page["items"]) rows.push_back(run_row(r));
    print_table(std::cout, {"id", "workflow", "status", "created", "finished", "error"}, rows);
  });

  static std::string run_id;
  auto* get = runs->add_subcommand("get", "Show a run and its tasks");
  get->add_option("id", run_id, "Run id")->required();
  get->callback([&] {
    Session s(options);
    print_run(s.call("GET", "/api/v1/runs/" + url_escape(run_id)), options.format());
  });

  for (const char* verb : {"cancel", "retry"}) {
    auto* change = runs->add_subcommand(
        verb, std::string(verb == std::string("cancel") ? "Cancel a run that has not finished"
                                                        : "Start a failed run again"));
    change->add_option("id", run_id, "Run id")->required();
    change->callback([&, verb] {
      Session s(options);
      const auto r = s.call("POST", "/api/v1/runs/" + url_escape(run_id) + "/" + std::string(verb));
      if (options.format() == Format::kJson) return print_json(r);
      std::cout << "run " << cell(r["id"]) << " " << status_text(cell(r["status"])) << "\n";
    });
  }

  auto* watch_cmd = runs->add_subcommand("watch", "Follow a run to its end; exit with its outcome");
  watch_cmd->add_option("id", run_id, "Run id")->required();
  watch_cmd->add_option("--interval-ms", interval_ms, "How often to look")->capture_default_str();
  watch_cmd->callback([&] {
    Session s(options);
    const int code =
        watch(s, run_id, options.format(), std::chrono::milliseconds(std::max(50, interval_ms)));
    if (code != kOk) throw CliError(code, "");
  });
}

}  // namespace devcycle::cli
