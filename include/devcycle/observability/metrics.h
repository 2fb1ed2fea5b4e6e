// Metrics: counters, gauges and fixed-bucket histograms, rendered in the
// Prometheus text exposition format (version 0.0.4).
//
// Names are given without the namespace and rendered with it:
// counter("db_commits_total") is exposed as devcycle_db_commits_total.
// Registering the same name and labels again returns the same metric, so
// modules may look metrics up wherever they need them. References stay valid
// for the registry's lifetime.
//
// Thread-safety: the registry and every metric may be used from any thread;
// updates are lock-free atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace devcycle {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  // Throws Error{kInvalidArgument} when `by` is negative: counters only grow.
  void inc(double by = 1);
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void inc(double by = 1) noexcept { value_.fetch_add(by, std::memory_order_relaxed); }
  void dec(double by = 1) noexcept { value_.fetch_sub(by, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // `upper_bounds` strictly increasing and finite; +Inf is implicit.
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v) noexcept;

  const std::vector<double>& upper_bounds() const noexcept { return bounds_; }
  // Cumulative count of observations <= upper_bounds()[i]; i == size() is +Inf.
  std::uint64_t cumulative_count(std::size_t i) const noexcept;
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

  // 5 ms .. 10 s, the Prometheus client default, for latencies in seconds.
  static std::vector<double> default_buckets();
  // start, start*factor, ... (`count` bounds).
  static std::vector<double> exponential_buckets(double start, double factor, int count);

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // per bucket, not cumulative
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

class MetricsRegistry {
 public:
  // `ns` prefixes every name ("devcycle" -> devcycle_<name>).
  explicit MetricsRegistry(std::string ns = "devcycle");
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Each throws Error{kInvalidArgument} naming the name or label that is not a
  // valid Prometheus name, or a label name used twice; Error{kAlreadyExists}
  // when the name is registered as another type (or, for a histogram, with
  // other buckets).
  Counter& counter(std::string_view name, std::string_view help, Labels labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, Labels labels = {});
  Histogram& histogram(std::string_view name, std::string_view help,
                       std::vector<double> upper_bounds = Histogram::default_buckets(),
                       Labels labels = {});

  // Every family sorted by name, each with # HELP and # TYPE, series sorted by labels.
  // The collectors run first.
  std::string render_prometheus() const;

  // `refresh` runs at the start of every render_prometheus() (outside the
  // registry's lock), to set gauges whose value is read rather than counted
  // (queue depths). Its owner removes it, by the id returned, before what it
  // reads goes away.
  std::uint64_t add_collector(std::function<void()> refresh);
  void remove_collector(std::uint64_t id);

 private:
  struct Family;
  Family& family(std::string_view name, std::string_view help, int type, Labels& labels);

  std::string ns_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family>, std::less<>> families_;
  mutable std::mutex collectors_mu_;
  std::uint64_t next_collector_ = 0;
  std::map<std::uint64_t, std::function<void()>> collectors_;
};

}  // namespace devcycle
