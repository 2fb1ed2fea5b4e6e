// The librdkafka handles the Kafka bus holds, owned by RAII wrappers, and
// the few calls on them that every part of the bus makes. Internal to the
// kafka:// backend.
//
// Thread-safety: librdkafka's own (a client may be used from any thread).
// Errors: librdkafka's are rethrown here as devcycle::Error (kUnavailable,
// or kInternal for a setting librdkafka refuses), each naming what failed.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "devcycle/common/error.h"

namespace devcycle::internal::kafka {

using Client = std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)>;
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t,
                                      decltype(&rd_kafka_topic_partition_list_destroy)>;

// A partition list of room for `size`, owned.
PartitionList new_partition_list(int size);

// Error{kUnavailable} "kafka: <what>: <librdkafka's text>". The second form
// destroys `error`.
Error unavailable(const std::string& what, rd_kafka_resp_err_t err);
Error unavailable(const std::string& what, rd_kafka_error_t* error);

// A configuration of `settings`; the caller owns it until make_client()
// takes it. Throws Error{kInternal} naming a setting librdkafka refuses.
rd_kafka_conf_t* make_conf(const std::vector<std::pair<std::string, std::string>>& settings);

// A client of `type`; takes `conf` (also on failure). Throws
// Error{kUnavailable} when librdkafka cannot create it.
Client make_client(rd_kafka_type_t type, rd_kafka_conf_t* conf);

// A record's timestamp in milliseconds (0 when it has none).
std::int64_t timestamp_ms(const rd_kafka_message_t* m);

// A partition's first and next offsets. A topic created a moment ago may
// have no leader yet: that is waited out (up to 10 s), not reported.
rd_kafka_resp_err_t watermarks(rd_kafka_t* rk, const std::string& topic, std::int32_t partition,
                               std::int64_t& low, std::int64_t& high);

}  // namespace devcycle::internal::kafka
