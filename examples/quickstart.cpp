// Opens DevCycle on the embedded defaults (or on --database/--cache/...,
// DEVCYCLE_* variables or a --config file) and shows what the foundation does:
// durable group-committed writes, reads, the cache's rate limiter and metrics.
//
//   build/dev/examples/quickstart [--database=sqlite://./devcycle.db] [--log-level=info]
#include <devcycle/devcycle.h>

#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace {

void print_help() {
  std::printf("usage: quickstart [--name=value ...] [--config FILE]\n\nsettings:\n");
  for (const auto& s : devcycle::known_settings()) {
    std::printf("  --%-10s %-22s (%.*s)\n      %.*s\n", std::string(s.name).c_str(),
                std::string(s.default_value).c_str(), static_cast<int>(s.environment.size()),
                s.environment.data(), static_cast<int>(s.description.size()), s.description.data());
  }
}

// Registers a code generator and a linter it depends on, deploys both, and
// picks the best agent for a capability. Runs once per database: a second run
// finds the agents already there.
void show_registry(devcycle::Registry& registry) {
  if (registry.list_types().empty()) {
    registry.define_type({"codegen", "Generates code from a specification",
                          R"({"type": "object", "required": ["model"],
                              "properties": {"model": {"enum": ["small", "large"]}}})"});
    registry.define_type({"linter", "Checks code style", "{}"});
  }
  auto find_or_create = [&](devcycle::AgentSpec spec) {
    try {
      return registry.get_by_name(spec.owner, spec.name);
    } catch (const devcycle::Error& e) {
      if (e.code() != devcycle::ErrorCode::kNotFound) throw;
      return registry.create(spec);
    }
  };
  const auto lint = find_or_create({"quickstart", "lint", "linter", "", "{}", {}, 2});
  const auto gen = find_or_create(
      {"quickstart", "gen", "codegen", "", R"({"model": "small"})", {{"team", "core"}}, 4});
  if (!lint.active_version) {
    registry.add_version(lint.id, {"1.4.0", {"lint@1.4.0"}, {}, "inproc:lint", ""});
    registry.deploy(lint.id, "1.4.0");
  }
  if (!gen.active_version) {
    registry.add_version(gen.id, {"2.1.0", {"codegen@2.1.0"}, {"lint@^1.2"}, "inproc:gen", ""});
    std::printf("codegen 2.1.0 compatible: %s\n",
                registry.check_compatibility(gen.id, "2.1.0").compatible() ? "yes" : "no");
    registry.deploy(gen.id, "2.1.0");
  }
  registry.heartbeat(lint.id, 0);
  registry.heartbeat(gen.id, 1);
  for (const auto& c : registry.select({"codegen", "^2.0", 5, false})) {
    std::printf("best agent for codegen@^2.0: %s/%s (%s, load %d of %d)\n", c.agent.owner.c_str(),
                c.agent.name.c_str(), c.capability.to_string().c_str(), c.agent.load,
                c.agent.capacity);
  }
  try {
    registry.create({"quickstart", "bad", "codegen", "", R"({"model": "huge"})", {}, 1});
  } catch (const devcycle::Error& e) {
    std::printf("refused as expected: %s\n", e.what());
  }
}

// Stores a workflow (lint, then generate one file per input element, then
// summarise) and runs it on in-process functions standing in for real agents.
void show_workflow(devcycle::Platform& platform) {
  auto& engine = platform.engine();
  engine.register_function("lint", [](devcycle::TaskContext& ctx) {
    ctx.log(devcycle::LogLevel::kInfo, "linting " + ctx.input());
    return std::string(R"({"clean": true})");
  });
  engine.register_function(
      "gen", [](devcycle::TaskContext& ctx) { return R"({"generated": )" + ctx.input() + "}"; });
  const auto wf = platform.workflows().create(R"({
    "name": "quickstart-pipeline",
    "input_schema": {"type": "object", "required": ["files"]},
    "tasks": [
      {"id": "lint", "capability": "lint", "input": {"files": "{{ input.files }}"}},
      {"id": "generate", "capability": "codegen", "version": "^2.0", "depends_on": ["lint"],
       "for_each": "input.files", "when": "tasks.lint.output.clean",
       "input": {"file": "{{ item }}", "n": "{{ index }}"}},
      {"id": "summary", "capability": "lint", "depends_on": ["generate"],
       "input": {"outputs": "{{ tasks.generate.output }}"}}
    ]})",
                                              "quickstart");
  devcycle::StartRun request;
  request.workflow = wf.name;
  request.owner = "quickstart";
  request.input = R"({"files": ["main.cpp", "util.cpp"]})";
  const auto run = engine.start(request);
  for (int i = 0; i < 1000 && !devcycle::is_terminal(engine.get(run.id).run.status); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto detail = engine.get(run.id);
  std::printf("workflow %s v%d run %s: %s\n", wf.name.c_str(), wf.version, run.id.c_str(),
              std::string(devcycle::to_string(detail.run.status)).c_str());
  for (const auto& t : detail.tasks) {
    std::printf("  %-12s %-10s attempts %zu\n", t.key.c_str(),
                std::string(devcycle::to_string(t.status)).c_str(), t.attempts.size());
  }
}

int run(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      print_help();
      return 0;
    }
  }
  auto options = devcycle::resolve_options(devcycle::ConfigSources::from_command_line(argc, argv));
  options.database_options.migrations = {
      {"quickstart", 1, "create notes",
       "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL, created_at BIGINT NOT NULL)",
       ""}};
  auto platform = devcycle::Platform::open(options);
  auto& db = platform->database();

  // 500 writes submitted at once: group commit packs them into a few transactions.
  std::vector<std::future<void>> pending;
  const auto now = platform->clock().now();
  for (int i = 0; i < 500; ++i) {
    pending.push_back(db.submit([i, now](devcycle::Txn& t) {
      t.execute("INSERT INTO notes (id, body, created_at) VALUES ($1, $2, $3)",
                {devcycle::new_uuid_v7(), "note " + std::to_string(i), now});
    }));
  }
  for (auto& f : pending) f.get();

  // A bad write fails alone and leaves nothing behind.
  try {
    db.write([](devcycle::Txn& t) {
      t.execute("INSERT INTO notes (id, body, created_at) VALUES ('x', 'half', 0)");
      t.execute("INSERT INTO notes (id, body, created_at) VALUES ('y', NULL, 0)");
    });
  } catch (const devcycle::Error& e) {
    std::printf("refused as expected (%s): %s\n",
                std::string(devcycle::to_string(e.code())).c_str(), e.what());
  }

  const auto total = db.read(
      [](devcycle::Txn& t) { return t.query("SELECT COUNT(*) FROM notes")[0][0].as_int(); });
  std::printf("database %s holds %lld notes\n", db.url().c_str(), static_cast<long long>(total));

  show_registry(platform->registry());
  show_workflow(*platform);

  int allowed = 0;
  for (int i = 0; i < 20; ++i) allowed += platform->cache().take("quickstart", 5, 10).allowed;
  std::printf("rate limiter (5/s, burst 10) allowed %d of 20 immediate requests\n", allowed);

  std::printf("\nmetrics:\n%s", platform->metrics().render_prometheus().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const devcycle::Error& e) {
    std::fprintf(stderr, "quickstart: %s\n", e.what());
    return e.code() == devcycle::ErrorCode::kInvalidArgument ? 64 : 69;  // EX_USAGE, EX_UNAVAILABLE
  }
}
