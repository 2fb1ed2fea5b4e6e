// The Database backends every conformance suite runs on: SQLite always, and
// PostgreSQL when DEVCYCLE_TEST_POSTGRES_URL names a server (the ctest label
// `integration` starts one with scripts/postgres.sh and runs each suite's
// postgresql instantiation against it).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "devcycle/cache/cache.h"
#include "support/temp_dir.h"

namespace devcycle::testing {

struct Backend {
  std::string name;
  std::function<std::string(const TempDir&)> url;
};

inline void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

// The PostgreSQL server of the integration tests, or "".
inline std::string test_postgres_url() {
  const char* url = std::getenv("DEVCYCLE_TEST_POSTGRES_URL");
  return url ? url : "";
}

// A schema of its own per test (and per `file`), so that tests share one
// server without seeing each other's rows, and a test that reopens its
// database finds it again.
inline std::string postgres_url_for(const TempDir& d, const std::string& file) {
  const auto base = test_postgres_url();
  const auto h = std::hash<std::string>{}(d.file(file));
  char name[24];
  std::snprintf(name, sizeof name, "t_%016zx", h);
  return base + (base.find('?') == std::string::npos ? "?" : "&") + "schema=" + name;
}

// sqlite::memory:, a SQLite file called `file` in the test's TempDir, and
// PostgreSQL when the integration tests provide one.
inline std::vector<Backend> database_backends(const std::string& file) {
  std::vector<Backend> all = {
      Backend{"sqlite_memory", [](const TempDir&) { return std::string("sqlite::memory:"); }},
      Backend{"sqlite_file", [file](const TempDir& d) { return "sqlite://" + d.file(file); }}};
  if (!test_postgres_url().empty()) {
    all.push_back(
        Backend{"postgresql", [file](const TempDir& d) { return postgres_url_for(d, file); }});
  }
  return all;
}

// The backends whose data outlives the Database object (not sqlite::memory:).
inline std::vector<Backend> durable_database_backends(const std::string& file) {
  auto all = database_backends(file);
  std::erase_if(all, [](const Backend& b) { return b.name == "sqlite_memory"; });
  return all;
}

// The cache for suites that use one beside their database: Redis (with a
// key prefix of its own) when DEVCYCLE_TEST_REDIS_URL names a server — the
// integration run sets it together with DEVCYCLE_TEST_POSTGRES_URL — else
// memory:// on `clock`. Redis keeps its own time: `clock` does not move it.
inline std::unique_ptr<Cache> test_cache(std::shared_ptr<Clock> clock) {
  if (const char* url = std::getenv("DEVCYCLE_TEST_REDIS_URL")) {
    static std::atomic<int> n{0};
    return Cache::open(std::string(url) + "?prefix=t" + std::to_string(::getpid()) + "_" +
                       std::to_string(++n) + ":");
  }
  CacheOptions options;
  options.clock = std::move(clock);
  return Cache::open("memory://", options);
}

inline bool test_cache_is_redis() { return std::getenv("DEVCYCLE_TEST_REDIS_URL") != nullptr; }

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param.name;
}

}  // namespace devcycle::testing
