// The PostgreSQL Database backend (libpqxx): one writer connection that
// group-commits like the SQLite backend, a pool of read connections, a new
// connection after a broken one, and COMMITs of unknown outcome reconciled
// through a marker row written in every transaction. Internal; built with
// DEVCYCLE_WITH_POSTGRES and reached through Database::open("postgresql://...").
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "devcycle/store/database.h"

namespace devcycle::internal {

struct PostgresSettings {
  std::string conninfo;  // the URL without DevCycle's own parameters, for libpq
  std::string schema;    // "" = the server's default search_path
  std::string display;   // the URL without its password
  DatabaseOptions options;
};

// Parses postgresql://[user[:password]@]host[:port]/dbname[?params]. DevCycle's
// own parameters: schema=NAME (created when missing; every table lives there),
// readers=N (read connections), group_commit=true|false, busy_timeout_ms=N
// (lock_timeout). Any other parameter goes to libpq, which must know it
// (sslmode, connect_timeout, application_name, ...). Throws
// Error{kInvalidArgument} "<label>: ..." naming the bad part.
PostgresSettings parse_postgres_url(const std::string& url, DatabaseOptions options,
                                    std::string_view label);

// Throws as Database::open does.
std::unique_ptr<Database> open_postgres_database(const std::string& url,
                                                 const DatabaseOptions& options);

}  // namespace devcycle::internal
