// kill -9 with waiting tasks and process agents (ctest label `crash`):
// timers, signal waits and child runs continue after restarts, and a process agent dies
// with the engine that ran it (PR_SET_PDEATHSIG).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>

#include "devcycle/store/database.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

pid_t spawn(const std::vector<std::string>& args) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(DEVCYCLE_WAITS_CRASH_DRIVER));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(DEVCYCLE_WAITS_CRASH_DRIVER, argv.data());
    _exit(127);
  }
  return pid;
}

// Whether a process running "sleep 1234.7" exists (the pattern does not
// match pgrep's own shell).
bool sleeper_alive() { return std::system("pgrep -f 'sleep 1234[.]7' > /dev/null") == 0; }

TEST(WaitsCrashTest, TimersSignalWaitsAndChildRunsSurviveKill9) {
  testing::TempDir dir;
  const auto db = dir.file("waits.db");
  std::mt19937 rng(1126);
  int kills = 0;
  for (int round = 0; round < 50; ++round) {
    const pid_t pid = spawn({db, "waits"});
    ASSERT_GT(pid, 0);
    if (kills < 8) {
      std::this_thread::sleep_for(std::chrono::milliseconds(30 + rng() % 150));
      ::kill(pid, SIGKILL);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) {
      ++kills;
      continue;
    }
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0) << "the run did not succeed";
    break;
  }
  // Killed while the timer ran, at least; the driver may finish before the eighth kill.
  ASSERT_GE(kills, 4);
  auto d = Database::open("sqlite://" + db);
  d->read([](Txn& t) {
    // The run and its one child.
    EXPECT_EQ(
        t.query("SELECT COUNT(*) FROM workflow_runs WHERE status = 'succeeded'")[0][0].as_int(), 2);
    EXPECT_EQ(t.query("SELECT COUNT(*) FROM workflow_runs")[0][0].as_int(), 2);
    EXPECT_EQ(t.query("SELECT COUNT(*) FROM workflow_runs r JOIN tasks t ON t.child_run_id = r.id "
                      "WHERE r.parent_task_id = t.id AND t.status = 'succeeded'")[0][0]
                  .as_int(),
              1);
    for (const auto& r : t.query("SELECT task_key, status FROM tasks")) {
      EXPECT_EQ(r[1].as_text(), "succeeded") << r[0].as_text();
    }
    // The signal was taken once, however many times a restarted driver sent it.
    EXPECT_EQ(
        t.query("SELECT COUNT(*) FROM tasks WHERE task_key = 'go' AND status = 'succeeded'")[0][0]
            .as_int(),
        1);
  });
}

TEST(WaitsCrashTest, AProcessAgentDiesWithItsEngine) {
  ASSERT_FALSE(sleeper_alive()) << "a 'sleep 1234.7' is already running on this machine";
  testing::TempDir dir;
  const auto sleep = std::filesystem::canonical("/bin/sleep").string();
  const pid_t pid = spawn({dir.file("process.db"), "process", sleep});
  ASSERT_GT(pid, 0);
  bool started = false;
  for (int i = 0; i < 200 && !started; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    started = sleeper_alive();
  }
  ASSERT_TRUE(started) << "the process agent never started";
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = !sleeper_alive();
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone) << "the process agent outlived its engine";
  if (!gone) std::system("pkill -9 -f 'sleep 1234[.]7'");
}

}  // namespace
}  // namespace devcycle
