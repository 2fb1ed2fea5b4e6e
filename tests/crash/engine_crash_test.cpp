// kill -9 the engine at random moments, at least 20 times, restarting it
// each time (ctest label `crash`). Before each restart the test records
// which attempts were running. At the end: every run finished, every task
// completion was recorded exactly once, and every repeated side effect
// belongs to an attempt that was running when the engine was killed.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "devcycle/store/database.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

constexpr int kRuns = 200;
constexpr int kKills = 20;

pid_t spawn(const std::string& db, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string runs = std::to_string(kRuns);
    ::execl(DEVCYCLE_CRASH_DRIVER, DEVCYCLE_CRASH_DRIVER, db.c_str(), log.c_str(), runs.c_str(),
            static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

TEST(EngineCrashTest, RunsSurviveRepeatedKill9) {
  testing::TempDir dir;
  const auto db_path = dir.file("crash.db");
  const auto log_path = dir.file("side-effects.log");
  std::mt19937 rng(20261126);
  std::set<std::pair<std::string, int>> running_at_kill;  // (task id, attempt)
  int kills = 0;
  int exited = 0;
  for (int round = 0; round < 200; ++round) {
    const pid_t pid = spawn(db_path, log_path);
    ASSERT_GT(pid, 0);
    const bool kill_now = kills < kKills;
    if (kill_now) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 100));
      ::kill(pid, SIGKILL);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
      ++kills;
      // Snapshot what was running when it died.
      auto db = Database::open("sqlite://" + db_path);
      db->read([&](Txn& t) {
        // Killed before it made its tables (a loaded machine): nothing ran.
        if (t.query("SELECT 1 FROM sqlite_master WHERE name = 'tasks'").empty()) return;
        for (const auto& r : t.query("SELECT id, attempt FROM tasks WHERE status = 'running'")) {
          running_at_kill.emplace(r[0].as_text(), static_cast<int>(r[1].as_int()));
        }
      });
      continue;
    }
    ASSERT_TRUE(WIFEXITED(status)) << "driver ended with status " << status;
    ASSERT_EQ(WEXITSTATUS(status), 0) << "driver failed";
    if (kills >= kKills) {
      ++exited;
      break;
    }
  }
  ASSERT_GE(kills, kKills);
  ASSERT_EQ(exited, 1) << "the driver never finished its runs";

  auto db = Database::open("sqlite://" + db_path);
  std::map<std::string, std::string> key_of;  // task id -> "run key"
  std::map<std::string, int> winning_attempt;
  db->read([&](Txn& t) {
    EXPECT_EQ(t.query("SELECT COUNT(*) FROM workflow_runs")[0][0].as_int(), kRuns);
    EXPECT_EQ(
        t.query("SELECT COUNT(*) FROM workflow_runs WHERE status <> 'succeeded'")[0][0].as_int(),
        0);
    EXPECT_EQ(t.query("SELECT COUNT(*) FROM tasks WHERE status <> 'succeeded'")[0][0].as_int(), 0);
    // Exactly one recorded completion per executed task (the fan-out group runs nothing itself).
    for (const auto& r : t.query("SELECT t.id, t.run_id, t.task_key, t.attempt, "
                                 "(SELECT COUNT(*) FROM task_attempts a WHERE a.task_id = t.id AND "
                                 "a.status = 'succeeded') "
                                 "FROM tasks t WHERE t.task_key <> 'b'")) {
      EXPECT_EQ(r[4].as_int(), 1) << r[2].as_text();
      key_of[r[0].as_text()] = r[1].as_text() + " " + r[2].as_text();
      winning_attempt[r[1].as_text() + " " + r[2].as_text()] = static_cast<int>(r[3].as_int());
    }
  });
  std::map<std::string, std::string> id_of;
  for (const auto& [id, key] : key_of) id_of[key] = id;

  std::ifstream in(log_path);
  std::string run, task;
  int attempt = 0;
  int lines = 0;
  int repeats = 0;
  while (in >> run >> task >> attempt) {
    ++lines;
    const auto key = run + " " + task;
    ASSERT_TRUE(id_of.count(key)) << key;
    if (attempt == winning_attempt[key]) continue;
    ++repeats;
    EXPECT_TRUE(running_at_kill.count({id_of[key], attempt}))
        << "side effect of " << key << " attempt " << attempt
        << " was not from an attempt a kill interrupted";
  }
  EXPECT_GE(lines, kRuns * 5);
  std::printf("kills: %d, side effects: %d, repeated: %d, attempts running at a kill: %zu\n", kills,
              lines, repeats, running_at_kill.size());
}

}  // namespace
}  // namespace devcycle
