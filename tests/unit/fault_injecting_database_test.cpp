#include "devcycle/testing/fault_injecting_database.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <future>

#include "support/error_matchers.h"

namespace devcycle {
namespace {

std::unique_ptr<FaultInjectingDatabase> make(FaultOptions options) {
  DatabaseOptions db;
  db.migrations = {{"test", 1, "pairs", "CREATE TABLE pairs (id BIGINT, part BIGINT)", ""}};
  return std::make_unique<FaultInjectingDatabase>(Database::open("sqlite::memory:", db), options);
}

// Each closure writes two rows: a half-written state change shows as one row.
void write_pair(Txn& t, int id) {
  t.execute("INSERT INTO pairs VALUES ($1, 1)", {id});
  t.execute("INSERT INTO pairs VALUES ($1, 2)", {id});
}

std::int64_t rows(Database& db, int id) {
  return db.read([&](Txn& t) {
    return t.query("SELECT COUNT(*) FROM pairs WHERE id = $1", {id})[0][0].as_int();
  });
}

TEST(FaultInjectingDatabaseTest, FailsTheNthCallBeforeItRuns) {
  FaultOptions o;
  o.fail_nth = 3;
  o.point = FaultOptions::Point::kBeforeRun;
  auto db = make(o);
  bool ran = false;
  db->write([](Txn& t) { write_pair(t, 1); });
  db->write([](Txn& t) { write_pair(t, 2); });
  EXPECT_DEVCYCLE_ERROR(db->write([&](Txn& t) {
    ran = true;
    write_pair(t, 3);
  }),
                        ErrorCode::kUnavailable, "injected fault");
  EXPECT_FALSE(ran);
  db->write([](Txn& t) { write_pair(t, 4); });
  EXPECT_EQ(db->injected(), 1u);
  EXPECT_EQ(rows(*db, 3), 0);
  EXPECT_EQ(rows(*db, 4), 2);
}

TEST(FaultInjectingDatabaseTest, FailureAfterTheClosureRanRollsItBack) {
  FaultOptions o;
  o.fail_nth = 1;
  auto db = make(o);
  bool ran = false;
  EXPECT_DEVCYCLE_ERROR(db->write([&](Txn& t) {
    ran = true;
    write_pair(t, 1);
  }),
                        ErrorCode::kUnavailable, "after the closure ran");
  EXPECT_TRUE(ran);
  EXPECT_EQ(rows(*db, 1), 0);
}

TEST(FaultInjectingDatabaseTest, SeededFractionIsRepeatableAndNeverHalfWrites) {
  auto run = [](std::uint64_t seed) {
    FaultOptions o;
    o.fail_fraction = 0.3;
    o.seed = seed;
    auto db = make(o);
    std::vector<std::future<void>> futures;
    for (int i = 0; i < 200; ++i) {
      futures.push_back(db->submit([i](Txn& t) { write_pair(t, i); }));
    }
    std::vector<bool> failed;
    for (auto& f : futures) {
      try {
        f.get();
        failed.push_back(false);
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
        failed.push_back(true);
      }
    }
    // Reads are faulted too: count through the real database.
    auto& real = db->target();
    for (int i = 0; i < 200; ++i) EXPECT_EQ(rows(real, i), failed[i] ? 0 : 2) << i;
    EXPECT_EQ(static_cast<std::size_t>(std::count(failed.begin(), failed.end(), true)),
              db->injected());
    return failed;
  };
  const auto a = run(7);
  const auto b = run(7);
  const auto c = run(8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  const auto n = std::count(a.begin(), a.end(), true);
  EXPECT_GT(n, 20);
  EXPECT_LT(n, 120);
}

TEST(FaultInjectingDatabaseTest, ReadsFailToo) {
  FaultOptions o;
  o.fail_nth = 1;
  auto db = make(o);
  EXPECT_DEVCYCLE_ERROR(db->read([](Txn& t) { t.query("SELECT 1"); }), ErrorCode::kUnavailable,
                        "injected fault (read)");
}

TEST(FaultInjectingDatabaseTest, RefusesBadOptions) {
  FaultOptions o;
  o.fail_fraction = 1.5;
  EXPECT_DEVCYCLE_ERROR(make(o), ErrorCode::kInvalidArgument, "fail_fraction");
  EXPECT_DEVCYCLE_ERROR(DatabaseWrapper(nullptr), ErrorCode::kInvalidArgument, "null");
}

TEST(DatabaseWrapperTest, ForwardsEverything) {
  DatabaseWrapper w(Database::open("sqlite::memory:"));
  EXPECT_EQ(w.dialect(), Dialect::kSqlite);
  EXPECT_EQ(w.url(), "sqlite::memory:");
  w.migrate(std::vector<Migration>{{"w", 1, "t", "CREATE TABLE t (x BIGINT)", ""}});
  w.write([](Txn& t) { t.execute("INSERT INTO t VALUES (5)"); });
  EXPECT_EQ(w.read([](Txn& t) { return t.query("SELECT x FROM t")[0][0].as_int(); }), 5);
  w.close();
  EXPECT_DEVCYCLE_ERROR(w.write([](Txn& t) { t.execute("SELECT 1"); }), ErrorCode::kUnavailable,
                        "closed");
}

}  // namespace
}  // namespace devcycle
