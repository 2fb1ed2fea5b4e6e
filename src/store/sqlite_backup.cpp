// Online backup and restore of SQLite databases with SQLite's backup API.
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "devcycle/common/error.h"
#include "devcycle/store/database.h"
#include "store/database_url.h"
#include "store/sqlite_database.h"

namespace devcycle {

namespace {

using Handle = std::unique_ptr<sqlite3, decltype(&sqlite3_close_v2)>;

Handle open_file(const std::string& path, int flags, const std::string& what) {
  if (flags & SQLITE_OPEN_CREATE) internal::create_private_file(path);  // a backup is as private
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  Handle h(db, &sqlite3_close_v2);
  if (rc != SQLITE_OK) {
    throw Error(ErrorCode::kUnavailable, what + ": cannot open \"" + path + "\": " +
                                             (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(db, 5000);
  return h;
}

std::string sqlite_path(const std::string& url, const char* label) {
  if (internal::check_database_url(url, label) != internal::DatabaseKind::kSqlite) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(label) + ": \"" + url +
                    "\" is PostgreSQL: use pg_dump and pg_restore (docs/operations.md)");
  }
  auto s = internal::parse_sqlite_url(url, {}, label);
  if (s.memory) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(label) + ": an in-memory database has nothing to back up or restore");
  }
  return s.path;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// Copies every page of `from` into `to` in one step (one consistent snapshot).
void copy(sqlite3* from, sqlite3* to, const std::string& what) {
  sqlite3_backup* b = sqlite3_backup_init(to, "main", from, "main");
  if (!b) throw Error(ErrorCode::kUnavailable, what + ": " + sqlite3_errmsg(to));
  int rc = SQLITE_OK;
  do {
    rc = sqlite3_backup_step(b, -1);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(50);
  } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE)
    throw Error(ErrorCode::kUnavailable, what + ": " + std::string(sqlite3_errstr(rc)));
}

// Whether the file holds a DevCycle schema (its migrations table).
bool is_devcycle_database(sqlite3* db) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM schema_migrations", -1, &st, nullptr) !=
      SQLITE_OK)
    return false;
  const bool ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0;
  sqlite3_finalize(st);
  return ok;
}

}  // namespace

void backup_database(const std::string& url, const std::string& to) {
  const auto path = sqlite_path(url, "database");
  if (to.empty()) throw Error(ErrorCode::kInvalidArgument, "backup: the target file is missing");
  if (exists(to))
    throw Error(ErrorCode::kAlreadyExists, "backup: \"" + to + "\" exists; choose a new file");
  if (!exists(path)) throw Error(ErrorCode::kNotFound, "database: \"" + path + "\" does not exist");
  auto source = open_file(path, SQLITE_OPEN_READONLY, "database");
  if (!is_devcycle_database(source.get()))
    throw Error(ErrorCode::kInvalidArgument,
                "database: \"" + path + "\" is not a DevCycle database");
  auto target = open_file(to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "backup");
  try {
    copy(source.get(), target.get(), "backup");
  } catch (...) {
    target.reset();
    ::unlink(to.c_str());
    throw;
  }
}

void restore_database(const std::string& from, const std::string& url) {
  const auto path = sqlite_path(url, "database");
  if (!exists(from)) throw Error(ErrorCode::kNotFound, "restore: \"" + from + "\" does not exist");
  auto source = open_file(from, SQLITE_OPEN_READONLY, "restore");
  if (!is_devcycle_database(source.get())) {
    throw Error(ErrorCode::kInvalidArgument,
                "restore: \"" + from + "\" is not a DevCycle database (no applied migrations)");
  }
  // Nobody may be using the target: every open Database holds its lock shared.
  const int lock = internal::lock_database_file(path, /*exclusive=*/true);
  if (lock < 0) {
    throw Error(ErrorCode::kUnavailable,
                "database: \"" + path + "\" is in use; stop devcycle serve first");
  }
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }
  } unlock{lock};
  auto target = open_file(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "database");
  copy(source.get(), target.get(), "restore");
}

}  // namespace devcycle
