// kill -9 in the middle of group-committed writes: every write whose future
// had resolved must be there after reopening, and no write may be half there.
// Runs against the durable backends (a SQLite file now; PostgreSQL later).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "devcycle/store/database.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

constexpr int kWriters = 4;
constexpr std::int64_t kAcksBeforeKill = 1500;

Migration pairs_migration() {
  return {"crash", 1, "pairs",
          "CREATE TABLE pairs (id BIGINT NOT NULL, part BIGINT NOT NULL, "
          "PRIMARY KEY (id, part))",
          ""};
}

// The child: write pairs from several threads forever, reporting each id on
// `out` once its future has resolved (that is, after COMMIT).
[[noreturn]] void write_until_killed(const std::string& url, int out) {
  DatabaseOptions options;
  options.migrations = {pairs_migration()};
  auto db = Database::open(url, options);
  std::atomic<std::int64_t> next{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&] {
      for (;;) {
        const auto id = next.fetch_add(1);
        db->write([id](Txn& t) {
          t.execute("INSERT INTO pairs VALUES ($1, 1)", {id});
          t.execute("INSERT INTO pairs VALUES ($1, 2)", {id});
        });
        if (::write(out, &id, sizeof id) != sizeof id) _exit(3);
      }
    });
  }
  for (auto& t : threads) t.join();
  _exit(2);
}

class DatabaseCrashTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DatabaseCrashTest, AcknowledgedWritesSurviveKill9AndNoneIsHalfWritten) {
  testing::TempDir dir;
  const std::string url = "sqlite://" + dir.file("crash.db") + GetParam();
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    write_until_killed(url, fds[1]);
  }
  ::close(fds[1]);

  std::set<std::int64_t> acked;
  std::int64_t id = 0;
  bool killed = false;
  for (;;) {
    const auto n = ::read(fds[0], &id, sizeof id);
    if (n == 0) break;  // the child is gone and the pipe drained
    if (n < 0 && errno == EINTR) continue;
    ASSERT_EQ(n, static_cast<ssize_t>(sizeof id)) << std::strerror(errno);
    acked.insert(id);
    if (!killed && static_cast<std::int64_t>(acked.size()) >= kAcksBeforeKill) {
      ASSERT_EQ(::kill(pid, SIGKILL), 0);
      killed = true;
    }
  }
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the writer ended on its own with status " << status;

  DatabaseOptions options;
  options.migrations = {pairs_migration()};
  auto db = Database::open(url, options);
  db->read([&](Txn& t) {
    EXPECT_EQ(t.query("PRAGMA integrity_check")[0][0].as_text(), "ok");
    EXPECT_TRUE(t.query("SELECT id FROM pairs GROUP BY id HAVING COUNT(*) != 2").empty())
        << "a write was half committed";
    std::set<std::int64_t> stored;
    for (const auto& row : t.query("SELECT DISTINCT id FROM pairs")) stored.insert(row[0].as_int());
    std::vector<std::int64_t> lost;
    for (auto a : acked) {
      if (!stored.count(a)) lost.push_back(a);
    }
    EXPECT_TRUE(lost.empty()) << lost.size() << " acknowledged writes lost, first " << lost.front();
    EXPECT_GE(stored.size(), acked.size());
  });
}

INSTANTIATE_TEST_SUITE_P(SqliteFile, DatabaseCrashTest,
                         ::testing::Values("?synchronous=normal", "?synchronous=full"),
                         [](const auto& p) { return p.param.substr(p.param.find('=') + 1); });

}  // namespace
}  // namespace devcycle
