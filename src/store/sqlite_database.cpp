#include "store/sqlite_database.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/string_hash.h"
#include "common/url.h"
#include "devcycle/common/clock.h"
#include "devcycle/common/error.h"
#include "devcycle/observability/metrics.h"
#include "store/backend_parts.h"
#include "store/migrations.h"
#include "store/sqlite_errors.h"

namespace devcycle::internal {
namespace {

[[noreturn]] void bad_url(std::string_view label, const std::string& url,
                          const std::string& reason) {
  throw Error(ErrorCode::kInvalidArgument,
              std::string(label) + ": \"" + url + "\" is not a valid SQLite URL: " + reason);
}

}  // namespace

void create_private_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);  // a failure shows when SQLite opens it, with its reason
}

int lock_database_file(const std::string& path, bool exclusive) {
  const auto lock_path = path + ".lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (!exclusive) return -1;
    throw Error(ErrorCode::kUnavailable,
                "database: cannot open " + lock_path + ": " + std::strerror(errno));
  }
  if (::flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

SqliteSettings parse_sqlite_url(const std::string& url, DatabaseOptions options,
                                std::string_view label) {
  SqliteSettings s;
  s.options = std::move(options);
  if (url == "sqlite::memory:") {
    s.memory = true;
    return s;
  }
  constexpr std::string_view kPrefix = "sqlite://";
  if (!url.starts_with(kPrefix)) bad_url(label, url, "expected sqlite://PATH or sqlite::memory:");
  std::string_view rest = std::string_view(url).substr(kPrefix.size());
  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (rest.empty())
    bad_url(label, url, "missing file path (sqlite://./devcycle.db, sqlite:///abs/path.db)");
  s.path = std::string(rest);
  if (s.path == ":memory:") {
    s.memory = true;
  }
  for (const auto& [k, v] : parse_query(query, label, url)) {
    if (k == "synchronous") {
      if (v == "normal")
        s.options.synchronous = Synchronous::kNormal;
      else if (v == "full")
        s.options.synchronous = Synchronous::kFull;
      else
        bad_url(label, url, "synchronous=" + v + " must be normal or full");
    } else if (!apply_common_parameter(k, v, s.options,
                                       [&](const std::string& why) { bad_url(label, url, why); })) {
      bad_url(label, url,
              "unknown parameter \"" + k +
                  "\" (known: synchronous, busy_timeout_ms, readers, group_commit)");
    }
  }
  check_options(s.options);
  return s;
}

namespace {

// SQLite's memory statistics take a process-wide mutex on every allocation;
// nothing here reads them. Possible only before SQLite initialises, so the
// first database opened in a process decides (a host that already uses
// SQLite keeps its own settings: sqlite3_config then refuses, harmlessly).
void configure_sqlite_once() {
  static std::once_flag once;
  std::call_once(once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

// One sqlite3 handle with its prepared statements. Used by one thread at a time.
class Connection {
 public:
  struct Statement {
    sqlite3_stmt* stmt = nullptr;
    std::vector<int> slot;  // slot[k] = sqlite's index of $k+1
    // Result column names, shared by every ResultSet of the statement.
    std::shared_ptr<const std::vector<std::string>> columns;
  };

  Connection(const SqliteSettings& s, bool reader) {
    configure_sqlite_once();
    const char* path = s.memory ? ":memory:" : s.path.c_str();
    // SQLite creates files 0644 less the umask, and its WAL and shared-memory
    // files with the database file's mode: made first as 0600, all three
    // stay private to the server's user. An existing file keeps its mode.
    if (!s.memory) create_private_file(s.path);
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    const int rc = sqlite3_open_v2(path, &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close_v2(db_);
      db_ = nullptr;
      throw Error(ErrorCode::kUnavailable,
                  "database: cannot open SQLite file \"" + s.path + "\": " + msg);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, static_cast<int>(s.options.busy_timeout.count()));
    try {
      if (!s.memory && !reader) {
        const auto mode = query_text("PRAGMA journal_mode=WAL");
        if (mode != "wal") {
          throw Error(ErrorCode::kUnavailable, "database: SQLite file \"" + s.path +
                                                   "\" cannot use WAL (journal_mode is " + mode +
                                                   ")");
        }
      }
      exec(s.options.synchronous == Synchronous::kFull ? "PRAGMA synchronous=FULL"
                                                       : "PRAGMA synchronous=NORMAL");
      exec("PRAGMA foreign_keys=ON");
      if (reader) exec("PRAGMA query_only=ON");
    } catch (...) {
      close();
      throw;
    }
  }
  ~Connection() { close(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* handle() const noexcept { return db_; }

  void exec(std::string_view sql) {
    const std::string text(sql);
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      throw Error(code_from_sqlite(sqlite3_extended_errcode(db_)),
                  msg + " (in SQL: " + text.substr(0, 200) + ")");
    }
  }

  // Transaction control (BEGIN, SAVEPOINT, RELEASE, COMMIT, ROLLBACK) runs
  // several times per write: keep it prepared instead of parsing it each time.
  void control(std::string_view sql) {
    sqlite3_stmt* st = prepare(sql).stmt;
    const int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
      const int code = sqlite3_extended_errcode(db_);
      std::string msg = sqlite3_errmsg(db_);
      sqlite3_reset(st);
      throw Error(code_from_sqlite(code), msg + " (in SQL: " + std::string(sql) + ")");
    }
    sqlite3_reset(st);
  }

  Statement& prepare(std::string_view sql) {
    if (auto it = cache_.find(sql); it != cache_.end()) return it->second;
    Statement st;
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &st.stmt, nullptr);
    if (rc != SQLITE_OK) {
      throw_sqlite(db_, rc, "in SQL: " + std::string(sql.substr(0, 200)));
    }
    const int count = sqlite3_bind_parameter_count(st.stmt);
    for (int i = 1; i <= count; ++i) {
      const char* name = sqlite3_bind_parameter_name(st.stmt, i);
      int k = 0;
      const std::string_view n = name ? name : "";
      auto [end, ec] = n.size() > 1 && n[0] == '$'
                           ? std::from_chars(n.data() + 1, n.data() + n.size(), k)
                           : std::from_chars_result{n.data(), std::errc::invalid_argument};
      if (ec != std::errc() || end != n.data() + n.size() || k < 1) {
        sqlite3_finalize(st.stmt);
        throw Error(ErrorCode::kInternal, "SQL parameter \"" + std::string(n) +
                                              "\" is not $1, $2, ... [" +
                                              std::string(sql.substr(0, 200)) + "]");
      }
      if (static_cast<int>(st.slot.size()) < k) st.slot.resize(k, 0);
      st.slot[k - 1] = i;
    }
    auto names = std::make_shared<std::vector<std::string>>();
    for (int i = 0; i < sqlite3_column_count(st.stmt); ++i)
      names->emplace_back(sqlite3_column_name(st.stmt, i));
    st.columns = std::move(names);
    return cache_.emplace(std::string(sql), st).first->second;
  }

 private:
  std::string query_text(const char* sql) {
    sqlite3_stmt* st = nullptr;
    if (int rc = sqlite3_prepare_v2(db_, sql, -1, &st, nullptr); rc != SQLITE_OK) {
      throw_sqlite(db_, rc, sql);
    }
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW) {
      const auto* t = sqlite3_column_text(st, 0);
      out = t ? reinterpret_cast<const char*>(t) : "";
    }
    sqlite3_finalize(st);
    return out;
  }

  void close() noexcept {
    for (auto& [sql, st] : cache_) sqlite3_finalize(st.stmt);
    cache_.clear();
    if (db_) sqlite3_close_v2(db_);
    db_ = nullptr;
  }

  sqlite3* db_ = nullptr;
  StringMap<Statement> cache_;
};

class SqliteTxn final : public Txn {
 public:
  explicit SqliteTxn(Connection& c) : c_(c) {}
  using Txn::execute;
  using Txn::query;

  ResultSet query(std::string_view sql, std::span<const Value> params) override {
    ResultSet rs;
    run(sql, params, &rs);
    return rs;
  }

  std::int64_t execute(std::string_view sql, std::span<const Value> params) override {
    run(sql, params, nullptr);
    return sqlite3_changes64(c_.handle());
  }

  void execute_script(std::string_view sql) override { c_.exec(sql); }

  Dialect dialect() const noexcept override { return Dialect::kSqlite; }

 private:
  void run(std::string_view sql, std::span<const Value> params, ResultSet* out) {
    auto& st = c_.prepare(sql);
    sqlite3_stmt* s = st.stmt;
    struct Reset {
      sqlite3_stmt* s;
      ~Reset() {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
      }
    } reset{s};
    if (params.size() != st.slot.size()) {
      throw Error(ErrorCode::kInternal, "SQL expects " + std::to_string(st.slot.size()) +
                                            " parameters, got " + std::to_string(params.size()) +
                                            " [" + std::string(sql.substr(0, 200)) + "]");
    }
    for (std::size_t k = 0; k < params.size(); ++k) bind(s, st.slot[k], params[k], sql);

    const int ncol = sqlite3_column_count(s);
    if (out) {
      // SQLite re-prepares a statement after a schema change (a migration
      // adding a column to a SELECT * table): refresh the names then.
      if (static_cast<int>(st.columns->size()) != ncol) {
        auto names = std::make_shared<std::vector<std::string>>();
        for (int i = 0; i < ncol; ++i) names->emplace_back(sqlite3_column_name(s, i));
        st.columns = std::move(names);
      }
      out->columns = st.columns;
    }
    for (;;) {
      const int rc = sqlite3_step(s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW)
        throw_sqlite(c_.handle(), rc, "in SQL: " + std::string(sql.substr(0, 200)));
      if (!out) continue;
      std::vector<Value> values;
      values.reserve(ncol);
      for (int i = 0; i < ncol; ++i) values.push_back(column(s, i));
      out->rows.emplace_back(out->columns, std::move(values));
    }
  }

  void bind(sqlite3_stmt* s, int slot, const Value& v, std::string_view sql) {
    if (slot == 0) return;  // $k not used by this statement
    int rc = SQLITE_OK;
    switch (v.type()) {
      case Value::Type::kNull:
        rc = sqlite3_bind_null(s, slot);
        break;
      case Value::Type::kInt:
        rc = sqlite3_bind_int64(s, slot, v.as_int());
        break;
      case Value::Type::kDouble:
        rc = sqlite3_bind_double(s, slot, v.as_double());
        break;
      case Value::Type::kText: {
        const auto& t = v.as_text();
        rc = sqlite3_bind_text64(s, slot, t.data(), t.size(), SQLITE_STATIC, SQLITE_UTF8);
        break;
      }
      case Value::Type::kBlob: {
        const auto& b = v.as_blob().bytes;
        rc = sqlite3_bind_blob64(s, slot, b.data(), b.size(), SQLITE_STATIC);
        break;
      }
    }
    if (rc != SQLITE_OK)
      throw_sqlite(c_.handle(), rc,
                   "binding a parameter of SQL: " + std::string(sql.substr(0, 200)));
  }

  static Value column(sqlite3_stmt* s, int i) {
    switch (sqlite3_column_type(s, i)) {
      case SQLITE_INTEGER:
        return Value(static_cast<std::int64_t>(sqlite3_column_int64(s, i)));
      case SQLITE_FLOAT:
        return Value(sqlite3_column_double(s, i));
      case SQLITE_TEXT: {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
        return Value(std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i))));
      }
      case SQLITE_BLOB: {
        const auto* p = static_cast<const std::byte*>(sqlite3_column_blob(s, i));
        const auto n = static_cast<std::size_t>(sqlite3_column_bytes(s, i));
        return Value(Blob{std::vector<std::byte>(p, p + n)});
      }
      default:
        return Value();
    }
  }

  Connection& c_;
};

class SqliteDatabase final : public Database {
 public:
  explicit SqliteDatabase(SqliteSettings s, std::string url)
      : settings_(std::move(s)), url_(std::move(url)) {
    if (!settings_.memory) lock_fd_ = lock_database_file(settings_.path, /*exclusive=*/false);
    writer_ = std::make_unique<Connection>(settings_, /*reader=*/false);
    if (!settings_.memory) start_checkpointer();
    writes_.start(
        settings_.options.group_commit ? static_cast<std::size_t>(settings_.options.max_batch) : 1,
        [this](std::vector<Request>& batch) { run_batch(batch); });
  }

  ~SqliteDatabase() override {
    close();
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  using Database::read;
  using Database::submit;

  void submit(TxnFn fn, DoneFn done) override {
    Request r{std::move(fn), std::move(done)};
    if (!writes_.push(r)) r.done(std::make_exception_ptr(closed_error()));
  }

  void read(const TxnFn& fn) override {
    if (settings_.memory) {
      // One connection holds an in-memory database: share it with the writer.
      std::lock_guard conn_lock(conn_mu_);
      if (closed_) throw closed_error();
      writer_->exec("PRAGMA query_only=ON");
      struct Writable {
        Connection& c;
        ~Writable() {
          try {
            c.exec("PRAGMA query_only=OFF");
          } catch (...) {
          }
        }
      } writable{*writer_};
      read_on(*writer_, fn);
      return;
    }
    auto conn = readers_.acquire();
    struct Release {
      ConnectionPool<Connection>& pool;
      std::unique_ptr<Connection>& c;
      ~Release() { pool.release(std::move(c)); }
    } release{readers_, conn};
    read_on(*conn, fn);
  }

  void migrate(std::span<const Migration> migrations) override {
    check_migrations(migrations);
    std::vector<Migration> copy(migrations.begin(), migrations.end());
    write([copy = std::move(copy)](Txn& txn) {
      apply_migrations(txn, copy, SystemClock::instance()->now());
    });
  }

  Dialect dialect() const noexcept override { return Dialect::kSqlite; }
  std::string url() const override { return url_; }

  void close() override {
    std::call_once(close_once_, [this] {
      writes_.stop();  // drains the queue first
      stop_checkpointer();
      {
        std::lock_guard conn_lock(conn_mu_);
        closed_ = true;
      }
      readers_.close();
    });
  }

 private:
  using Request = WriteQueue::Request;

  // Checkpoints copy the WAL back into the database file and fsync it. SQLite
  // runs them inside the COMMIT that crosses the threshold, on the writer
  // thread; here a thread of their own does that with its own connection
  // (PASSIVE: it never blocks the writer), so the writer keeps writing.
  static constexpr int kCheckpointPages = 1000;  // SQLite's default threshold
  static constexpr int kInlineCheckpointPages = 16 * kCheckpointPages;

  static int on_wal_commit(void* self, sqlite3* db, const char*, int pages) {
    auto& me = *static_cast<SqliteDatabase*>(self);
    if (pages >= kInlineCheckpointPages) {
      // The checkpointer cannot keep up (or readers hold it back): do what
      // SQLite would have done, so the WAL cannot grow without bound.
      sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    } else if (pages >= kCheckpointPages) {
      {
        std::lock_guard lock(me.checkpoint_mu_);
        me.checkpoint_due_ = true;
      }
      me.checkpoint_cv_.notify_one();
    }
    return SQLITE_OK;
  }

  void start_checkpointer() {
    checkpointer_conn_ = std::make_unique<Connection>(settings_, /*reader=*/false);
    sqlite3_wal_hook(writer_->handle(), &SqliteDatabase::on_wal_commit, this);
    checkpointer_ = std::thread([this] {
      std::unique_lock lock(checkpoint_mu_);
      for (;;) {
        checkpoint_cv_.wait(lock, [&] { return checkpoint_due_ || checkpoint_stop_; });
        if (checkpoint_stop_) return;
        checkpoint_due_ = false;
        lock.unlock();
        // Failures (SQLITE_BUSY) only mean the next commit asks again.
        sqlite3_wal_checkpoint_v2(checkpointer_conn_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                  nullptr, nullptr);
        lock.lock();
      }
    });
  }

  void stop_checkpointer() {
    if (!checkpointer_.joinable()) return;
    {
      std::lock_guard lock(checkpoint_mu_);
      checkpoint_stop_ = true;
    }
    checkpoint_cv_.notify_one();
    checkpointer_.join();
    checkpointer_conn_.reset();
  }

  Error closed_error() const {
    return Error(ErrorCode::kUnavailable, "database " + url_ + " is closed");
  }

  static void read_on(Connection& c, const TxnFn& fn) {
    c.control("BEGIN");
    try {
      SqliteTxn txn(c);
      fn(txn);
    } catch (...) {
      try {
        c.control("ROLLBACK");
      } catch (...) {
      }
      throw;
    }
    c.control("COMMIT");
  }

  // One transaction, one SAVEPOINT per closure when there are several; see
  // Database's contract.
  void run_batch(std::vector<Request>& batch) {
    std::vector<std::exception_ptr> errors(batch.size());
    std::size_t failed = 0;
    {
      std::lock_guard conn_lock(conn_mu_);
      Connection& c = *writer_;
      std::exception_ptr batch_error;
      // A lone closure needs no savepoint: if it fails, the whole
      // transaction is rolled back, which is just that closure.
      const bool isolate = batch.size() > 1;
      try {
        c.control("BEGIN IMMEDIATE");
        for (std::size_t i = 0; i < batch.size(); ++i) {
          if (isolate) c.control("SAVEPOINT devcycle_closure");
          try {
            SqliteTxn txn(c);
            batch[i].fn(txn);
            if (isolate) c.control("RELEASE devcycle_closure");
          } catch (...) {
            errors[i] = std::current_exception();
            ++failed;
            if (!isolate) break;
            if (sqlite3_get_autocommit(c.handle())) {
              // SQLite rolled the whole transaction back (I/O error, disk
              // full): the closures before this one are lost with it.
              batch_error = std::make_exception_ptr(
                  Error(ErrorCode::kUnavailable,
                        "database " + url_ +
                            ": the shared transaction was rolled back by another "
                            "closure's error; nothing of this closure was written"));
              for (std::size_t j = i + 1; j < batch.size(); ++j) errors[j] = batch_error;
              for (std::size_t j = 0; j < i; ++j) {
                if (!errors[j]) errors[j] = batch_error;
              }
              break;
            }
            c.control("ROLLBACK TO devcycle_closure");
            c.control("RELEASE devcycle_closure");
          }
        }
        if (isolate || !errors[0]) {
          if (!batch_error) c.control("COMMIT");
        } else if (!sqlite3_get_autocommit(c.handle())) {
          c.control("ROLLBACK");
        }
      } catch (...) {
        const auto e = std::current_exception();
        if (!sqlite3_get_autocommit(c.handle())) {
          try {
            c.control("ROLLBACK");
          } catch (...) {
          }
        }
        for (auto& err : errors) {
          if (!err) err = e;
        }
        failed = batch.size();
      }
    }
    end_batch_(batch, errors, failed);
  }

  SqliteSettings settings_;
  std::string url_;
  int lock_fd_ = -1;  // lock_database_file(), shared
  std::unique_ptr<Connection> writer_;

  std::unique_ptr<Connection> checkpointer_conn_;
  std::thread checkpointer_;
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool checkpoint_due_ = false;
  bool checkpoint_stop_ = false;

  std::once_flag close_once_;

  std::mutex conn_mu_;  // guards writer_ (shared with read() on :memory:) and closed_
  bool closed_ = false;

  ConnectionPool<Connection> readers_{
      settings_.options.readers,
      [this] { return std::make_unique<Connection>(settings_, /*reader=*/true); },
      [this] { return closed_error(); }};
  BatchEnd end_batch_{settings_.options.metrics};
  WriteQueue writes_;  // last: its thread stops first
};

}  // namespace

std::unique_ptr<Database> open_sqlite_database(const std::string& url,
                                               const DatabaseOptions& options) {
  auto settings = parse_sqlite_url(url, options, "database");
  auto migrations = settings.options.migrations;
  auto db = std::make_unique<SqliteDatabase>(std::move(settings), url);
  db->migrate(migrations);
  return db;
}

}  // namespace devcycle::internal
