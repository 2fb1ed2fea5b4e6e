// What the SQLite and PostgreSQL backends share: the queue of submitted
// closures that one writer thread takes in batches (group commit), and a
// pool of read connections. Internal.
#pragma once

#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "devcycle/common/error.h"
#include "devcycle/observability/metrics.h"
#include "devcycle/store/database.h"

namespace devcycle::internal {

// The URL parameters every backend takes: busy_timeout_ms, readers and
// group_commit, applied to `o`. Returns false for any other key; calls
// `bad` (which throws) with the reason for a bad value.
inline bool apply_common_parameter(const std::string& key, const std::string& value,
                                   DatabaseOptions& o,
                                   const std::function<void(const std::string&)>& bad) {
  const auto number = [&](int lo, int hi) {
    int out = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
    if (ec != std::errc() || end != value.data() + value.size() || out < lo || out > hi) {
      bad(key + "=" + value + " is not a number from " + std::to_string(lo) + " to " +
          std::to_string(hi));
    }
    return out;
  };
  if (key == "busy_timeout_ms") {
    o.busy_timeout = std::chrono::milliseconds(number(0, 3'600'000));
  } else if (key == "readers") {
    o.readers = number(1, 64);
  } else if (key == "group_commit") {
    if (value != "true" && value != "false")
      bad("group_commit=" + value + " must be true or false");
    o.group_commit = value == "true";
  } else {
    return false;
  }
  return true;
}

// Checks what no URL can set wrong but a caller's DatabaseOptions can.
inline void check_options(const DatabaseOptions& o) {
  if (o.max_batch < 1) {
    throw Error(ErrorCode::kInvalidArgument, "database options: max_batch must be at least 1");
  }
  if (o.readers < 1) {
    throw Error(ErrorCode::kInvalidArgument, "database options: readers must be at least 1");
  }
}

class WriteQueue {
 public:
  struct Request {
    Database::TxnFn fn;
    Database::DoneFn done;
  };
  using RunBatch = std::function<void(std::vector<Request>&)>;

  WriteQueue() = default;
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;
  ~WriteQueue() { stop(); }

  // Starts the writer thread: it hands run_batch every request queued while
  // it was busy, up to `max_batch` at a time.
  void start(std::size_t max_batch, RunBatch run_batch) {
    max_batch_ = max_batch;
    run_batch_ = std::move(run_batch);
    thread_ = std::thread([this] { loop(); });
  }

  // Queues a request; false (and `r` untouched) once stop() began.
  bool push(Request& r) {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(r));
    cv_.notify_one();
    return true;
  }

  // Runs every queued request, then ends the thread. Idempotent.
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void loop() {
    std::vector<Request> batch;
    for (;;) {
      batch.clear();
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
        if (queue_.empty()) return;  // stopping, and everything queued is done
        while (!queue_.empty() && batch.size() < max_batch_) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      run_batch_(batch);
    }
  }

  std::size_t max_batch_ = 1;
  RunBatch run_batch_;
  std::mutex mu_;  // guards queue_ and stopping_
  std::condition_variable cv_;
  std::deque<Request> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

// The end of one group commit: counts it (when the database has metrics)
// and tells each closure how it ended — nullptr after COMMIT, or its error.
class BatchEnd {
 public:
  explicit BatchEnd(const std::shared_ptr<MetricsRegistry>& m) {
    if (!m) return;
    commits_ = &m->counter("db_commits_total", "Transactions committed by the database writer");
    failed_ = &m->counter("db_closures_failed_total", "Submitted closures that were rolled back");
    batch_ = &m->histogram("db_batch_size", "Closures per group commit",
                           Histogram::exponential_buckets(1, 2, 10));
  }

  void operator()(std::vector<WriteQueue::Request>& batch,
                  const std::vector<std::exception_ptr>& errors, std::size_t failed) const {
    if (commits_) {
      commits_->inc();
      failed_->inc(static_cast<double>(failed));
      batch_->observe(static_cast<double>(batch.size()));
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      try {
        batch[i].done(errors[i]);
      } catch (...) {
        // A completion callback must not throw; there is nobody to tell.
      }
    }
  }

 private:
  Counter* commits_ = nullptr;
  Counter* failed_ = nullptr;
  Histogram* batch_ = nullptr;
};

// Read connections: at most `max` open, made on demand, kept when idle.
template <class Connection>
class ConnectionPool {
 public:
  using Make = std::function<std::unique_ptr<Connection>()>;

  ConnectionPool(int max, Make make, std::function<Error()> closed_error)
      : max_(max), make_(std::move(make)), closed_error_(std::move(closed_error)) {}

  // An idle connection (`*reused` = true) or a new one; waits while `max`
  // are in use. Throws closed_error() after close(), or what make() throws.
  std::unique_ptr<Connection> acquire(bool* reused = nullptr) {
    std::unique_lock lock(mu_);
    for (;;) {
      if (closed_) throw closed_error_();
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        if (reused) *reused = true;
        return c;
      }
      if (open_ < max_) {
        ++open_;
        lock.unlock();
        if (reused) *reused = false;
        try {
          return make_();
        } catch (...) {
          lock.lock();
          --open_;
          cv_.notify_one();
          throw;
        }
      }
      cv_.wait(lock);
    }
  }

  // Gives `c` back. `broken`: it is dropped, and so is every idle one (the
  // server went away: they are as dead).
  void release(std::unique_ptr<Connection> c, bool broken = false) {
    std::lock_guard lock(mu_);
    if (broken) {
      open_ -= 1 + static_cast<int>(idle_.size());
      idle_.clear();
    } else if (closed_) {
      --open_;
    } else {
      idle_.push_back(std::move(c));
    }
    cv_.notify_all();
  }

  // Closes the idle connections and refuses new acquisitions.
  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    open_ -= static_cast<int>(idle_.size());
    idle_.clear();
    cv_.notify_all();
  }

 private:
  const int max_;
  Make make_;
  std::function<Error()> closed_error_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_ = 0;
  bool closed_ = false;
};

}  // namespace devcycle::internal
