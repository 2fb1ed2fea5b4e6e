// The Kafka broker that scripts/kafka.sh starts works with Debian's
// librdkafka as the Kafka backend needs it: an idempotent producer with
// acks=all gets a producer id, and every message is acknowledged. This
// fails if the broker were one (such as Kafka 4.x) with which librdkafka
// 2.0.2 turns idempotence off. And the bus's own producers are configured
// so: it fails if one of them is not idempotent with acks=all.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "devcycle/common/clock.h"
#include "devcycle/messaging/messaging.h"
#include "messaging/kafka/kafka_bus.h"

// librdkafka's C macros (RD_KAFKA_V_*) cast the C way.
#pragma GCC diagnostic ignored "-Wold-style-cast"

namespace {

std::string brokers() {
  const char* b = std::getenv("DEVCYCLE_TEST_KAFKA");
  return b ? b : "127.0.0.1:19692";
}

struct Stats {
  std::string json;
  int delivered = 0;
  int failed = 0;
};

TEST(KafkaBrokerTest, IdempotentProducerGetsAProducerIdAndEveryMessageIsAcknowledged) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const char* k, const char* v) {
    ASSERT_EQ(rd_kafka_conf_set(conf, k, v, err, sizeof err), RD_KAFKA_CONF_OK) << k << ": " << err;
  };
  set("bootstrap.servers", brokers().c_str());
  set("enable.idempotence", "true");
  set("acks", "all");
  set("statistics.interval.ms", "100");
  Stats stats;
  rd_kafka_conf_set_opaque(conf, &stats);
  rd_kafka_conf_set_stats_cb(conf, [](rd_kafka_t*, char* json, size_t len, void* opaque) {
    static_cast<Stats*>(opaque)->json.assign(json, len);
    return 0;
  });
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* s = static_cast<Stats*>(opaque);
    if (m->err) {
      ++s->failed;
    } else {
      ++s->delivered;
    }
  });
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  ASSERT_NE(rk, nullptr) << err;

  constexpr int kMessages = 2000;
  for (int i = 0; i < kMessages; ++i) {
    const std::string value = "message " + std::to_string(i);
    while (true) {
      const auto e =
          rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("devcycle.test.idempotence"),
                            RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk, 50);  // back-pressure, never loss
        continue;
      }
      ASSERT_EQ(e, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(e);
      break;
    }
    rd_kafka_poll(rk, 0);
  }
  ASSERT_EQ(rd_kafka_flush(rk, 60'000), RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(stats.delivered, kMessages);
  EXPECT_EQ(stats.failed, 0);
  char reason[512];
  EXPECT_EQ(rd_kafka_fatal_error(rk, reason, sizeof reason), RD_KAFKA_RESP_ERR_NO_ERROR) << reason;

  // The statistics say whether idempotence is really on: a producer id
  // assigned by the broker.
  for (int i = 0; i < 50 && stats.json.find("\"eos\"") == std::string::npos; ++i)
    rd_kafka_poll(rk, 100);
  rd_kafka_poll(rk, 200);
  ASSERT_FALSE(stats.json.empty()) << "no statistics from librdkafka";
  const auto s = nlohmann::json::parse(stats.json);
  ASSERT_TRUE(s.contains("eos")) << "librdkafka reports no idempotence state: " << stats.json;
  EXPECT_EQ(s["eos"]["idemp_state"], "Assigned") << s["eos"].dump();
  EXPECT_GE(s["eos"]["producer_id"].get<long long>(), 0) << s["eos"].dump();
  rd_kafka_destroy(rk);
}

// The bus's own producers, publish()'s and the batches' alike, are
// idempotent with acks=all: the test above shows that this broker then
// gives them a producer id.
TEST(KafkaBrokerTest, EveryProducerOfTheBusIsIdempotentWithAcksAll) {
  devcycle::BusOptions o;
  o.clock = std::make_shared<devcycle::ManualClock>();
  auto bus = devcycle::internal::open_kafka_bus("kafka://" + brokers(), o);
  bus->publish({"devcycle.test.idempotence", "", {}, "one"}).get();
  bus->publish_batch({{"devcycle.test.idempotence", "", {}, "two"}}).get();
  bus->publish_batch({{"devcycle.test.idempotence", "", {}, "three"}}).get();
  const auto producers = devcycle::internal::kafka_producer_settings(
      *bus, {"enable.idempotence", "acks", "transactional.id"});
  ASSERT_EQ(producers.size(), 3u) << "publish()'s and two for batches";
  for (std::size_t i = 0; i < producers.size(); ++i) {
    const auto& p = producers[i];
    EXPECT_EQ(p.at("enable.idempotence"), "true") << i;
    EXPECT_TRUE(p.at("acks") == "-1" || p.at("acks") == "all") << i << ": " << p.at("acks");
    EXPECT_EQ(p.count("transactional.id") && !p.at("transactional.id").empty(), i > 0) << i;
  }
}

}  // namespace
