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
