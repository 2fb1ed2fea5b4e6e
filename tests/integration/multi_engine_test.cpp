// Several engines, one PostgreSQL database (ctest label `integration`): 3
// engine processes share 5,000 runs (a fan-out of two and a join each, so
// that sibling completions race in different engines); one is SIGKILLed
// mid-way. A second, smaller round gives the agent a capacity below the
// engines' 12 workers and checks that it held across the engines. Every run
// must finish, every task completion must be recorded once, and no two
// attempts of one task may ever have run at the same time — an attempt of
// the killed engine counts as running until the moment of the kill.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "devcycle/common/clock.h"
#include "devcycle/store/database.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

constexpr int kEngines = 3;
constexpr int kExecutedPerRun = 4;  // a, b[0], b[1], c (the group "b" runs nothing itself)

pid_t spawn(const std::vector<std::string>& args) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv{const_cast<char*>(DEVCYCLE_MULTI_ENGINE_DRIVER)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(DEVCYCLE_MULTI_ENGINE_DRIVER, argv.data());
    _exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

struct Execution {
  int attempt = 0;
  int pid = 0;
  Micros start = 0;
  std::optional<Micros> end;
};

// Three engines on `runs` runs of an agent of `capacity`; the first engine
// is killed once a third of the runs finished. Checks what the file's
// comment says, and that the agent never ran more than `capacity` at once.
void share_runs_and_kill_one(const int kRuns, const int kCapacity) {
  const char* base = std::getenv("DEVCYCLE_TEST_POSTGRES_URL");
  ASSERT_NE(base, nullptr) << "DEVCYCLE_TEST_POSTGRES_URL is not set";
  testing::TempDir dir;
  static int round = 0;
  const std::string url = std::string(base) + "?schema=multi_engine_" + std::to_string(::getpid()) +
                          "_" + std::to_string(++round);
  const auto log = dir.file("leases.log");

  ASSERT_EQ(wait_exit(spawn({"setup", url, std::to_string(kRuns), std::to_string(kCapacity)})), 0);

  std::vector<pid_t> engines;
  for (int i = 0; i < kEngines; ++i) engines.push_back(spawn({"work", url, log}));
  auto db = Database::open(url);
  auto finished = [&] {
    return db->read([](Txn& t) {
      return t.query("SELECT COUNT(*) FROM workflow_runs WHERE status = 'succeeded'")[0][0]
          .as_int();
    });
  };
  // Kill the first engine once about a third of the runs are done. The
  // deadline only catches engines that stopped: on a shared 2-core machine,
  // beside the other ctest jobs, a third of 5,000 runs took over 5 minutes.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(15);
  while (finished() < kRuns / 3) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the engines made no progress";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const Micros killed_at = SystemClock::instance()->now();
  ASSERT_EQ(::kill(engines[0], SIGKILL), 0);
  EXPECT_EQ(wait_exit(engines[0]), 128 + SIGKILL);
  for (int i = 1; i < kEngines; ++i) EXPECT_EQ(wait_exit(engines[i]), 0) << "engine " << i;

  // Every run finished; every task has exactly one recorded success.
  std::map<std::string, std::int64_t> lease_owners;  // engine -> attempts
  db->read([&](Txn& t) {
    EXPECT_EQ(t.query("SELECT COUNT(*) FROM workflow_runs")[0][0].as_int(), kRuns);
    EXPECT_EQ(
        t.query("SELECT COUNT(*) FROM workflow_runs WHERE status <> 'succeeded'")[0][0].as_int(),
        0);
    EXPECT_EQ(t.query("SELECT COUNT(*) FROM tasks WHERE task_key <> 'b'")[0][0].as_int(),
              kExecutedPerRun * kRuns);
    EXPECT_EQ(t.query("SELECT COUNT(*) FROM tasks t WHERE t.task_key <> 'b' AND (SELECT COUNT(*)"
                      " FROM task_attempts a WHERE a.task_id = t.id AND a.status = 'succeeded')"
                      " <> 1")[0][0]
                  .as_int(),
              0);
    for (const auto& r : t.query("SELECT lease_owner, COUNT(*) FROM task_attempts GROUP BY 1"))
      lease_owners[r[0].as_text()] = r[1].as_int();
  });
  EXPECT_EQ(lease_owners.size(), static_cast<std::size_t>(kEngines)) << "every engine took work";

  // No two attempts of a task overlapped in time.
  std::map<std::string, std::map<int, Execution>> runs_of;  // task -> attempt -> execution
  std::ifstream in(log);
  char kind = 0;
  std::string task;
  int attempt = 0, pid = 0;
  Micros at = 0;
  int lines = 0;
  while (in >> kind >> task >> attempt >> pid >> at) {
    ++lines;
    auto& e = runs_of[task][attempt];
    if (kind == 'S') {
      // One attempt is one claim: a second start of it would be a second holder.
      EXPECT_EQ(e.pid, 0) << task << " attempt " << attempt << " started twice";
      e.attempt = attempt;
      e.pid = pid;
      e.start = at;
    } else {
      EXPECT_EQ(e.pid, pid) << task << " attempt " << attempt << " ended elsewhere";
      e.end = at;
    }
  }
  EXPECT_EQ(runs_of.size(), static_cast<std::size_t>(kExecutedPerRun * kRuns));
  int overlaps = 0;
  int retried = 0;
  for (const auto& [id, attempts] : runs_of) {
    std::vector<Execution> v;
    for (const auto& [n, e] : attempts) v.push_back(e);
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.start < b.start; });
    if (v.size() > 1) ++retried;
    for (std::size_t i = 1; i < v.size(); ++i) {
      const auto& prev = v[i - 1];
      ASSERT_TRUE(prev.end || prev.pid == engines[0])
          << id << " attempt " << prev.attempt << " never ended and its engine was not killed";
      const Micros prev_end = prev.end ? *prev.end : killed_at;
      if (v[i].start < prev_end) {
        ++overlaps;
        ADD_FAILURE() << id << ": attempt " << v[i].attempt << " started at " << v[i].start
                      << " while attempt " << prev.attempt << " held it until " << prev_end;
      }
    }
  }
  EXPECT_EQ(overlaps, 0);

  // The agent's capacity held across the engines: never more attempts
  // running at once than it allows (one of the killed engine counts until
  // the kill).
  std::vector<std::pair<Micros, int>> edges;
  for (const auto& [id, attempts] : runs_of) {
    for (const auto& [n, e] : attempts) {
      edges.emplace_back(e.start, +1);
      edges.emplace_back(e.end ? *e.end : killed_at, -1);
    }
  }
  std::sort(edges.begin(), edges.end());  // at equal times an end (-1) comes first
  int running = 0, most = 0;
  for (const auto& [at_us, d] : edges) most = std::max(most, running += d);
  EXPECT_LE(most, kCapacity) << "attempts of one agent running at once";
  std::printf(
      "runs: %d, executions: %d, tasks retried after the kill: %d, most at once: %d; "
      "attempts by engine:",
      kRuns, lines / 2, retried, most);
  for (const auto& [engine, n] : lease_owners) std::printf(" %lld", static_cast<long long>(n));
  std::printf("\n");
}

TEST(MultiEngineTest, ThreeEnginesShareFiveThousandRunsAndSurviveAKill) {
  share_runs_and_kill_one(5000, 1000);  // capacity above the 12 workers: leases are the point
}

TEST(MultiEngineTest, AnAgentsCapacityHoldsAcrossEngines) {
  share_runs_and_kill_one(300, 4);  // fewer than the 12 workers: capacity binds
}

}  // namespace
}  // namespace devcycle
