// The Database conformance suite: every backend must pass all of it.
// Instantiated over sqlite::memory: and a SQLite file; PostgreSQL joins with
// the scale-out backends.
#include "devcycle/store/database.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "devcycle/common/uuid.h"
#include "devcycle/observability/metrics.h"
#include "support/backends.h"
#include "support/error_matchers.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

class DatabaseTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  std::string url() const { return GetParam().url(dir_); }
  bool postgres() const { return GetParam().name == "postgresql"; }

  std::unique_ptr<Database> open(DatabaseOptions options = {}) {
    options.migrations.insert(options.migrations.begin(), ItemsMigration());
    return Database::open(url(), options);
  }

  static Migration ItemsMigration() {
    return {"test", 1, "create items",
            "CREATE TABLE items (id TEXT PRIMARY KEY, n BIGINT NOT NULL, note TEXT);"
            "CREATE INDEX items_n ON items (n)",
            ""};
  }

  static std::int64_t count(Database& db, std::string_view where = "1=1") {
    return db.read([&](Txn& t) {
      return t.query("SELECT COUNT(*) FROM items WHERE " + std::string(where))[0][0].as_int();
    });
  }

  static void insert(Txn& t, const std::string& id, std::int64_t n) {
    t.execute("INSERT INTO items (id, n) VALUES ($1, $2)", {id, n});
  }

  testing::TempDir dir_;
};

TEST_P(DatabaseTest, OpenRecordsAppliedMigrations) {
  auto db = open();
  auto rows = db->read([](Txn& t) {
    return t.query("SELECT module, version, name, checksum, applied_at FROM schema_migrations");
  });
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["module"].as_text(), "test");
  EXPECT_EQ(rows[0]["version"].as_int(), 1);
  EXPECT_EQ(rows[0]["name"].as_text(), "create items");
  EXPECT_EQ(rows[0]["checksum"].as_text().size(), 16u);
  EXPECT_GT(rows[0]["applied_at"].as_int(), 1'600'000'000'000'000);
}

// Issue #20: the database file and its WAL were created 0644 less the umask.
TEST_P(DatabaseTest, ASqliteFileAndItsWalArePrivateToTheServersUser) {
  if (GetParam().name != "sqlite_file") GTEST_SKIP() << "only a SQLite file has files";
  auto db = open();
  db->write([](Txn& t) { insert(t, "a", 1); });
  namespace fs = std::filesystem;
  const auto path = url().substr(std::string("sqlite://").size());
  for (const auto& f : {path, path + "-wal"}) {
    ASSERT_TRUE(fs::exists(f)) << f;
    EXPECT_EQ(fs::status(f).permissions() & (fs::perms::group_all | fs::perms::others_all),
              fs::perms::none)
        << f;
  }
}

TEST_P(DatabaseTest, ValuesRoundTripEveryPortableType) {
  auto db = open();
  db->write([](Txn& t) {
    t.execute_script("CREATE TABLE kinds (i BIGINT, d DOUBLE PRECISION, s TEXT, b BLOB, z TEXT)");
    t.execute("INSERT INTO kinds VALUES ($1, $2, $3, $4, $5)",
              {std::int64_t{-9'007'199'254'740'993}, 2.5, std::string("naïve \"json\"\n"),
               Blob{{std::byte{0}, std::byte{255}, std::byte{7}}}, nullptr});
  });
  auto row = db->read([](Txn& t) { return t.query("SELECT i, d, s, b, z FROM kinds"); })[0];
  EXPECT_EQ(row["i"].as_int(), -9'007'199'254'740'993);
  EXPECT_DOUBLE_EQ(row["d"].as_double(), 2.5);
  EXPECT_EQ(row["s"].as_text(), "naïve \"json\"\n");
  EXPECT_EQ(row["b"].as_blob(), (Blob{{std::byte{0}, std::byte{255}, std::byte{7}}}));
  EXPECT_EQ(row["b"].as_blob().str(), std::string("\0\xff\x07", 3));
  EXPECT_EQ(Blob::of(std::string("\0\xff\x07", 3)), row["b"].as_blob());
  EXPECT_TRUE(row["z"].is_null());
  EXPECT_DEVCYCLE_ERROR(row["nope"], ErrorCode::kInternal, "nope");
  EXPECT_DEVCYCLE_ERROR(row["s"].as_int(), ErrorCode::kInternal, "text");
}

TEST_P(DatabaseTest, ExecuteReportsChangedRowsAndParametersMayRepeat) {
  auto db = open();
  const auto changed = db->write([](Txn& t) {
    insert(t, "a", 1);
    insert(t, "b", 2);
    insert(t, "c", 3);
    return t.execute("UPDATE items SET note = $1 WHERE n >= $2 AND note IS NULL OR n = $2",
                     {"big", 2});
  });
  EXPECT_EQ(changed, 2);
  EXPECT_EQ(count(*db, "note = 'big'"), 2);
}

TEST_P(DatabaseTest, FutureResolvesOnlyAfterCommit) {
  auto db = open();
  auto fut = db->submit([](Txn& t) {
    insert(t, new_uuid_v7(), 1);
    return 42;
  });
  EXPECT_EQ(fut.get(), 42);
  EXPECT_EQ(count(*db), 1);  // visible to a separate reader right after
}

TEST_P(DatabaseTest, FailingClosureLeavesNoTraceBesideSucceedingOnes) {
  auto db = open();
  std::vector<std::future<void>> futures;
  for (int i = 0; i < 300; ++i) {
    futures.push_back(db->submit([i](Txn& t) {
      insert(t, "row-" + std::to_string(i), i);
      t.execute("UPDATE items SET note = 'touched' WHERE id = $1", {"row-" + std::to_string(i)});
      if (i % 3 == 0) throw std::runtime_error("closure " + std::to_string(i) + " gives up");
    }));
  }
  int failed = 0;
  for (int i = 0; i < 300; ++i) {
    if (i % 3 == 0) {
      EXPECT_THROW(futures[i].get(), std::runtime_error);
      ++failed;
    } else {
      EXPECT_NO_THROW(futures[i].get());
    }
  }
  EXPECT_EQ(failed, 100);
  EXPECT_EQ(count(*db), 200);
  EXPECT_EQ(count(*db, "n % 3 = 0"), 0);
  EXPECT_EQ(count(*db, "note = 'touched'"), 200);
}

// A closure alone in its transaction runs without a savepoint: its failure
// must still leave nothing behind, and the next write must work.
TEST_P(DatabaseTest, ALoneFailingClosureLeavesNoTrace) {
  auto db = open();
  for (int i = 0; i < 20; ++i) {
    EXPECT_THROW(db->write([i](Txn& t) {
      insert(t, "lone-" + std::to_string(i), i);
      throw std::runtime_error("gives up");
    }),
                 std::runtime_error);
    EXPECT_EQ(count(*db), i);
    db->write([i](Txn& t) { insert(t, "kept-" + std::to_string(i), i); });
    EXPECT_EQ(count(*db), i + 1);
  }
  EXPECT_EQ(count(*db, "id LIKE 'lone-%'"), 0);
}

TEST_P(DatabaseTest, UniqueViolationIsAlreadyExistsAndRollsBackOnlyThatClosure) {
  auto db = open();
  db->write([](Txn& t) { insert(t, "dup", 1); });
  auto ok1 = db->submit([](Txn& t) { insert(t, "x", 2); });
  auto bad = db->submit([](Txn& t) {
    insert(t, "y", 3);
    insert(t, "dup", 4);
  });
  auto ok2 = db->submit([](Txn& t) { insert(t, "z", 5); });
  EXPECT_NO_THROW(ok1.get());
  EXPECT_DEVCYCLE_ERROR(bad.get(), ErrorCode::kAlreadyExists,
                        postgres() ? "unique constraint" : "UNIQUE");
  EXPECT_NO_THROW(ok2.get());
  EXPECT_EQ(count(*db), 3);
  EXPECT_EQ(count(*db, "id = 'y'"), 0);
}

TEST_P(DatabaseTest, NotNullViolationIsInvalidArgument) {
  auto db = open();
  EXPECT_DEVCYCLE_ERROR(db->write([](Txn& t) {
    t.execute("INSERT INTO items (id, n) VALUES ($1, $2)", {"a", nullptr});
  }),
                        ErrorCode::kInvalidArgument, postgres() ? "not-null" : "NOT NULL");
}

TEST_P(DatabaseTest, BadSqlAndParameterCountsAreInternalErrors) {
  auto db = open();
  EXPECT_DEVCYCLE_ERROR(db->write([](Txn& t) { t.execute("INSERT INTO nowhere VALUES (1)"); }),
                        ErrorCode::kInternal, "nowhere");
  EXPECT_DEVCYCLE_ERROR(db->write([](Txn& t) { t.execute("SELECT $1, $2", {1}); }),
                        ErrorCode::kInternal, "expects 2 parameters, got 1");
  EXPECT_DEVCYCLE_ERROR(db->write([](Txn& t) { t.execute("SELECT ?", {1}); }), ErrorCode::kInternal,
                        "$1, $2");
}

TEST_P(DatabaseTest, GroupCommitPutsQueuedClosuresIntoFewTransactions) {
  auto metrics = std::make_shared<MetricsRegistry>();
  DatabaseOptions options;
  options.metrics = metrics;
  options.max_batch = 64;
  auto db = open(options);
  auto& commits = metrics->counter("db_commits_total", "");
  // Hold the writer inside one closure while 200 more are queued behind it.
  std::promise<void> release;
  std::promise<void> holding;
  auto gate = db->submit([&](Txn&) {
    holding.set_value();
    release.get_future().wait();
  });
  holding.get_future().wait();
  const double before = commits.value();
  std::vector<std::future<void>> futures;
  for (int i = 0; i < 200; ++i) {
    futures.push_back(db->submit([i](Txn& t) { insert(t, "k" + std::to_string(i), i); }));
  }
  release.set_value();
  gate.get();
  for (auto& f : futures) f.get();
  // The gate's own commit plus ceil(200 / 64) = 4 batches.
  EXPECT_EQ(commits.value() - before, 5);
  EXPECT_EQ(count(*db), 200);
  auto& batches = metrics->histogram("db_batch_size", "", Histogram::exponential_buckets(1, 2, 10));
  EXPECT_GE(batches.sum(), 200);
}

TEST_P(DatabaseTest, AnSqlErrorInOneClosureOfABatchSparesTheOthers) {
  auto db = open();
  db->write([](Txn& t) { insert(t, "dup", 1); });
  // Hold the writer so that the three closures below share one transaction.
  std::promise<void> release;
  std::promise<void> holding;
  auto gate = db->submit([&](Txn&) {
    holding.set_value();
    release.get_future().wait();
  });
  holding.get_future().wait();
  auto before = db->submit([](Txn& t) { insert(t, "before", 2); });
  auto bad = db->submit([](Txn& t) {
    insert(t, "half", 3);
    insert(t, "dup", 4);  // a unique violation inside the database
  });
  auto swallowed = db->submit([](Txn& t) {
    // A closure may catch a statement's error and go on with others.
    try {
      insert(t, "dup", 5);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists);
    }
    insert(t, "after-catch", 6);
  });
  auto after = db->submit([](Txn& t) { insert(t, "after", 7); });
  release.set_value();
  gate.get();
  EXPECT_NO_THROW(before.get());
  EXPECT_DEVCYCLE_ERROR(bad.get(), ErrorCode::kAlreadyExists);
  EXPECT_NO_THROW(after.get());
  swallowed.wait();
  EXPECT_EQ(count(*db, "id IN ('before', 'after')"), 2);
  EXPECT_EQ(count(*db, "id = 'half'"), 0);
  if (!postgres()) {
    EXPECT_NO_THROW(swallowed.get());
    EXPECT_EQ(count(*db, "id = 'after-catch'"), 1);
  } else {
    // PostgreSQL aborts a transaction at its first error: a closure cannot
    // go on after one (its savepoint is rolled back, and it fails).
    EXPECT_THROW(swallowed.get(), Error);
    EXPECT_EQ(count(*db, "id = 'after-catch'"), 0);
  }
}

TEST_P(DatabaseTest, WithoutGroupCommitEachClosureIsItsOwnTransaction) {
  auto metrics = std::make_shared<MetricsRegistry>();
  DatabaseOptions options;
  options.metrics = metrics;
  options.group_commit = false;
  auto db = open(options);
  auto& commits = metrics->counter("db_commits_total", "");
  const double before = commits.value();
  std::vector<std::future<void>> futures;
  for (int i = 0; i < 50; ++i) {
    futures.push_back(db->submit([i](Txn& t) { insert(t, "k" + std::to_string(i), i); }));
  }
  for (auto& f : futures) f.get();
  EXPECT_EQ(commits.value() - before, 50);
}

TEST_P(DatabaseTest, ConcurrentWritersAndReadersLoseNothing) {
  auto db = open();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 150;
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    std::int64_t last = 0;
    while (!done) {
      const auto n = count(*db);
      EXPECT_GE(n, last);  // committed rows never disappear
      last = n;
      ++reads;
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kThreads; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kPerThread; ++i) {
        db->write([&](Txn& t) { insert(t, new_uuid_v7(), w * 1000 + i); });
      }
    });
  }
  for (auto& t : writers) t.join();
  done = true;
  reader.join();
  EXPECT_EQ(count(*db), kThreads * kPerThread);
  EXPECT_GT(reads.load(), 0);
}

TEST_P(DatabaseTest, ReadIsReadOnlyAndRethrows) {
  auto db = open();
  EXPECT_THROW(db->read([](Txn& t) { insert(t, "a", 1); }), Error);
  EXPECT_EQ(count(*db), 0);
  EXPECT_THROW(db->read([](Txn&) { throw std::logic_error("boom"); }), std::logic_error);
  db->write([](Txn& t) { insert(t, "b", 2); });  // the writer is still writable
  EXPECT_EQ(count(*db), 1);
}

TEST_P(DatabaseTest, CloseDrainsQueuedWritesThenRefusesNewOnes) {
  auto db = open();
  std::vector<std::future<void>> futures;
  for (int i = 0; i < 100; ++i) {
    futures.push_back(db->submit([i](Txn& t) { insert(t, "k" + std::to_string(i), i); }));
  }
  db->close();
  for (auto& f : futures) EXPECT_NO_THROW(f.get());
  EXPECT_DEVCYCLE_ERROR(db->write([](Txn& t) { insert(t, "late", 1); }), ErrorCode::kUnavailable,
                        "closed");
  EXPECT_DEVCYCLE_ERROR(db->read([](Txn& t) { t.query("SELECT 1"); }), ErrorCode::kUnavailable,
                        "closed");
  db->close();  // idempotent
}

TEST_P(DatabaseTest, MigrationsApplyOnceAndInOrder) {
  DatabaseOptions options;
  options.migrations = {
      {"zoo", 1, "animals", "CREATE TABLE animals (name TEXT PRIMARY KEY)", ""},
      {"zoo", 2, "legs", "ALTER TABLE animals ADD COLUMN legs BIGINT NOT NULL DEFAULT 4", ""}};
  auto db = open(options);
  db->migrate(options.migrations);  // again: nothing to do
  db->write([](Txn& t) { t.execute("INSERT INTO animals (name) VALUES ('cat')"); });
  EXPECT_EQ(db->read([](Txn& t) { return t.query("SELECT legs FROM animals")[0][0].as_int(); }), 4);
  EXPECT_EQ(db->read([](Txn& t) {
    return t.query("SELECT COUNT(*) FROM schema_migrations WHERE module = 'zoo'")[0][0].as_int();
  }),
            2);
}

TEST_P(DatabaseTest, ChangedMigrationIsRefused) {
  auto db = open();
  auto changed = ItemsMigration();
  changed.sql += ";CREATE TABLE extra (x TEXT)";
  EXPECT_DEVCYCLE_ERROR(db->migrate(std::vector<Migration>{changed}), ErrorCode::kInternal,
                        "test/1", "changed after it was applied");
}

TEST_P(DatabaseTest, SchemaNewerThanTheBuildIsRefused) {
  auto db = open();
  db->migrate(std::vector<Migration>{ItemsMigration(),
                                     {"test", 2, "more", "CREATE TABLE more (x TEXT)", ""}});
  EXPECT_DEVCYCLE_ERROR(db->migrate(std::vector<Migration>{ItemsMigration()}), ErrorCode::kConflict,
                        "\"test\"", "version 2", "newer than this build");
}

TEST_P(DatabaseTest, MalformedMigrationListsAreInvalidArguments) {
  auto db = open();
  EXPECT_DEVCYCLE_ERROR(db->migrate(std::vector<Migration>{{"m", 2, "skip", "SELECT 1", ""}}),
                        ErrorCode::kInvalidArgument, "m/2", "must be 1");
  EXPECT_DEVCYCLE_ERROR(db->migrate(std::vector<Migration>{{"Bad-Name", 1, "x", "SELECT 1", ""}}),
                        ErrorCode::kInvalidArgument, "module must be");
  EXPECT_DEVCYCLE_ERROR(db->migrate(std::vector<Migration>{{"m", 1, "", "SELECT 1", ""}}),
                        ErrorCode::kInvalidArgument, "name is empty");
}

TEST_P(DatabaseTest, FailingMigrationAppliesNothing) {
  auto db = open();
  std::vector<Migration> list{ItemsMigration(),
                              {"test", 2, "good", "CREATE TABLE good (x TEXT)", ""},
                              {"test", 3, "bad", "CREATE TABLE bad (x TEXT); THIS IS NOT SQL", ""}};
  EXPECT_DEVCYCLE_ERROR(db->migrate(list), ErrorCode::kInternal, "test/3", "failed");
  const auto tables = db->read([](Txn& t) {
    return t
        .query(t.dialect() == Dialect::kPostgres
                   ? "SELECT COUNT(*) FROM information_schema.tables"
                     " WHERE table_schema = current_schema() AND table_name IN ('good', 'bad')"
                   : "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('good', 'bad')")[0][0]
        .as_int();
  });
  EXPECT_EQ(tables, 0);
  EXPECT_EQ(db->read([](Txn& t) {
    return t.query("SELECT MAX(version) FROM schema_migrations WHERE module = 'test'")[0][0]
        .as_int();
  }),
            1);
}

TEST_P(DatabaseTest, NotificationsWakeListenersAfterCommitOnly) {
  auto db = open();
  if (db->dialect() == Dialect::kSqlite) {
    // One process writes a SQLite database: there is nobody to wake.
    EXPECT_EQ(db->listen("work", [] {}), nullptr);
    db->write([](Txn& t) { t.notify("work"); });  // accepted, does nothing
    return;
  }
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  auto other = open();  // another connection, as another engine would be
  auto handle = other->listen("work", [&] {
    std::lock_guard lock(mu);
    ++calls;
    cv.notify_all();
  });
  ASSERT_NE(handle, nullptr);
  auto wait_for = [&](int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return calls >= n; });
  };
  // The listener announces itself once when its connection is made.
  ASSERT_TRUE(wait_for(1));
  // A rolled-back transaction wakes nobody; a committed one does.
  EXPECT_THROW(db->write([](Txn& t) {
    t.notify("work");
    throw Error(ErrorCode::kInvalidArgument, "changed my mind");
  }),
               Error);
  db->write([](Txn& t) {
    t.notify("elsewhere");
    t.notify("work");
  });
  ASSERT_TRUE(wait_for(2));
  handle.reset();  // no more calls after the handle is gone
  db->write([](Txn& t) { t.notify("work"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::lock_guard lock(mu);
  EXPECT_EQ(calls, 2);
}

TEST_P(DatabaseTest, UuidV7IdsSortInInsertionOrder) {
  auto db = open();
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    ids.push_back(new_uuid_v7());
    db->write([&](Txn& t) { insert(t, ids.back(), i); });
  }
  auto rows = db->read([](Txn& t) { return t.query("SELECT n FROM items ORDER BY id"); });
  ASSERT_EQ(rows.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(rows[i][0].as_int(), i);
}

INSTANTIATE_TEST_SUITE_P(Backends, DatabaseTest,
                         ::testing::ValuesIn(testing::database_backends("test.db")),
                         testing::backend_name);

// Durability: only backends whose data outlives the Database object.
class DurableDatabaseTest : public DatabaseTest {};

TEST_P(DurableDatabaseTest, DataSurvivesCloseAndReopen) {
  {
    auto db = open();
    db->write([](Txn& t) { insert(t, "kept", 7); });
  }
  auto db = open();  // migrations are not applied twice
  EXPECT_EQ(count(*db, "id = 'kept' AND n = 7"), 1);
}

// Only backends whose data outlives the Database object.
INSTANTIATE_TEST_SUITE_P(Backends, DurableDatabaseTest,
                         ::testing::ValuesIn(testing::durable_database_backends("test.db")),
                         testing::backend_name);

// SQLite-specific behaviour.

TEST(SqliteDatabaseTest, SynchronousIsNormalByDefaultAndFullOnRequest) {
  testing::TempDir dir;
  auto open = [&](DatabaseOptions options = {}) {
    return Database::open("sqlite://" + dir.file("sync.db"), options);
  };
  auto level = [](Database& db) {
    return db.write([](Txn& t) { return t.query("PRAGMA synchronous")[0][0].as_int(); });
  };
  EXPECT_EQ(level(*open()), 1);  // NORMAL
  DatabaseOptions full;
  full.synchronous = Synchronous::kFull;
  EXPECT_EQ(level(*open(full)), 2);  // FULL
}

TEST(SqliteDatabaseTest, FileDatabaseUsesWal) {
  testing::TempDir dir;
  auto db = Database::open("sqlite://" + dir.file("wal.db"));
  EXPECT_EQ(db->write([](Txn& t) { return t.query("PRAGMA journal_mode")[0][0].as_text(); }),
            "wal");
}

// Checkpoints run on a thread of their own: the WAL is copied back into the
// database file while the database stays open and keeps being written.
TEST(SqliteDatabaseTest, WalIsCheckpointedInTheBackground) {
  testing::TempDir dir;
  const auto path = dir.file("ckpt.db");
  auto db = Database::open("sqlite://" + path);
  db->write([](Txn& t) { t.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b TEXT)"); });
  const auto initial = std::filesystem::file_size(path);
  const std::string payload(3000, 'x');
  // About 1,500 pages of WAL, over the 1,000-page threshold, in many commits.
  for (int i = 0; i < 2000; ++i) {
    db->write([&](Txn& t) { t.execute("INSERT INTO blobs (b) VALUES ($1)", {payload}); });
  }
  // Liveness, not speed: give the checkpointer up to 30 s.
  for (int i = 0; i < 3000 && std::filesystem::file_size(path) < initial + 2'000'000; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(std::filesystem::file_size(path), initial + 2'000'000);
  EXPECT_EQ(db->write([](Txn& t) { return t.query("SELECT COUNT(*) FROM blobs")[0][0].as_int(); }),
            2000);
  db.reset();
  // Everything is there after a reopen.
  auto again = Database::open("sqlite://" + path);
  EXPECT_EQ(
      again->write([](Txn& t) { return t.query("SELECT COUNT(*) FROM blobs")[0][0].as_int(); }),
      2000);
}

TEST(SqliteDatabaseTest, UrlParametersAreChecked) {
  testing::TempDir dir;
  const auto base = "sqlite://" + dir.file("p.db");
  EXPECT_EQ(Database::open(base + "?synchronous=full")->write([](Txn& t) {
    return t.query("PRAGMA synchronous")[0][0].as_int();
  }),
            2);
  EXPECT_DEVCYCLE_ERROR(Database::open(base + "?synchronous=sometimes"),
                        ErrorCode::kInvalidArgument, "database", "synchronous=sometimes");
  EXPECT_DEVCYCLE_ERROR(Database::open(base + "?color=blue"), ErrorCode::kInvalidArgument,
                        "unknown parameter \"color\"");
  EXPECT_DEVCYCLE_ERROR(Database::open(base + "?readers=0"), ErrorCode::kInvalidArgument,
                        "readers=0");
  EXPECT_DEVCYCLE_ERROR(Database::open("sqlite://"), ErrorCode::kInvalidArgument,
                        "missing file path");
  EXPECT_DEVCYCLE_ERROR(Database::open("mysql://db"), ErrorCode::kInvalidArgument,
                        "unknown scheme \"mysql\"");
  // Nothing listens on port 1: unavailable, naming the URL without its password.
  EXPECT_DEVCYCLE_ERROR(Database::open("postgresql://u:secret@127.0.0.1:1/db"),
                        ErrorCode::kUnavailable, "postgresql://u:***@127.0.0.1:1/db");
}

TEST(SqliteDatabaseTest, UnopenableFileIsUnavailableAndNamesThePath) {
  testing::TempDir dir;
  const auto path = dir.file("no/such/dir/x.db");
  EXPECT_DEVCYCLE_ERROR(Database::open("sqlite://" + path), ErrorCode::kUnavailable, path);
}

TEST(SqliteDatabaseTest, PasswordNeverAppearsInErrors) {
  try {
    Database::open("postgresql://user:hunter2@127.0.0.1:1/devcycle");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace devcycle
