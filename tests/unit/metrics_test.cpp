#include "devcycle/observability/metrics.h"

#include <gtest/gtest.h>

#include <thread>

#include "support/error_matchers.h"

namespace devcycle {
namespace {

TEST(MetricsTest, RendersCountersAndGaugesInPrometheusText) {
  MetricsRegistry r;
  r.counter("requests_total", "Requests served", {{"route", "/api/v1/runs"}, {"code", "200"}})
      .inc(3);
  r.counter("requests_total", "Requests served", {{"code", "404"}, {"route", "/x"}}).inc();
  r.gauge("agents", "Agents by status", {{"status", "online"}}).set(2.5);
  EXPECT_EQ(r.render_prometheus(),
            "# HELP devcycle_agents Agents by status\n"
            "# TYPE devcycle_agents gauge\n"
            "devcycle_agents{status=\"online\"} 2.5\n"
            "# HELP devcycle_requests_total Requests served\n"
            "# TYPE devcycle_requests_total counter\n"
            "devcycle_requests_total{code=\"200\",route=\"/api/v1/runs\"} 3\n"
            "devcycle_requests_total{code=\"404\",route=\"/x\"} 1\n");
}

TEST(MetricsTest, RendersHistogramsCumulatively) {
  MetricsRegistry r;
  auto& h = r.histogram("latency_seconds", "Latency", {0.1, 1});
  h.observe(0.05);
  h.observe(0.1);  // on the bound: counts in le="0.1"
  h.observe(0.5);
  h.observe(7);
  EXPECT_EQ(r.render_prometheus(),
            "# HELP devcycle_latency_seconds Latency\n"
            "# TYPE devcycle_latency_seconds histogram\n"
            "devcycle_latency_seconds_bucket{le=\"0.1\"} 2\n"
            "devcycle_latency_seconds_bucket{le=\"1\"} 3\n"
            "devcycle_latency_seconds_bucket{le=\"+Inf\"} 4\n"
            "devcycle_latency_seconds_sum 7.65\n"
            "devcycle_latency_seconds_count 4\n");
}

TEST(MetricsTest, EscapesLabelValuesAndHelp) {
  MetricsRegistry r;
  r.gauge("g", "line one\nback\\slash", {{"path", "a\"b\\c\nd"}}).set(1);
  const auto text = r.render_prometheus();
  EXPECT_NE(text.find("# HELP devcycle_g line one\\nback\\\\slash\n"), std::string::npos) << text;
  EXPECT_NE(text.find("devcycle_g{path=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos) << text;
}

TEST(MetricsTest, SameNameAndLabelsIsTheSameMetric) {
  MetricsRegistry r;
  auto& a = r.counter("c", "help", {{"k", "v"}});
  auto& b = r.counter("c", "other help", {{"k", "v"}});
  auto& other = r.counter("c", "help", {{"k", "w"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &other);
}

TEST(MetricsTest, RefusesBadNamesLabelsAndTypeClashes) {
  MetricsRegistry r;
  EXPECT_DEVCYCLE_ERROR(r.counter("bad-name", ""), ErrorCode::kInvalidArgument, "bad-name");
  EXPECT_DEVCYCLE_ERROR(r.counter("9lives", ""), ErrorCode::kInvalidArgument, "9lives");
  EXPECT_DEVCYCLE_ERROR(r.counter("c", "", {{"bad label", "x"}}), ErrorCode::kInvalidArgument,
                        "bad label");
  EXPECT_DEVCYCLE_ERROR(r.counter("c", "", {{"__reserved", "x"}}), ErrorCode::kInvalidArgument,
                        "__reserved");
  EXPECT_DEVCYCLE_ERROR(r.histogram("h", "", {1}, {{"le", "x"}}), ErrorCode::kInvalidArgument,
                        "le");
  EXPECT_DEVCYCLE_ERROR(r.counter("c", "", {{"a", "1"}, {"a", "2"}}), ErrorCode::kInvalidArgument,
                        "given twice");
  r.counter("used", "");
  EXPECT_DEVCYCLE_ERROR(r.gauge("used", ""), ErrorCode::kAlreadyExists, "devcycle_used", "counter");
  r.histogram("h2", "", {1, 2});
  EXPECT_DEVCYCLE_ERROR(r.histogram("h2", "", {1, 3}), ErrorCode::kAlreadyExists, "other buckets");
  EXPECT_DEVCYCLE_ERROR(r.histogram("h3", "", {2, 1}), ErrorCode::kInvalidArgument, "increasing");
  EXPECT_DEVCYCLE_ERROR(r.counter("c2", "").inc(-1), ErrorCode::kInvalidArgument, ">= 0");
}

TEST(MetricsTest, BucketHelpers) {
  EXPECT_EQ(Histogram::exponential_buckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(Histogram::default_buckets().front(), 0.005);
  EXPECT_DEVCYCLE_ERROR(Histogram::exponential_buckets(0, 2, 4), ErrorCode::kInvalidArgument,
                        "start > 0");
}

TEST(MetricsTest, ConcurrentUpdatesAreExact) {
  MetricsRegistry r;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        r.counter("hits_total", "").inc();
        r.gauge("level", "").inc();
        r.histogram("sizes", "", {10}).observe(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(r.counter("hits_total", "").value(), 40000);
  EXPECT_EQ(r.gauge("level", "").value(), 40000);
  EXPECT_EQ(r.histogram("sizes", "", {10}).count(), 40000u);
}

TEST(MetricsTest, NamespaceIsConfigurable) {
  MetricsRegistry r("acme");
  r.counter("x_total", "X").inc();
  EXPECT_NE(r.render_prometheus().find("acme_x_total 1\n"), std::string::npos);
}

}  // namespace
}  // namespace devcycle
