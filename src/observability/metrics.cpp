#include "devcycle/observability/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <variant>

#include "devcycle/common/error.h"

namespace devcycle {
namespace {

enum Type { kCounter = 0, kGauge = 1, kHistogram = 2 };
constexpr const char* kTypeNames[] = {"counter", "gauge", "histogram"};

bool valid_name(std::string_view s, bool allow_colon) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string format_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

std::string escape(std::string_view s, bool quote) {
  std::string out;
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (quote && c == '"')
      out += "\\\"";
    else
      out.push_back(c);
  }
  return out;
}

std::string render_labels(const Labels& labels, const std::string* le = nullptr) {
  if (labels.empty() && !le) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k + "=\"" + escape(v, true) + "\"";
  }
  if (le) out += std::string(first ? "" : ",") + "le=\"" + *le + "\"";
  return out + "}";
}

}  // namespace

void Counter::inc(double by) {
  if (!(by >= 0)) {
    throw Error(ErrorCode::kInvalidArgument,
                "counter increment must be >= 0, got " + format_number(by));
  }
  value_.fetch_add(by, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1])) {
      throw Error(ErrorCode::kInvalidArgument,
                  "histogram buckets: must be finite and strictly increasing (bucket " +
                      std::to_string(i) + " is " + format_number(bounds_[i]) + ")");
    }
  }
  buckets_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i] = 0;
}

void Histogram::observe(double v) noexcept {
  const auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                          bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::uint64_t Histogram::cumulative_count(std::size_t i) const noexcept {
  std::uint64_t total = 0;
  for (std::size_t b = 0; b <= std::min(i, bounds_.size()); ++b) {
    total += buckets_[b].load(std::memory_order_relaxed);
  }
  return total;
}

std::vector<double> Histogram::default_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> Histogram::exponential_buckets(double start, double factor, int count) {
  if (!(start > 0) || !(factor > 1) || count < 1) {
    throw Error(ErrorCode::kInvalidArgument,
                "exponential_buckets: need start > 0, factor > 1 and count >= 1");
  }
  std::vector<double> out;
  for (int i = 0; i < count; ++i, start *= factor) out.push_back(start);
  return out;
}

struct MetricsRegistry::Family {
  int type;
  std::string help;
  std::vector<double> bounds;
  std::map<Labels, std::variant<std::unique_ptr<Counter>, std::unique_ptr<Gauge>,
                                std::unique_ptr<Histogram>>>
      series;
};

MetricsRegistry::MetricsRegistry(std::string ns) : ns_(std::move(ns)) {
  if (!ns_.empty() && !valid_name(ns_, false)) {
    throw Error(ErrorCode::kInvalidArgument,
                "metrics namespace \"" + ns_ + "\" is not a valid name");
  }
}

MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Family& MetricsRegistry::family(std::string_view name, std::string_view help,
                                                 int type, Labels& labels) {
  if (!valid_name(name, true)) {
    throw Error(ErrorCode::kInvalidArgument,
                "metric name \"" + std::string(name) + "\" must match [a-zA-Z_:][a-zA-Z0-9_:]*");
  }
  std::sort(labels.begin(), labels.end());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const auto& key = labels[i].first;
    if (!valid_name(key, false) || key.starts_with("__") || key == "le") {
      throw Error(ErrorCode::kInvalidArgument,
                  "metric " + std::string(name) + ": label name \"" + key + "\" is not allowed");
    }
    if (i > 0 && labels[i - 1].first == key) {
      throw Error(ErrorCode::kInvalidArgument,
                  "metric " + std::string(name) + ": label \"" + key + "\" given twice");
    }
  }
  const std::string full = ns_.empty() ? std::string(name) : ns_ + "_" + std::string(name);
  auto it = families_.find(full);
  if (it == families_.end()) {
    auto f = std::make_unique<Family>();
    f->type = type;
    f->help = std::string(help);
    it = families_.emplace(full, std::move(f)).first;
  } else if (it->second->type != type) {
    throw Error(ErrorCode::kAlreadyExists,
                "metric " + full + " is already registered as a " + kTypeNames[it->second->type]);
  }
  return *it->second;
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help, Labels labels) {
  std::lock_guard lock(mu_);
  auto& f = family(name, help, kCounter, labels);
  auto& slot = f.series[labels];
  if (std::holds_alternative<std::unique_ptr<Counter>>(slot) &&
      !std::get<std::unique_ptr<Counter>>(slot)) {
    slot = std::make_unique<Counter>();
  }
  return *std::get<std::unique_ptr<Counter>>(slot);
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, Labels labels) {
  std::lock_guard lock(mu_);
  auto& f = family(name, help, kGauge, labels);
  auto [it, inserted] = f.series.try_emplace(labels, std::unique_ptr<Gauge>());
  if (inserted) it->second = std::make_unique<Gauge>();
  return *std::get<std::unique_ptr<Gauge>>(it->second);
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                      std::vector<double> upper_bounds, Labels labels) {
  auto h = std::make_unique<Histogram>(upper_bounds);  // validates the buckets
  std::lock_guard lock(mu_);
  auto& f = family(name, help, kHistogram, labels);
  if (f.series.empty() && f.bounds.empty()) f.bounds = upper_bounds;
  if (f.bounds != upper_bounds) {
    throw Error(ErrorCode::kAlreadyExists, "metric " + ns_ + "_" + std::string(name) +
                                               " is already registered with other buckets");
  }
  auto [it, inserted] = f.series.try_emplace(labels, std::unique_ptr<Histogram>());
  if (inserted) it->second = std::move(h);
  return *std::get<std::unique_ptr<Histogram>>(it->second);
}

std::uint64_t MetricsRegistry::add_collector(std::function<void()> refresh) {
  std::lock_guard lock(collectors_mu_);
  collectors_.emplace(++next_collector_, std::move(refresh));
  return next_collector_;
}

void MetricsRegistry::remove_collector(std::uint64_t id) {
  std::lock_guard lock(collectors_mu_);
  collectors_.erase(id);
}

std::string MetricsRegistry::render_prometheus() const {
  {
    // Run under their own lock (so that a removal waits for a running one),
    // never under the families' lock, which the gauges they set take.
    std::lock_guard collectors_lock(collectors_mu_);
    for (const auto& [id, refresh] : collectors_) refresh();
  }
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + escape(f->help, false) + "\n";
    out += "# TYPE " + name + " " + kTypeNames[f->type] + "\n";
    for (const auto& [labels, metric] : f->series) {
      if (const auto* c = std::get_if<std::unique_ptr<Counter>>(&metric)) {
        out += name + render_labels(labels) + " " + format_number((*c)->value()) + "\n";
      } else if (const auto* g = std::get_if<std::unique_ptr<Gauge>>(&metric)) {
        out += name + render_labels(labels) + " " + format_number((*g)->value()) + "\n";
      } else {
        const auto& h = *std::get<std::unique_ptr<Histogram>>(metric);
        const auto& bounds = h.upper_bounds();
        for (std::size_t i = 0; i <= bounds.size(); ++i) {
          const std::string le = i < bounds.size() ? format_number(bounds[i]) : "+Inf";
          out += name + "_bucket" + render_labels(labels, &le) + " " +
                 std::to_string(h.cumulative_count(i)) + "\n";
        }
        out += name + "_sum" + render_labels(labels) + " " + format_number(h.sum()) + "\n";
        out += name + "_count" + render_labels(labels) + " " + std::to_string(h.count()) + "\n";
      }
    }
  }
  return out;
}

}  // namespace devcycle
