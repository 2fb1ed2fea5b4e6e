// The database: all durable state of a DevCycle process.
//
// One Database per process (SQLite or PostgreSQL) holds a small SQL layer.
// Each module keeps its own small store on top of it; there is no shared
// do-everything store. SQL is written once with PostgreSQL-style positional
// parameters ($1, $2, ...), which every backend accepts.
//
// Writes go through submit(): each closure runs in its own SAVEPOINT inside a
// transaction shared with the other closures queued at that moment ("group
// commit"), and its future resolves only after that transaction has COMMITted.
// So one closure is one atomic state change: if it throws, its savepoint is
// rolled back and nothing it wrote survives, while the closures beside it
// commit. If the shared transaction itself fails (COMMIT error, I/O error),
// every closure of the batch fails with that error and none is committed.
//
// Thread-safety: a Database may be used from any number of threads. A Txn is
// valid only inside the closure it was passed to, on that thread. A closure
// must not wait on another submit() of the same Database (it would deadlock).
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <future>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "devcycle/store/value.h"

namespace devcycle {

class MetricsRegistry;

enum class Dialect { kSqlite, kPostgres };

// A transaction handle passed to submit() and read() closures.
class Txn {
 public:
  virtual ~Txn() = default;

  // Runs one statement and returns its rows. Parameters are $1, $2, ...
  // Throws Error: kAlreadyExists on a unique violation, kInvalidArgument on
  // other constraint violations, kUnavailable when the backend is busy or
  // unreachable, kInternal for malformed SQL.
  virtual ResultSet query(std::string_view sql, std::span<const Value> params) = 0;
  // Runs one statement and returns the number of rows it changed.
  virtual std::int64_t execute(std::string_view sql, std::span<const Value> params) = 0;
  // Runs several ;-separated statements without parameters (schema changes).
  virtual void execute_script(std::string_view sql) = 0;
  virtual Dialect dialect() const noexcept = 0;
  // Wakes the listeners of `channel` (Database::listen) once this
  // transaction commits — in every process on the database. Several
  // notifications of one channel in a transaction wake them once. Nothing
  // on SQLite, where no other process listens.
  virtual void notify(std::string_view /*channel*/) {}

  ResultSet query(std::string_view sql, std::initializer_list<Value> params = {}) {
    return query(sql, std::span<const Value>(params.begin(), params.size()));
  }
  std::int64_t execute(std::string_view sql, std::initializer_list<Value> params = {}) {
    return execute(sql, std::span<const Value>(params.begin(), params.size()));
  }
};

// A forward-only schema change. Migrations of one module are numbered 1, 2, 3
// ... and applied in order, once, recorded in schema_migrations with a
// checksum of their SQL; an applied migration must never change.
struct Migration {
  std::string module;        // "registry", "workflow", ...
  int version = 0;           // 1-based, contiguous per module
  std::string name;          // short description, e.g. "create agents"
  std::string sql;           // one or more statements
  std::string postgres_sql;  // replaces `sql` on PostgreSQL when not empty
};

enum class Synchronous { kNormal, kFull };

struct DatabaseOptions {
  // SQLite `synchronous`: kNormal survives a process crash but may lose the
  // last commits on power loss (in WAL mode); kFull survives power loss.
  // The URL parameter ?synchronous=normal|full overrides this.
  Synchronous synchronous = Synchronous::kNormal;
  // Group commit: a writer batches every closure queued while it was busy,
  // up to max_batch, into one transaction. false = one transaction each.
  bool group_commit = true;
  int max_batch = 256;
  // How long a statement waits for a lock held by another process.
  std::chrono::milliseconds busy_timeout{5000};
  // Read-only connections for read() on file databases.
  int readers = 4;
  // Applied in order at open, after the database's own migrations.
  std::vector<Migration> migrations;
  // Where to count commits, batch sizes and failed closures; null: nowhere.
  std::shared_ptr<MetricsRegistry> metrics;
};

class Database {
 public:
  using TxnFn = std::function<void(Txn&)>;
  // Called once per submitted closure: with nullptr after COMMIT, or with the
  // error that rolled it back. Runs on the writer thread: it must not block.
  using DoneFn = std::function<void(std::exception_ptr)>;

  virtual ~Database() = default;

  // Opens the database named by `url`: sqlite://PATH (relative: sqlite://./a.db,
  // absolute: sqlite:///var/lib/a.db), sqlite::memory:, postgresql://...
  // Creates a SQLite file that does not exist, then applies every pending
  // migration. Throws Error{kInvalidArgument} naming the URL when it is
  // malformed or its scheme unknown, kUnavailable when it cannot be opened,
  // kConflict when the schema is newer than this build, kInternal when an
  // applied migration was changed.
  static std::unique_ptr<Database> open(const std::string& url, const DatabaseOptions& = {});

  // Queues `fn` for the next group commit; `done` is called as described above.
  virtual void submit(TxnFn fn, DoneFn done) = 0;

  // Runs `fn` in a read-only transaction (one consistent snapshot) on the
  // calling thread and returns when it has finished. Throws what `fn` throws.
  virtual void read(const TxnFn& fn) = 0;

  // Applies the pending ones of `migrations` (see Migration) in one
  // transaction. Throws as open() does.
  virtual void migrate(std::span<const Migration> migrations) = 0;

  virtual Dialect dialect() const noexcept = 0;

  // Calls `on_notify` on a thread of the database's own after a transaction
  // that notified `channel` (Txn::notify) committed, here or in another
  // process; and once after the listening connection was re-established,
  // since notifications may have been missed meanwhile. Listening ends when
  // the returned handle is destroyed (a call already under way finishes). On PostgreSQL this is
  // LISTEN/NOTIFY; SQLite returns an empty handle and never calls (one process writes).
  using Listening = std::shared_ptr<void>;
  virtual Listening listen(std::string channel, std::function<void()> on_notify) {
    (void)channel;
    (void)on_notify;
    return nullptr;
  }

  // The URL the database was opened with, without any password.
  virtual std::string url() const = 0;

  // Waits for queued writes to finish, then refuses new ones with
  // kUnavailable. Idempotent; the destructor calls it.
  virtual void close() = 0;

  // Convenience: submit `fn` and get a future for its result, which resolves
  // after COMMIT (or holds the error).
  template <class F>
  auto submit(F fn) -> std::future<std::invoke_result_t<F&, Txn&>> {
    using R = std::invoke_result_t<F&, Txn&>;
    auto promise = std::make_shared<std::promise<R>>();
    auto future = promise->get_future();
    if constexpr (std::is_void_v<R>) {
      submit(TxnFn(std::move(fn)), [promise](std::exception_ptr e) {
        e ? promise->set_exception(e) : promise->set_value();
      });
    } else {
      auto result = std::make_shared<std::optional<R>>();
      submit(TxnFn([fn = std::move(fn), result](Txn& t) mutable { result->emplace(fn(t)); }),
             [promise, result](std::exception_ptr e) {
               e ? promise->set_exception(e) : promise->set_value(std::move(**result));
             });
    }
    return future;
  }

  // Convenience: submit and wait; returns the closure's result or throws.
  template <class F>
  auto write(F fn) -> std::invoke_result_t<F&, Txn&> {
    return submit(std::move(fn)).get();
  }

  // Convenience: read() that returns the closure's result.
  template <class F>
  requires(!std::is_void_v<std::invoke_result_t<F&, Txn&>>) auto read(F fn)
      -> std::invoke_result_t<F&, Txn&> {
    std::optional<std::invoke_result_t<F&, Txn&>> result;
    read(TxnFn([&](Txn& t) { result.emplace(fn(t)); }));
    return std::move(*result);
  }
};

// Online backup of the SQLite database at `url` (sqlite://PATH) into the new
// file `to`: one consistent snapshot, taken through SQLite's backup API, so a
// server may go on writing meanwhile. For PostgreSQL use pg_dump
// (docs/operations.md). Throws Error{kInvalidArgument} for other URLs or a
// file that is not a DevCycle database, kAlreadyExists when `to` exists,
// kNotFound when the database does not, kUnavailable when a file cannot be
// opened; a failed backup leaves no file behind.
void backup_database(const std::string& url, const std::string& to);

// Replaces the SQLite database at `url` with the backup `from`, after
// checking that `from` is a DevCycle database. Nothing may use the target:
// stop the server first (a database in use is kUnavailable).
void restore_database(const std::string& from, const std::string& url);

}  // namespace devcycle
