#include "devcycle/store/database.h"

#include "common/url.h"
#include "devcycle/common/error.h"
#include "store/database_url.h"
#ifdef DEVCYCLE_WITH_POSTGRES
#include "store/postgres_database.h"
#endif
#include "store/sqlite_database.h"

namespace devcycle {
namespace internal {

DatabaseKind check_database_url(const std::string& url, std::string_view label) {
  if (url == "sqlite::memory:" || url.starts_with("sqlite://")) {
    parse_sqlite_url(url, {}, label);
    return DatabaseKind::kSqlite;
  }
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    parse_url(url, label);
    return DatabaseKind::kPostgres;
  }
  fail_setting(label, url,
               "has an unknown scheme \"" + url.substr(0, url.find(':')) +
                   "\" (expected sqlite://PATH, sqlite::memory: or postgresql://...)");
}

}  // namespace internal

std::unique_ptr<Database> Database::open(const std::string& url, const DatabaseOptions& options) {
  switch (internal::check_database_url(url, "database")) {
    case internal::DatabaseKind::kSqlite:
      return internal::open_sqlite_database(url, options);
    case internal::DatabaseKind::kPostgres:
#ifdef DEVCYCLE_WITH_POSTGRES
      return internal::open_postgres_database(url, options);
#else
      break;
#endif
  }
  internal::fail_setting("database", url,
                         "needs the PostgreSQL backend, which this build leaves out "
                         "(configure with -DDEVCYCLE_WITH_POSTGRES=ON); "
                         "use sqlite://PATH or sqlite::memory:");
}

}  // namespace devcycle
