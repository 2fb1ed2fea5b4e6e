#include "store/migrations.h"

#include <cstdint>
#include <cstdio>
#include <map>
#include <string_view>

#include "common/checksum.h"
#include "devcycle/common/error.h"

namespace devcycle::internal {
namespace {

std::string label(const Migration& m) {
  return "migration " + m.module + "/" + std::to_string(m.version) + " \"" + m.name + "\"";
}

const std::string& sql_for(const Migration& m, Dialect dialect) {
  return dialect == Dialect::kPostgres && !m.postgres_sql.empty() ? m.postgres_sql : m.sql;
}

}  // namespace

void check_migrations(std::span<const Migration> migrations) {
  std::map<std::string, int, std::less<>> last;
  for (const auto& m : migrations) {
    if (m.module.empty()) throw Error(ErrorCode::kInvalidArgument, label(m) + ": module is empty");
    for (char c : m.module) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
        throw Error(ErrorCode::kInvalidArgument,
                    label(m) + ": module must be lowercase letters, digits and '_'");
      }
    }
    if (m.name.empty()) throw Error(ErrorCode::kInvalidArgument, label(m) + ": name is empty");
    if (m.sql.empty()) throw Error(ErrorCode::kInvalidArgument, label(m) + ": sql is empty");
    const int expected = last[m.module] + 1;
    if (m.version != expected) {
      throw Error(ErrorCode::kInvalidArgument,
                  label(m) + ": version must be " + std::to_string(expected) +
                      " (versions of a module are 1, 2, 3 ... in order)");
    }
    last[m.module] = m.version;
  }
}

std::string migration_checksum(const Migration& m, Dialect dialect) {
  return fnv1a64_hex(sql_for(m, dialect));
}

void apply_migrations(Txn& txn, std::span<const Migration> migrations, Micros now) {
  check_migrations(migrations);
  txn.execute_script(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " module TEXT NOT NULL,"
      " version INTEGER NOT NULL,"
      " name TEXT NOT NULL,"
      " checksum TEXT NOT NULL,"
      " applied_at BIGINT NOT NULL,"
      " PRIMARY KEY (module, version))");

  struct Applied {
    std::string checksum;
  };
  std::map<std::pair<std::string, std::int64_t>, Applied> applied;
  std::map<std::string, std::int64_t, std::less<>> newest;
  for (const auto& row : txn.query("SELECT module, version, checksum FROM schema_migrations")) {
    const auto& module = row[0].as_text();
    const auto version = row[1].as_int();
    applied[{module, version}] = Applied{row[2].as_text()};
    auto& n = newest[module];
    if (version > n) n = version;
  }

  std::map<std::string, int, std::less<>> known;
  for (const auto& m : migrations) known[m.module] = m.version;
  for (const auto& [module, version] : newest) {
    const auto it = known.find(module);
    if (it != known.end() && version > it->second) {
      throw Error(ErrorCode::kConflict,
                  "the database schema of module \"" + module + "\" is at version " +
                      std::to_string(version) + ", newer than this build knows (" +
                      std::to_string(it->second) + "): upgrade devcycle, or open another database");
    }
  }

  for (const auto& m : migrations) {
    const auto sum = migration_checksum(m, txn.dialect());
    const auto it = applied.find({m.module, m.version});
    if (it != applied.end()) {
      if (it->second.checksum != sum) {
        throw Error(ErrorCode::kInternal, label(m) +
                                              " was changed after it was applied "
                                              "(checksum " +
                                              it->second.checksum + " in the database, " + sum +
                                              " in this build); add a new migration instead");
      }
      continue;
    }
    try {
      txn.execute_script(sql_for(m, txn.dialect()));
    } catch (const Error& e) {
      throw Error(e.code(), label(m) + " failed: " + e.what());
    }
    txn.execute(
        "INSERT INTO schema_migrations (module, version, name, checksum, applied_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        {m.module, m.version, m.name, sum, now});
  }
}

}  // namespace devcycle::internal
