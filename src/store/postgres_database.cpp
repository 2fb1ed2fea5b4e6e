#include "store/postgres_database.h"

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/string_hash.h"
#include "common/url.h"
#include "devcycle/common/clock.h"
#include "devcycle/common/error.h"
#include "devcycle/common/uuid.h"
#include "devcycle/observability/metrics.h"
#include "store/backend_parts.h"
#include "store/migrations.h"
#include "store/postgres_dialect.h"

namespace devcycle::internal {
namespace {

[[noreturn]] void bad_url(std::string_view label, const std::string& url,
                          const std::string& reason) {
  throw Error(ErrorCode::kInvalidArgument, std::string(label) + ": \"" + redact_url(url) +
                                               "\" is not a valid PostgreSQL URL: " + reason);
}

bool valid_schema_name(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

// Type OIDs from PostgreSQL's pg_type.h (stable across versions).
constexpr pqxx::oid kBoolOid = 16, kByteaOid = 17, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23,
                    kOidOid = 26, kFloat4Oid = 700, kFloat8Oid = 701, kNumericOid = 1700;

std::string trimmed(std::string msg) {
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

// The error a libpqxx exception stands for. `broken` is set when the
// connection is gone (the caller must not use it again).
Error translate(std::string_view sql, bool& broken) {
  const auto where = [&] {
    return sql.empty() ? std::string() : " (in SQL: " + std::string(sql.substr(0, 200)) + ")";
  };
  try {
    throw;
  } catch (const Error& e) {
    return e;
  } catch (const pqxx::in_doubt_error& e) {
    broken = true;
    return Error(ErrorCode::kUnavailable, std::string("PostgreSQL: ") + e.what() + where());
  } catch (const pqxx::broken_connection& e) {
    broken = true;
    return Error(ErrorCode::kUnavailable,
                 std::string("PostgreSQL connection lost: ") + e.what() + where());
  } catch (const pqxx::sql_error& e) {
    const std::string state = e.sqlstate();
    // A bind message with the wrong number of parameters is our bug, not
    // a connection problem (its SQLSTATE is in class 08).
    auto code = state == "08P01" ? ErrorCode::kInternal : code_from_sqlstate(state);
    if (state.starts_with("57P")) broken = true;  // admin shutdown / crash: the session is gone
    std::string msg = e.what();
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return Error(code, msg + " [SQLSTATE " + state + "]" + where());
  } catch (const std::exception& e) {
    return Error(ErrorCode::kInternal, std::string("PostgreSQL: ") + e.what() + where());
  } catch (...) {
    return Error(ErrorCode::kInternal, "an exception that is not a std::exception" + where());
  }
}

// The highest $k of `sql` (outside literals and quoted names). Throws
// Error{kInternal} for a '?' placeholder, which SQLite would take.
std::size_t highest_placeholder(std::string_view sql) {
  std::size_t highest = 0;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {
      const auto end = sql.find(c, i + 1);
      if (end == std::string_view::npos) break;
      i = end;
    } else if (c == '?') {
      throw Error(ErrorCode::kInternal, "SQL parameter \"?\" is not $1, $2, ... [" +
                                            std::string(sql.substr(0, 200)) + "]");
    } else if (c == '$' && i + 1 < sql.size() && sql[i + 1] >= '1' && sql[i + 1] <= '9') {
      std::size_t k = 0;
      auto [end, ec] = std::from_chars(sql.data() + i + 1, sql.data() + sql.size(), k);
      if (ec == std::errc()) highest = std::max(highest, k);
      i = static_cast<std::size_t>(end - sql.data()) - 1;
    }
  }
  return highest;
}

// One libpqxx connection with its prepared statements. Used by one thread at a time.
class Connection {
 public:
  Connection(const PostgresSettings& s) {
    try {
      conn_ = std::make_unique<pqxx::connection>(s.conninfo);
      // libpqxx 6 would otherwise reconnect silently at the next statement,
      // without this session's settings, and outside the transaction that
      // broke. A broken connection is dropped instead (deprecated in 6.4,
      // still what it does).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      conn_->inhibit_reactivation(true);
#pragma GCC diagnostic pop
      pqxx::nontransaction setup(*conn_);
      std::string sql = "SET lock_timeout = " + std::to_string(s.options.busy_timeout.count()) +
                        "; SET TIME ZONE 'UTC'";
      if (!s.schema.empty()) sql += "; SET search_path TO \"" + s.schema + "\"";
      setup.exec(sql);
    } catch (const pqxx::broken_connection& e) {
      throw Error(ErrorCode::kUnavailable,
                  "database: cannot connect to " + s.display + ": " + trimmed(e.what()));
    } catch (...) {
      bool broken = false;
      const Error e = translate({}, broken);
      throw Error(ErrorCode::kUnavailable,
                  "database: cannot connect to " + s.display + ": " + e.what());
    }
  }

  pqxx::connection& raw() { return *conn_; }
  bool broken() const noexcept { return broken_ || !conn_->is_open(); }
  void mark_broken() noexcept { broken_ = true; }
  // Whether a transaction ran on it before (a new one cannot be stale).
  bool used() const noexcept { return used_; }
  void set_used() noexcept { used_ = true; }

  struct Statement {
    std::string name;
    std::size_t params = 0;  // the highest $k
  };

  // `sql` prepared on this connection. A connection that breaks is dropped
  // (with its statements): submit() and read() make a new one.
  const Statement& prepared(std::string_view sql) {
    if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
    Statement st{"s" + std::to_string(statements_.size() + 1), highest_placeholder(sql)};
    conn_->prepare(st.name, std::string(sql));
    return statements_.emplace(std::string(sql), std::move(st)).first->second;
  }

 private:
  std::unique_ptr<pqxx::connection> conn_;
  StringMap<Statement> statements_;
  bool broken_ = false;
  bool used_ = false;
};

Value column(const pqxx::field& f, pqxx::oid type) {
  if (f.is_null()) return Value();
  const char* p = f.c_str();
  const auto n = f.size();
  switch (type) {
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
    case kOidOid: {
      std::int64_t v = 0;
      std::from_chars(p, p + n, v);
      return Value(v);
    }
    case kBoolOid:
      return Value(std::int64_t{p[0] == 't' ? 1 : 0});
    case kFloat4Oid:
    case kFloat8Oid:
      return Value(std::strtod(p, nullptr));
    case kNumericOid: {
      // SUM() of integers is numeric: keep it an integer when it is one.
      std::int64_t v = 0;
      auto [end, ec] = std::from_chars(p, p + n, v);
      if (ec == std::errc() && end == p + n) return Value(v);
      return Value(std::strtod(p, nullptr));
    }
    case kByteaOid:
      return Value(Blob::of(decode_bytea_hex(std::string_view(p, n))));
    default:
      return Value(std::string(p, n));
  }
}

class PgTxn final : public Txn {
 public:
  PgTxn(Connection& c, pqxx::transaction_base& t) : c_(c), t_(t) {}
  using Txn::execute;
  using Txn::query;

  ResultSet query(std::string_view sql, std::span<const Value> params) override {
    const auto r = run(sql, params);
    ResultSet rs;
    auto names = std::make_shared<std::vector<std::string>>();
    const auto ncol = r.columns();
    std::vector<pqxx::oid> types(ncol);
    for (pqxx::row::size_type i = 0; i < ncol; ++i) {
      names->emplace_back(r.column_name(i));
      types[i] = r.column_type(i);
    }
    rs.columns = std::move(names);
    rs.rows.reserve(r.size());
    for (const auto& row : r) {
      std::vector<Value> values;
      values.reserve(ncol);
      for (pqxx::row::size_type i = 0; i < ncol; ++i) values.push_back(column(row[i], types[i]));
      rs.rows.emplace_back(rs.columns, std::move(values));
    }
    return rs;
  }

  std::int64_t execute(std::string_view sql, std::span<const Value> params) override {
    return static_cast<std::int64_t>(run(sql, params).affected_rows());
  }

  void execute_script(std::string_view sql) override {
    guarded(sql, [&] { t_.exec(postgres_ddl(sql)); });
  }

  Dialect dialect() const noexcept override { return Dialect::kPostgres; }

  void notify(std::string_view channel) override {
    run("SELECT pg_notify($1, '')", std::array<Value, 1>{Value(std::string(channel))});
  }

 private:
  pqxx::result run(std::string_view sql, std::span<const Value> params) {
    // Every parameter travels as text (or null) and PostgreSQL gives it the
    // type its place in the statement needs.
    std::vector<std::string> text(params.size());
    std::vector<const char*> ptr(params.size(), nullptr);
    for (std::size_t i = 0; i < params.size(); ++i) {
      const Value& v = params[i];
      switch (v.type()) {
        case Value::Type::kNull:
          continue;
        case Value::Type::kInt:
          text[i] = std::to_string(v.as_int());
          break;
        case Value::Type::kDouble: {
          char buf[32];
          auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v.as_double());
          text[i].assign(buf, ec == std::errc() ? end : buf);
          break;
        }
        case Value::Type::kText:
          if (v.as_text().find('\0') != std::string::npos) {
            throw Error(ErrorCode::kInvalidArgument,
                        "text parameter $" + std::to_string(i + 1) +
                            " contains a NUL character, which PostgreSQL text cannot hold");
          }
          text[i] = v.as_text();
          break;
        case Value::Type::kBlob:
          text[i] = encode_bytea_hex(v.as_blob().str());
          break;
      }
      ptr[i] = text[i].c_str();
    }
    pqxx::result r;
    guarded(sql, [&] {
      const auto& st = c_.prepared(sql);
      if (st.params != params.size()) {
        throw Error(ErrorCode::kInternal, "SQL expects " + std::to_string(st.params) +
                                              " parameters, got " + std::to_string(params.size()) +
                                              " [" + std::string(sql.substr(0, 200)) + "]");
      }
      r = t_.exec_prepared(st.name, pqxx::prepare::make_dynamic_params(ptr));
    });
    return r;
  }

  template <class F>
  void guarded(std::string_view sql, F&& f) {
    try {
      f();
    } catch (...) {
      bool broken = false;
      Error e = translate(sql, broken);
      if (broken) c_.mark_broken();
      throw e;
    }
  }

  Connection& c_;
  pqxx::transaction_base& t_;
};

// The marker row of each write transaction: after a COMMIT whose answer was
// lost, its presence says whether the transaction committed.
constexpr const char* kCommitMarksTable =
    "CREATE TABLE IF NOT EXISTS devcycle_commit_marks ("
    " id TEXT PRIMARY KEY, committed_at BIGINT NOT NULL)";
constexpr std::string_view kInsertMark =
    "INSERT INTO devcycle_commit_marks (id, committed_at) VALUES ($1, $2)";
constexpr std::string_view kPruneMarks =
    "DELETE FROM devcycle_commit_marks WHERE committed_at < $1";
constexpr std::string_view kFindMark = "SELECT 1 FROM devcycle_commit_marks WHERE id = $1";
constexpr int kPruneEvery = 1024;                     // batches
constexpr Micros kMarkLifetime = 3600LL * 1'000'000;  // long past any reconnection

class PostgresDatabase final : public Database {
 public:
  explicit PostgresDatabase(PostgresSettings s) : settings_(std::move(s)) {
    writer_ = std::make_unique<Connection>(settings_);
    prepare_schema(*writer_);
    writes_.start(
        settings_.options.group_commit ? static_cast<std::size_t>(settings_.options.max_batch) : 1,
        [this](std::vector<Request>& batch) { run_batch(batch); });
  }

  ~PostgresDatabase() override { close(); }

  using Database::read;
  using Database::submit;

  void submit(TxnFn fn, DoneFn done) override {
    Request r{std::move(fn), std::move(done)};
    if (!writes_.push(r)) r.done(std::make_exception_ptr(closed_error()));
  }

  void read(const TxnFn& fn) override {
    for (int attempt = 0;; ++attempt) {
      bool reused = false;
      auto conn = readers_.acquire(&reused);
      using ReadTxn = pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>;
      std::optional<ReadTxn> t;
      try {
        t.emplace(conn->raw());  // sends BEGIN
      } catch (...) {
        bool broken = false;
        const Error e = translate({}, broken);
        readers_.release(std::move(conn), true);
        // An idle pooled connection may have died with a server restart;
        // nothing ran yet, so one more try on a new connection is safe.
        if (reused && broken && attempt == 0) continue;
        throw e;
      }
      bool broken = false;
      try {
        PgTxn txn(*conn, *t);
        fn(txn);
        t->commit();
      } catch (...) {
        const Error e = translate({}, broken);
        broken = broken || conn->broken();
        t.reset();
        readers_.release(std::move(conn), broken);
        if (e.code() == ErrorCode::kUnavailable || broken) throw e;
        throw;
      }
      t.reset();
      readers_.release(std::move(conn));
      return;
    }
  }

  void migrate(std::span<const Migration> migrations) override {
    check_migrations(migrations);
    std::vector<Migration> copy(migrations.begin(), migrations.end());
    write([copy = std::move(copy)](Txn& txn) {
      // Engines that open one database at once migrate one after the other.
      txn.execute("SELECT pg_advisory_xact_lock(7411021)");
      apply_migrations(txn, copy, SystemClock::instance()->now());
    });
  }

  Dialect dialect() const noexcept override { return Dialect::kPostgres; }
  std::string url() const override { return settings_.display; }

  Listening listen(std::string channel, std::function<void()> on_notify) override {
    auto handle = std::make_shared<Listener>(Listener{std::move(channel), std::move(on_notify)});
    std::lock_guard lock(listen_mu_);
    if (listen_stop_) return nullptr;
    listeners_.push_back(handle);
    listeners_changed_ = true;
    if (!listen_thread_.joinable()) listen_thread_ = std::thread([this] { listen_loop(); });
    return handle;
  }

  void close() override {
    std::call_once(close_once_, [this] {
      writes_.stop();  // drains the queue first
      writer_.reset();
      {
        std::lock_guard lock(listen_mu_);
        listen_stop_ = true;
      }
      if (listen_thread_.joinable()) listen_thread_.join();
      readers_.close();
    });
  }

 private:
  using Request = WriteQueue::Request;

  struct Listener {
    std::string channel;
    std::function<void()> fn;
  };

  // LISTEN on a connection of its own: waits for notifications (waking every
  // 200 ms to see new channels and close()), and calls the listeners of
  // each. A broken connection is made again after a pause; every listener is
  // called once then, for what it may have missed.
  // Notes which channels were notified during one await_notification().
  class Receiver final : public pqxx::notification_receiver {
   public:
    Receiver(pqxx::connection_base& c, const std::string& channel, std::set<std::string>& woken)
        : pqxx::notification_receiver(c, channel), woken_(woken) {}
    void operator()(const std::string&, int) override { woken_.insert(channel()); }

   private:
    std::set<std::string>& woken_;
  };

  void listen_loop() {
    std::unique_ptr<Connection> conn;
    std::vector<std::unique_ptr<Receiver>> receivers;  // destroyed before conn
    std::set<std::string> listening;
    std::set<std::string> woken;
    for (;;) {
      std::vector<std::weak_ptr<Listener>> live;  // not kept alive by this loop
      bool changed = false;
      {
        std::lock_guard lock(listen_mu_);
        if (listen_stop_) return;
        std::erase_if(listeners_, [](const std::weak_ptr<Listener>& w) { return w.expired(); });
        live = listeners_;
        changed = listeners_changed_;
        listeners_changed_ = false;
      }
      try {
        bool resync = false;
        if (!conn || conn->broken()) {
          receivers.clear();
          conn.reset();
          listening.clear();
          conn = std::make_unique<Connection>(settings_);
          resync = true;
        }
        const auto call = [](const std::weak_ptr<Listener>& w, const std::set<std::string>* only) {
          if (auto l = w.lock(); l && (!only || only->count(l->channel))) l->fn();
        };
        if (changed || resync) {
          for (const auto& w : live) {
            auto l = w.lock();
            if (l && listening.insert(l->channel).second) {  // LISTENs
              receivers.push_back(std::make_unique<Receiver>(conn->raw(), l->channel, woken));
            }
          }
        }
        if (resync) {
          for (const auto& w : live) call(w, nullptr);
        }
        woken.clear();
        conn->raw().await_notification(0, 200'000);
        for (const auto& w : live) call(w, &woken);
      } catch (...) {
        receivers.clear();
        conn.reset();
        std::unique_lock lock(listen_mu_);
        listen_cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return listen_stop_; });
      }
    }
  }

  void prepare_schema(Connection& c) {
    try {
      pqxx::work t(c.raw());
      // Serialise against other processes creating the same schema.
      t.exec("SELECT pg_advisory_xact_lock(7411020)");
      if (!settings_.schema.empty())
        t.exec("CREATE SCHEMA IF NOT EXISTS \"" + settings_.schema + "\"");
      t.exec(kCommitMarksTable);
      t.commit();
    } catch (...) {
      bool broken = false;
      const Error e = translate({}, broken);
      throw Error(ErrorCode::kUnavailable,
                  "database: cannot prepare " + settings_.display + ": " + e.what());
    }
  }

  Error closed_error() const {
    return Error(ErrorCode::kUnavailable, "database " + settings_.display + " is closed");
  }

  // A writer connection that works, or the error that says why there is none.
  Connection* writer(std::exception_ptr& error) {
    if (writer_ && !writer_->broken()) return writer_.get();
    writer_.reset();
    try {
      writer_ = std::make_unique<Connection>(settings_);
      return writer_.get();
    } catch (...) {
      error = std::current_exception();
      return nullptr;
    }
  }

  // After a COMMIT whose answer was lost: did it commit? nullopt = still
  // unknown. The old session (`backend`) may still be finishing that COMMIT:
  // the mark is looked for once it is gone.
  std::optional<bool> committed(const std::string& mark, int backend) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      try {
        Connection c(settings_);
        pqxx::nontransaction t(c.raw());
        PgTxn txn(c, t);
        for (int i = 0; i < 100 && backend > 0; ++i) {
          if (txn.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", {backend}).rows.empty())
            break;
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return !txn.query(kFindMark, {mark}).rows.empty();
      } catch (...) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
      }
    }
    return std::nullopt;
  }

  // One transaction, one SAVEPOINT per closure when there are several; see
  // Database's contract.
  void run_batch(std::vector<Request>& batch) {
    std::vector<std::exception_ptr> errors(batch.size());
    std::size_t failed = 0;
    std::exception_ptr batch_error;
    const bool isolate = batch.size() > 1;
    Connection* c = writer(batch_error);
    const std::string mark = new_uuid_v7();
    int backend = 0;  // the session of this transaction, for committed()
    std::optional<pqxx::work> work;
    for (int attempt = 0; c && !work; ++attempt) {
      const bool fresh = !c->used();
      try {
        work.emplace(c->raw());  // sends BEGIN
        c->set_used();
      } catch (...) {
        bool broken = false;
        const Error e = translate({}, broken);
        c->mark_broken();
        // A connection that served earlier batches may have died with a
        // server restart; no closure ran yet, so a new one may try again.
        c = (broken && !fresh && attempt == 0) ? writer(batch_error) : nullptr;
        if (!c && !batch_error) {
          batch_error = std::make_exception_ptr(
              Error(ErrorCode::kUnavailable, "database " + settings_.display + ": " + e.what()));
        }
      }
    }
    if (c) {
      bool commit_sent = false;
      try {
        pqxx::work& t = *work;
        backend = c->raw().backendpid();
        for (std::size_t i = 0; i < batch.size(); ++i) {
          PgTxn txn(*c, t);
          try {
            if (isolate) t.exec("SAVEPOINT devcycle_closure");
            batch[i].fn(txn);
            if (isolate) t.exec("RELEASE SAVEPOINT devcycle_closure");
          } catch (...) {
            errors[i] = std::current_exception();
            ++failed;
            if (!isolate) break;
            if (c->broken()) throw;  // the whole transaction is gone
            t.exec("ROLLBACK TO SAVEPOINT devcycle_closure; RELEASE SAVEPOINT devcycle_closure");
          }
        }
        if (!isolate && errors[0]) {
          t.abort();
        } else {
          PgTxn txn(*c, t);
          const auto now = SystemClock::instance()->now();
          txn.execute(kInsertMark, {mark, now});
          if (++batches_ % kPruneEvery == 0) txn.execute(kPruneMarks, {now - kMarkLifetime});
          commit_sent = true;
          t.commit();
        }
      } catch (...) {
        bool broken = false;
        Error e = translate({}, broken);
        if (broken) c->mark_broken();
        work.reset();  // rolls back what is left, before anyone is told
        std::optional<bool> outcome = false;
        if (commit_sent && broken) outcome = committed(mark, backend);
        if (outcome == std::nullopt) {
          batch_error = std::make_exception_ptr(
              Error(ErrorCode::kUnavailable,
                    "database " + settings_.display +
                        ": the connection broke during COMMIT and its outcome could not be "
                        "checked: " +
                        e.what()));
        } else if (!*outcome) {
          batch_error = std::make_exception_ptr(
              Error(e.code() == ErrorCode::kInternal ? ErrorCode::kUnavailable : e.code(),
                    "database " + settings_.display +
                        ": the shared transaction failed; nothing of this closure was "
                        "written: " +
                        e.what()));
        }
        // outcome == true: the COMMIT went through; only its answer was lost.
      }
      work.reset();
    }
    if (batch_error) {
      for (auto& err : errors) {
        if (!err) err = batch_error;
      }
      failed = batch.size();
    }
    end_batch_(batch, errors, failed);
  }

  PostgresSettings settings_;
  std::unique_ptr<Connection> writer_;  // writer thread only (and the constructor)
  std::uint64_t batches_ = 0;

  std::once_flag close_once_;

  std::mutex listen_mu_;  // guards listeners_, listeners_changed_, listen_stop_
  std::condition_variable listen_cv_;
  std::vector<std::weak_ptr<Listener>> listeners_;
  bool listeners_changed_ = false;
  bool listen_stop_ = false;
  std::thread listen_thread_;

  ConnectionPool<Connection> readers_{settings_.options.readers,
                                      [this] { return std::make_unique<Connection>(settings_); },
                                      [this] { return closed_error(); }};
  BatchEnd end_batch_{settings_.options.metrics};
  WriteQueue writes_;  // last: its thread stops first
};

}  // namespace

PostgresSettings parse_postgres_url(const std::string& url, DatabaseOptions options,
                                    std::string_view label) {
  const Url parsed = parse_url(url, label);  // shape and percent-encoding
  if (parsed.hosts.empty() || parsed.hosts.front().host.empty())
    bad_url(label, url, "missing host (postgresql://user@host:5432/dbname)");
  if (parsed.path.size() <= 1)
    bad_url(label, url, "missing database name (postgresql://user@host:5432/dbname)");
  PostgresSettings s;
  s.options = std::move(options);
  s.display = redact_url(url);
  const auto q = url.find('?');
  std::string conninfo = url.substr(0, q);
  std::string passed;
  if (q != std::string::npos) {
    std::string_view rest = std::string_view(url).substr(q + 1);
    while (!rest.empty()) {
      const auto amp = rest.find('&');
      const auto part = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
      const auto pairs = parse_query(part, label, url);
      if (pairs.empty()) continue;
      const auto& [k, v] = pairs.front();
      if (k == "schema") {
        if (!valid_schema_name(v))
          bad_url(label, url,
                  "schema=" + v +
                      " must be 1 to 63 lowercase letters, digits and '_', not "
                      "starting with a digit");
        s.schema = v;
      } else if (!apply_common_parameter(
                     k, v, s.options, [&](const std::string& why) { bad_url(label, url, why); })) {
        passed += (passed.empty() ? "?" : "&") + std::string(part);
      }
    }
  }
  conninfo += passed;
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (!opts) {
    std::string reason = err ? err : "libpq cannot parse it";
    PQfreemem(err);
    while (!reason.empty() && reason.back() == '\n') reason.pop_back();
    bad_url(label, url, reason);
  }
  PQconninfoFree(opts);
  s.conninfo = std::move(conninfo);
  check_options(s.options);
  return s;
}

std::unique_ptr<Database> open_postgres_database(const std::string& url,
                                                 const DatabaseOptions& options) {
  auto settings = parse_postgres_url(url, options, "database");
  auto migrations = settings.options.migrations;
  auto db = std::make_unique<PostgresDatabase>(std::move(settings));
  db->migrate(migrations);
  return db;
}

}  // namespace devcycle::internal
