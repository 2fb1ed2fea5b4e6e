// kill -9 a message consumer at random moments, restarting it each time
// (ctest label `crash`). At the end every published message has been
// handled at least once (nothing acknowledged or pending is lost), nothing
// is left pending, messages of one key were first handled in order, and a
// message was handled more than once only if the consumer was killed while
// it held it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "devcycle/store/database.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

constexpr int kPerRound = 300;
constexpr int kKills = 15;

int run(const std::vector<std::string>& args, bool kill_soon, std::mt19937& rng, bool* killed) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(DEVCYCLE_BUS_CRASH_DRIVER));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(DEVCYCLE_BUS_CRASH_DRIVER, argv.data());
    _exit(127);
  }
  if (kill_soon) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30 + rng() % 150));
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  *killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(BusCrashTest, ConsumersKilledMidStreamLoseNothing) {
  testing::TempDir dir;
  const auto db = dir.file("bus.db");
  const auto log = dir.file("handled.log");
  std::mt19937 rng(1126);
  bool killed = false;
  // Each round publishes more and starts a consumer that is killed soon; a
  // consumer that finished before its kill simply does not count.
  int published = 0;
  int kills = 0;
  for (int round = 0; round < 200 && kills < kKills; ++round) {
    ASSERT_EQ(run({db, "publish", std::to_string(published), std::to_string(kPerRound)}, false, rng,
                  &killed),
              0);
    published += kPerRound;
    const int code = run({db, "consume", log}, true, rng, &killed);
    if (killed) {
      ++kills;
    } else {
      ASSERT_EQ(code, 0) << "consumer failed";
    }
  }
  ASSERT_GE(kills, kKills);
  ASSERT_EQ(run({db, "consume", log}, false, rng, &killed), 0) << "the last consumer failed";
  const int messages = published;

  std::map<int, int> handled;
  std::map<int, int> last_first_seen;  // key -> latest message seen for the first time
  std::ifstream in(log);
  for (int n; in >> n;) {
    if (handled[n]++ == 0) {
      // Per-key order holds across kills: a message of a key is first handled
      // only after every earlier message of that key.
      const int key = n % 7;
      if (last_first_seen.count(key)) {
        EXPECT_GT(n, last_first_seen[key]) << "key-" << key << " out of order";
      }
      last_first_seen[key] = n;
    }
  }
  int repeated = 0;
  for (int i = 0; i < messages; ++i) {
    ASSERT_TRUE(handled.count(i)) << "message " << i << " was lost";
    repeated += handled[i] > 1;
  }
  EXPECT_EQ(handled.size(), static_cast<std::size_t>(messages));
  // A kill can only repeat what the consumer held then: at most a fetch
  // (20 messages) per kill.
  EXPECT_LE(repeated, kKills * 20);
  auto d = Database::open("sqlite://" + db);
  d->read([&](Txn& t) {
    EXPECT_EQ(t.query("SELECT COUNT(*) FROM bus_pending")[0][0].as_int(), 0);
    EXPECT_EQ(t.query("SELECT COUNT(*) FROM bus_dead")[0][0].as_int(), 0);
    EXPECT_EQ(t.query("SELECT position FROM bus_groups WHERE grp = 'g'")[0][0].as_int(), messages);
  });
  std::printf("kills: %d, messages handled more than once: %d\n", kills, repeated);
}

}  // namespace
}  // namespace devcycle
