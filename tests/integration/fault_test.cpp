// Faults of the scale-out backends (ctest label `integration`): a PostgreSQL
// backend terminated mid-transaction, a PostgreSQL restart, a Redis restart.
// The restarts use servers of their own (scripts/postgres.sh and
// scripts/redis.sh on ports 19734 and 19735), so that the suites sharing the
// integration fixtures never see them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "devcycle/auth.h"
#include "devcycle/cache.h"
#include "devcycle/database.h"
#include "devcycle/error.h"
#include "devcycle/tokens.h"
#include "support/error_matchers.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

using namespace std::chrono_literals;

void script(const std::string& args) {
  const std::string cmd = std::string(DEVCYCLE_SCRIPTS_DIR) + "/" + args;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// A server started (and always stopped) by one test.
class OwnServer {
 public:
  OwnServer(std::string kind, int port) : kind_(std::move(kind)), state_(dir_.file("state")) {
    script(kind_ + ".sh start " + state_ + " " + std::to_string(port));
  }
  ~OwnServer() { script(kind_ + ".sh stop " + state_); }
  const std::string& state() const { return state_; }

 private:
  testing::TempDir dir_;
  std::string kind_;
  std::string state_;
};

Migration items() {
  return {"fault", 1, "items", "CREATE TABLE items (id TEXT PRIMARY KEY, n INTEGER NOT NULL)", ""};
}

std::set<std::string> ids(Database& db) {
  std::set<std::string> out;
  db.read([&](Txn& t) {
    for (const auto& r : t.query("SELECT id FROM items")) out.insert(r[0].as_text());
  });
  return out;
}

TEST(PostgresFaultTest, ATerminatedBackendFailsItsTransactionOnlyAndTheNextOnesReconnect) {
  const char* base = std::getenv("DEVCYCLE_TEST_POSTGRES_URL");
  ASSERT_NE(base, nullptr) << "DEVCYCLE_TEST_POSTGRES_URL is not set";
  const std::string app = "fault_" + std::to_string(::getpid());
  const std::string url = std::string(base) + "?schema=" + app + "&application_name=" + app;
  DatabaseOptions options;
  options.migrations = {items()};
  auto db = Database::open(url, options);
  auto admin = Database::open(std::string(base) + "?schema=" + app);
  db->write([](Txn& t) { t.execute("INSERT INTO items VALUES ('before', 1)"); });
  ASSERT_EQ(ids(*db).count("before"), 1u);  // a read connection is pooled now

  // Terminate the writer's backend while a closure is inside its transaction.
  std::promise<std::int64_t> inside;
  std::promise<void> release;
  auto doomed = db->submit([&](Txn& t) {
    t.execute("INSERT INTO items VALUES ('doomed', 2)");
    inside.set_value(t.query("SELECT pg_backend_pid()")[0][0].as_int());
    release.get_future().wait();
    t.execute("INSERT INTO items VALUES ('doomed-too', 3)");
  });
  const auto pid = inside.get_future().get();
  admin->write([&](Txn& t) { t.query("SELECT pg_terminate_backend($1)", {pid}); });
  release.set_value();
  EXPECT_DEVCYCLE_ERROR(doomed.get(), ErrorCode::kUnavailable);

  // The next write gets a new connection; nothing of the doomed closure is there.
  db->write([](Txn& t) { t.execute("INSERT INTO items VALUES ('after', 4)"); });

  // Terminate every connection of this database object (the pooled reader
  // too): the next read and write still work.
  admin->write([&](Txn& t) {
    t.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            {app});
  });
  EXPECT_EQ(ids(*db), (std::set<std::string>{"after", "before"}));
  db->write([](Txn& t) { t.execute("INSERT INTO items VALUES ('last', 5)"); });
  EXPECT_EQ(ids(*db), (std::set<std::string>{"after", "before", "last"}));
}

TEST(PostgresFaultTest, ARestartLosesNoAcknowledgedWriteAndWritesGoOnAfterIt) {
  OwnServer pg("postgres", 19734);
  DatabaseOptions options;
  options.migrations = {items()};
  auto db = Database::open("postgresql://postgres@127.0.0.1:19734/devcycle", options);

  std::mutex mu;
  std::set<std::string> acknowledged;
  std::atomic<int> failed{0};
  std::atomic<int> acked_after{0};
  std::atomic<bool> restarted{false};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      const auto id = "w" + std::to_string(i);
      try {
        db->write([&](Txn& t) { t.execute("INSERT INTO items VALUES ($1, $2)", {id, i}); });
        std::lock_guard lock(mu);
        acknowledged.insert(id);
        if (restarted) ++acked_after;
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
        ++failed;
        std::this_thread::sleep_for(20ms);
      }
    }
  });
  std::this_thread::sleep_for(300ms);
  script("postgres.sh restart " + pg.state());
  restarted = true;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (acked_after < 100 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  stop = true;
  writer.join();
  EXPECT_GE(acked_after.load(), 100) << "writes did not resume after the restart";
  const auto stored = ids(*db);
  std::size_t lost = 0;
  for (const auto& id : acknowledged) lost += stored.count(id) == 0;
  EXPECT_EQ(lost, 0u) << "of " << acknowledged.size() << " acknowledged writes";
  std::printf("acknowledged: %zu, failed while down: %d, stored: %zu\n", acknowledged.size(),
              failed.load(), stored.size());
}

TEST(RedisFaultTest, WhileRedisIsDownCallsFailAndTokensAreRefusedThenItReconnects) {
  auto redis = std::make_unique<OwnServer>("redis", 19735);
  const std::string url = "redis://127.0.0.1:19735/0?timeout_ms=500";
  auto cache = Cache::open(url);
  auto db = Database::open("sqlite::memory:");
  std::string master(32, '\0');
  for (int i = 0; i < 32; ++i) master[i] = static_cast<char>(i * 7 + 1);
  TokenService tokens(*db, *cache, master);
  User user;
  user.id = "0190c8a0-0000-7000-8000-0000000000aa";
  user.email = "alice@example.com";
  user.username = "alice";
  user.role = Role::kDeveloper;
  const auto pair = tokens.issue(user);
  EXPECT_EQ(tokens.verify_access(pair.access_token).subject, user.id);
  cache->set("k", "v");

  redis.reset();  // Redis goes away
  EXPECT_DEVCYCLE_ERROR(cache->get("k"), ErrorCode::kUnavailable, "127.0.0.1:19735");
  EXPECT_DEVCYCLE_ERROR(cache->take("bucket", 1, 1), ErrorCode::kUnavailable);
  // Authentication fails closed: without the revocation list no token passes.
  EXPECT_DEVCYCLE_ERROR(tokens.verify_access(pair.access_token), ErrorCode::kUnavailable);

  redis = std::make_unique<OwnServer>("redis", 19735);  // back, empty
  EXPECT_EQ(cache->get("k"), std::nullopt);
  EXPECT_TRUE(cache->take("bucket", 1, 1).allowed);
  EXPECT_EQ(cache->increment("n", 5), 5);
  EXPECT_EQ(tokens.verify_access(pair.access_token).subject, user.id);
}

}  // namespace
}  // namespace devcycle
