#include "messaging/kafka/handles.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace devcycle::internal::kafka {

using namespace std::chrono_literals;

PartitionList new_partition_list(int size) {
  return PartitionList(rd_kafka_topic_partition_list_new(size),
                       &rd_kafka_topic_partition_list_destroy);
}

Error unavailable(const std::string& what, rd_kafka_resp_err_t err) {
  return Error(ErrorCode::kUnavailable, "kafka: " + what + ": " + rd_kafka_err2str(err));
}

Error unavailable(const std::string& what, rd_kafka_error_t* error) {
  std::string message = rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  return Error(ErrorCode::kUnavailable, "kafka: " + what + ": " + message);
}

rd_kafka_conf_t* make_conf(const std::vector<std::pair<std::string, std::string>>& settings) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  for (const auto& [k, v] : settings) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw Error(ErrorCode::kInternal, "kafka: setting " + k + "=" + v + ": " + err);
    }
  }
  return conf;
}

Client make_client(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);  // only a successful rd_kafka_new takes it
    throw Error(ErrorCode::kUnavailable, std::string("kafka: cannot create a client: ") + err);
  }
  return Client(rk, &rd_kafka_destroy);
}

std::int64_t timestamp_ms(const rd_kafka_message_t* m) {
  rd_kafka_timestamp_type_t type;
  return std::max<std::int64_t>(0, rd_kafka_message_timestamp(m, &type));
}

rd_kafka_resp_err_t watermarks(rd_kafka_t* rk, const std::string& topic, std::int32_t partition,
                               std::int64_t& low, std::int64_t& high) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    const auto err =
        rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high, 10'000);
    const bool settling = err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                          err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                          err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    if (!settling || std::chrono::steady_clock::now() > deadline) return err;
    std::this_thread::sleep_for(50ms);
  }
}

}  // namespace devcycle::internal::kafka
