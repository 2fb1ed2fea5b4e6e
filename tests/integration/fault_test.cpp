// Faults of the scale-out backends (ctest label `integration`): a PostgreSQL
// backend terminated mid-transaction, a connection that breaks during COMMIT
// (its answer lost, or the COMMIT itself), a PostgreSQL restart, a Redis
// restart.
// The restarts use servers of their own (scripts/postgres.sh and
// scripts/redis.sh on ports 19734 and 19735), so that the suites sharing the
// integration fixtures never see them.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string_view>
#include <thread>
#include <vector>

#include "devcycle/auth/auth.h"
#include "devcycle/auth/tokens.h"
#include "devcycle/cache/cache.h"
#include "devcycle/common/error.h"
#include "devcycle/store/database.h"
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

// A TCP relay between a database client and PostgreSQL that breaks the
// connection at the next COMMIT a client sends, once armed: after the
// server answered it (the transaction committed; the client never hears),
// or before the server gets it (nothing committed). Either way the client
// sees the connection break during COMMIT, and the outcome is unknown to it.
class CommitCutter {
 public:
  enum class Cut { kNone, kAnswer, kCommit };

  explicit CommitCutter(int server_port) : server_port_(server_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 16) != 0)
      throw std::runtime_error("CommitCutter: cannot listen");
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    accepter_ = std::thread([this] { accept_loop(); });
  }

  ~CommitCutter() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    accepter_.join();
    ::close(listen_fd_);
    std::lock_guard lock(mu_);
    for (auto& c : connections_) c->close();
    for (auto& c : connections_) {
      for (auto& th : c->threads) th.join();
    }
  }

  int port() const { return port_; }
  void arm(Cut cut) { armed_ = cut; }
  bool fired() const { return fired_; }

 private:
  struct Connection {
    int client = -1;
    int server = -1;
    std::atomic<bool> mute{false};  // answers of the server are dropped
    std::atomic<bool> closed{false};
    std::vector<std::thread> threads;
    void close() {
      if (closed.exchange(true)) return;
      ::shutdown(client, SHUT_RDWR);
      ::shutdown(server, SHUT_RDWR);
    }
    ~Connection() {
      ::close(client);
      ::close(server);
    }
  };

  void accept_loop() {
    for (;;) {
      const int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) return;
      auto c = std::make_unique<Connection>();
      c->client = client;
      c->server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<std::uint16_t>(server_port_));
      if (::connect(c->server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        c->close();
        continue;
      }
      auto* raw = c.get();
      raw->threads.emplace_back([this, raw] { client_to_server(*raw); });
      raw->threads.emplace_back([raw] { server_to_client(*raw); });
      std::lock_guard lock(mu_);
      connections_.push_back(std::move(c));
    }
  }

  static bool send_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
      const auto sent = ::send(fd, p, n, MSG_NOSIGNAL);
      if (sent <= 0) return false;
      p += sent;
      n -= static_cast<std::size_t>(sent);
    }
    return true;
  }

  // Copies the client's messages one by one (the startup message has no
  // type byte; every later one is a type, a length and the rest), looking
  // for a simple-query COMMIT.
  void client_to_server(Connection& c) {
    std::string buffer;
    bool started = false;
    char chunk[8192];
    for (;;) {
      const auto got = ::recv(c.client, chunk, sizeof chunk, 0);
      if (got <= 0) break;
      buffer.append(chunk, static_cast<std::size_t>(got));
      for (;;) {
        const std::size_t head = started ? 5 : 4;
        if (buffer.size() < head) break;
        std::uint32_t length = 0;
        std::memcpy(&length, buffer.data() + head - 4, 4);
        const std::size_t total = head - 4 + ntohl(length);
        if (buffer.size() < total) break;
        const bool commit = started && buffer[0] == 'Q' &&
                            std::string_view(buffer.data() + 5, total - 5).starts_with("COMMIT");
        started = true;
        if (commit && armed_ != Cut::kNone) {
          const Cut cut = armed_.exchange(Cut::kNone);
          fired_ = true;
          if (cut == Cut::kCommit) {
            c.close();  // the server never sees it
            return;
          }
          c.mute = true;  // its answer is dropped, and then the connection
        }
        if (!send_all(c.server, buffer.data(), total)) {
          c.close();
          return;
        }
        buffer.erase(0, total);
      }
    }
    c.close();
  }

  static void server_to_client(Connection& c) {
    char chunk[8192];
    for (;;) {
      const auto got = ::recv(c.server, chunk, sizeof chunk, 0);
      if (got <= 0) break;
      if (c.mute) break;  // the answer to the COMMIT: lost
      if (!send_all(c.client, chunk, static_cast<std::size_t>(got))) break;
    }
    c.close();
  }

  int server_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<Cut> armed_{Cut::kNone};
  std::atomic<bool> fired_{false};
  std::thread accepter_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> connections_;
};

// The port of a postgresql://user@host:PORT/db URL.
int port_of(const std::string& url) {
  const auto colon = url.rfind(':');
  return std::stoi(url.substr(colon + 1, url.find('/', colon) - colon - 1));
}

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

// The connection breaks during COMMIT: the database object looks up the
// transaction's marker row once the old session is gone, and reports what
// happened — never retrying blindly, never reporting a committed write as
// failed or a lost one as done.
TEST(PostgresFaultTest, ACommitWhoseAnswerOrItselfIsLostIsSettledByItsMarker) {
  const char* base = std::getenv("DEVCYCLE_TEST_POSTGRES_URL");
  ASSERT_NE(base, nullptr) << "DEVCYCLE_TEST_POSTGRES_URL is not set";
  CommitCutter cutter(port_of(base));
  const std::string schema = "commit_" + std::to_string(::getpid());
  DatabaseOptions options;
  options.migrations = {items()};
  auto db = Database::open("postgresql://postgres@127.0.0.1:" + std::to_string(cutter.port()) +
                               "/devcycle?sslmode=disable&gssencmode=disable&schema=" + schema,
                           options);
  auto direct = Database::open(std::string(base) + "?schema=" + schema);
  db->write([](Txn& t) { t.execute("INSERT INTO items VALUES ('before', 1)"); });

  // The server committed; its answer never came: the write succeeded.
  cutter.arm(CommitCutter::Cut::kAnswer);
  db->write([](Txn& t) { t.execute("INSERT INTO items VALUES ('answer-lost', 2)"); });
  EXPECT_TRUE(cutter.fired());
  EXPECT_EQ(ids(*direct), (std::set<std::string>{"answer-lost", "before"}));

  // The COMMIT never reached the server: the write failed, and nothing of it is there.
  cutter.arm(CommitCutter::Cut::kCommit);
  EXPECT_DEVCYCLE_ERROR(
      db->write([](Txn& t) { t.execute("INSERT INTO items VALUES ('commit-lost', 3)"); }),
      ErrorCode::kUnavailable, "nothing of this closure was written");
  EXPECT_EQ(ids(*direct), (std::set<std::string>{"answer-lost", "before"}));

  // And the next write goes through on a new connection.
  db->write([](Txn& t) { t.execute("INSERT INTO items VALUES ('after', 4)"); });
  EXPECT_EQ(ids(*direct), (std::set<std::string>{"after", "answer-lost", "before"}));
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
