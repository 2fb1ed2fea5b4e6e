// The SQLite Database backend: one writer thread that group-commits, and a
// small pool of read-only connections (WAL lets them read while it writes).
// Internal; reached through Database::open("sqlite://..." | "sqlite::memory:").
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "devcycle/store/database.h"

namespace devcycle::internal {

struct SqliteSettings {
  bool memory = false;
  std::string path;
  DatabaseOptions options;  // with the URL's parameters applied
};

// Parses sqlite::memory: or sqlite://PATH[?synchronous=normal|full&
// busy_timeout_ms=N&readers=N&group_commit=true|false]. Throws
// Error{kInvalidArgument} "<label>: ..." naming the bad part.
SqliteSettings parse_sqlite_url(const std::string& url, DatabaseOptions options,
                                std::string_view label);

// A flock on "<path>.lock", held shared by every Database open on the SQLite
// file at `path` and taken exclusively by a restore, so that a restore cannot
// replace a database in use. Returns the descriptor (close it to release);
// -1 when `exclusive` and the database is in use, or (shared) when the lock
// file cannot be made — the lock is a guard, not a requirement to open.
// Creates `path` as an empty file of mode 0600 unless it exists.
void create_private_file(const std::string& path);

int lock_database_file(const std::string& path, bool exclusive);

// `url` must start with sqlite:// or be sqlite::memory:. Throws as
// Database::open does.
std::unique_ptr<Database> open_sqlite_database(const std::string& url,
                                               const DatabaseOptions& options);

}  // namespace devcycle::internal
