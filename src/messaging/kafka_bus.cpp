// kafka://: the message bus on Apache Kafka (librdkafka's C API).
//
// Producing: one idempotent producer (acks=all) for publish(), and one
// transactional producer for publish_batch() (a batch is one Kafka
// transaction: all or nothing). A thread per producer polls delivery
// reports continuously; a publish resolves only on its report. A full local
// queue makes publish() wait (back-pressure), never drop.
//
// Consuming: one Kafka consumer per (topic, group) this bus fetches for, in
// the Kafka consumer group `<topic>/<group>`, subscribed to the topic and to the group's retry
// topic
// `<topic>.retry.<group>`, reading committed data only. What it has taken
// from Kafka and not finished with lives in memory, in offset order (the
// group's "queue"): waiting, handed out (until its visibility timeout), or
// refused and on its way back through the retry topic. A message is handed
// out only when no earlier one of its key is in the queue. The committed
// offset of each partition is the start of its unbroken run of finished
// offsets, so a crash redelivers exactly what was not finished.
//
// A refusal republishes the message to the retry topic with its delivery
// count in a header (Kafka has no per-message nack) and finishes the
// original; after max_deliveries the message goes to `<topic>.dlq.<group>`
// with the reason, the count and its original offset instead.
#include "messaging/kafka_bus.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "common/url.h"
#include "devcycle/common/error.h"
#include "devcycle/common/uuid.h"
#include "messaging/bus_checks.h"
#include "messaging/subscription_threads.h"

// librdkafka's C macros (RD_KAFKA_V_*) cast the C way.
#pragma GCC diagnostic ignored "-Wold-style-cast"

namespace devcycle::internal {

namespace {

using namespace std::chrono_literals;

// Headers the bus adds to what it writes; callers may not use the prefix.
constexpr const char* kIdHeader = "devcycle-id";
constexpr const char* kCountHeader = "devcycle-delivery-count";
constexpr const char* kOffsetHeader = "devcycle-original-offset";
constexpr const char* kPartitionHeader = "devcycle-original-partition";
constexpr const char* kPublishedHeader = "devcycle-published-at";
constexpr const char* kReasonHeader = "devcycle-reason";
constexpr const char* kDeadAtHeader = "devcycle-dead-at";
constexpr std::string_view kReservedPrefix = "devcycle-";

// Kafka's limit on topic names.
constexpr std::size_t kMaxTopicName = 249;

// How long a fetch waits to catch up with what the broker holds.
constexpr auto kCatchUp = 2s;
// A record's bytes beyond its key, value and headers (batch and record
// framing), with room to spare.
constexpr std::size_t kRecordOverhead = 512;

using Client = std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)>;
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t,
                                      decltype(&rd_kafka_topic_partition_list_destroy)>;

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

// A message's id on Kafka, derived from where and when it was stored, so
// that no header has to carry it: a UUID in the version 7 layout whose
// 48-bit time is the record's timestamp (ms), whose 12 rand_a bits are the
// partition, and whose 62 rand_b bits are a 22-bit hash of the topic and
// the offset (40 bits). The producer computes it from the delivery report,
// a consumer from the record: the same value. Copies the bus writes itself
// (retry, dead letters) carry the original id in a header.
std::string message_id(std::string_view topic, std::int32_t partition, std::int64_t offset,
                       std::int64_t timestamp_ms) {
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (const unsigned char c : topic) h = (h ^ c) * 16777619u;
  const std::uint64_t ms =
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, timestamp_ms)) & 0xFFFF'FFFF'FFFFull;
  const std::uint64_t hi = (ms << 16) | 0x7000u | (static_cast<std::uint32_t>(partition) & 0xFFFu);
  const std::uint64_t lo = (0b10ull << 62) | (static_cast<std::uint64_t>(h & 0x3F'FFFFu) << 40) |
                           (static_cast<std::uint64_t>(offset) & 0xFF'FFFF'FFFFull);
  // 8-4-4-4-12 hex digits; by hand, since every report formats one.
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  std::size_t at = 0;
  auto put = [&](std::uint64_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i) out[at++] = kHex[(v >> (4 * i)) & 0xF];
  };
  put(hi >> 32, 8);
  ++at;
  put((hi >> 16) & 0xFFFF, 4);
  ++at;
  put(hi & 0xFFFF, 4);
  ++at;
  put(lo >> 48, 4);
  ++at;
  put(lo & 0xFFFF'FFFF'FFFFull, 12);
  return out;
}

std::int64_t timestamp_ms(const rd_kafka_message_t* m) {
  rd_kafka_timestamp_type_t type;
  return std::max<std::int64_t>(0, rd_kafka_message_timestamp(m, &type));
}

// A partition's first and next offsets. A topic created a moment ago may
// have no leader yet: that is waited out (up to 10 s), not reported.
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

std::string header(const rd_kafka_message_t* m, const char* name) {
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  const void* value = nullptr;
  std::size_t size = 0;
  if (rd_kafka_header_get_last(headers, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      !value)
    return {};
  return std::string(static_cast<const char*>(value), size);
}

std::int64_t header_int(const rd_kafka_message_t* m, const char* name, std::int64_t fallback) {
  const auto text = header(m, name);
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty() ? v : fallback;
}

std::map<std::string, std::string> user_headers(const rd_kafka_message_t* m) {
  std::map<std::string, std::string> out;
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
  const char* name = nullptr;
  const void* value = nullptr;
  std::size_t size = 0;
  for (std::size_t i = 0;
       rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
       ++i) {
    if (std::string_view(name).starts_with(kReservedPrefix)) continue;
    out[name] = value ? std::string(static_cast<const char*>(value), size) : std::string();
  }
  return out;
}

rd_kafka_headers_t* make_headers(const std::map<std::string, std::string>& user,
                                 const std::vector<std::pair<const char*, std::string>>& ours) {
  rd_kafka_headers_t* h = rd_kafka_headers_new(user.size() + ours.size());
  for (const auto& [k, v] : user)
    rd_kafka_header_add(h, k.data(), static_cast<ssize_t>(k.size()), v.data(),
                        static_cast<ssize_t>(v.size()));
  for (const auto& [k, v] : ours)
    rd_kafka_header_add(h, k, -1, v.data(), static_cast<ssize_t>(v.size()));
  return h;
}

// What a delivery report resolves. Between produce and report librdkafka
// holds it; done() runs once, on the producer's poller thread, and disposes
// of it (most delete themselves; a batch's slots belong to their batch).
struct Sent {
  virtual void done(const rd_kafka_message_t* m) = 0;

 protected:
  ~Sent() = default;
};

// Any report handler (the bus's own writes).
struct SentFn final : Sent {
  explicit SentFn(std::function<void(const rd_kafka_message_t*)> f) : fn(std::move(f)) {}
  void done(const rd_kafka_message_t* m) override {
    std::unique_ptr<SentFn> self(this);
    fn(m);
  }
  std::function<void(const rd_kafka_message_t*)> fn;
};

// One publish(): a single allocation besides the future's shared state.
struct SentOne final : Sent {
  explicit SentOne(std::string body) : payload(std::move(body)) {}
  void done(const rd_kafka_message_t* m) override {
    std::unique_ptr<SentOne> self(this);
    const char* topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "?";
    if (m->err) {
      promise.set_exception(std::make_exception_ptr(
          unavailable(std::string("message to ") + topic + " was not delivered", m->err)));
      return;
    }
    const auto ms = timestamp_ms(m);
    promise.set_value(Published{message_id(topic, m->partition, m->offset, ms), m->offset,
                                ms * 1000, m->partition});
  }
  std::promise<Published> promise;
  std::string payload;  // librdkafka reads it in place until the report: no copy
};

// The reports of one publish_batch(): a slot per message, allocated with the
// batch, so that a message costs no allocation and no lock of its own.
class BatchReports {
 public:
  struct Slot final : Sent {
    void done(const rd_kafka_message_t* m) override { batch->report(index, m); }
    BatchReports* batch = nullptr;
    std::size_t index = 0;
  };

  static std::shared_ptr<BatchReports> make(std::size_t n) {
    std::shared_ptr<BatchReports> b(new BatchReports(n));
    b->self_ = b;  // kept alive by its reports until the last has come
    return b;
  }

  Slot* slot(std::size_t i) { return &slots_[i]; }

  // The producing thread is done: `queued` of the messages were queued (the
  // others will never report).
  void queued(std::size_t queued) {
    const std::size_t never = slots_.size() - queued;
    if (never) outstanding_.fetch_sub(never, std::memory_order_acq_rel);
    release();
  }

  bool finished() {
    std::lock_guard lock(mu_);
    return finished_;
  }

  // Waits for every report of a batch whose messages were all queued; throws
  // if one failed. The ids are left to the caller (message_id()), whose
  // thread then allocates and frees them.
  std::vector<Published> wait() {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, 60s, [&] { return finished_; }))
      throw Error(ErrorCode::kUnavailable, "kafka: the batch's delivery reports did not come");
    if (!error_.empty())
      throw Error(ErrorCode::kUnavailable, "kafka: batch not delivered: " + error_);
    return std::move(published_);
  }

 private:
  explicit BatchReports(std::size_t n) : published_(n), slots_(n), outstanding_(n + 1) {
    for (std::size_t i = 0; i < n; ++i) {
      slots_[i].batch = this;
      slots_[i].index = i;
    }
  }

  void report(std::size_t index, const rd_kafka_message_t* m) {
    auto& p = published_[index];
    const auto ms = timestamp_ms(m);
    p.offset = m->offset;
    p.partition = m->partition;
    p.published_at = ms * 1000;
    if (m->err) {
      std::lock_guard lock(mu_);
      if (error_.empty()) error_ = rd_kafka_err2str(m->err);
    }
    release();
  }

  void release() {
    if (outstanding_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    const auto keep = std::move(self_);  // the last one out: may be the only owner left
    {
      std::lock_guard lock(mu_);
      finished_ = true;
    }
    cv_.notify_all();
  }

  std::vector<Published> published_;  // each slot writes only its own entry
  std::vector<Slot> slots_;
  std::atomic<std::size_t> outstanding_;  // reports to come, plus one for the producing thread
  std::shared_ptr<BatchReports> self_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;
  std::string error_;
};

// A producer with a thread that polls its delivery reports continuously.
class Producer {
 public:
  Producer(const std::string& brokers, bool transactional, const std::string& client_id,
           int close_timeout_ms, std::size_t max_record_bytes)
      : close_timeout_ms_(close_timeout_ms) {
    std::vector<std::pair<std::string, std::string>> settings{
        {"bootstrap.servers", brokers},
        {"client.id", client_id},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", "5"},
        {"message.timeout.ms", "120000"},
        {"message.max.bytes", std::to_string(max_record_bytes)},
    };
    if (transactional) {
      settings.emplace_back("transactional.id", client_id);
      settings.emplace_back("transaction.timeout.ms", "120000");  // >= message.timeout.ms
    }
    rd_kafka_conf_t* conf = make_conf(settings);
    // Delivery reports as events, served by the poller thread: one event
    // carries many reports, and rd_kafka_flush() (also inside a
    // transaction's commit) then waits on a condition instead of polling
    // in 10 ms steps for reports another thread has served.
    rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_DR);
    client_ = make_client(RD_KAFKA_PRODUCER, conf);
    queue_ = rd_kafka_queue_get_main(client_.get());
    poller_ = std::thread([this] {
      while (!stop_) {
        {
          std::unique_lock lock(aside_mu_);
          aside_cv_.wait(lock, [&] { return !aside_ || stop_; });
        }
        if (!stop_) serve(50);
      }
    });
  }

  ~Producer() {
    // Flush on shutdown: every queued message is delivered first. What the
    // broker has not taken within close_timeout_ms is purged, so that its
    // publisher's future fails (with the purge's error) instead of waiting
    // forever.
    if (rd_kafka_flush(client_.get(), close_timeout_ms_) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_purge(client_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_flush(client_.get(), 5'000);  // the poller serves the purged messages' reports
    }
    {
      std::lock_guard lock(aside_mu_);
      stop_ = true;
    }
    aside_cv_.notify_all();
    poller_.join();
    while (serve(0)) {
    }  // reports that arrived at the very end
    for (auto& [name, handle] : topics_) rd_kafka_topic_destroy(handle);
    rd_kafka_queue_destroy(queue_);
  }

  rd_kafka_t* get() const { return client_.get(); }

  // While a caller produces a batch, the poller stands aside and the caller
  // serves the reports that come meanwhile (serve_ready): librdkafka's copies
  // of the messages are then freed on the thread that allocated them, which
  // glibc's malloc does without an arena lock.
  void stand_aside(bool aside) {
    {
      std::lock_guard lock(aside_mu_);
      aside_ = aside;
    }
    aside_cv_.notify_all();
  }

  // Serves the reports that have come, without waiting.
  void serve_ready() {
    while (serve(0)) {
    }
  }

  // This producer's handle of a topic, kept until the producer closes:
  // producing by name would look the topic up (a lock and a scan) per message.
  rd_kafka_topic_t* topic(const std::string& name) {
    std::lock_guard lock(topics_mu_);
    auto& handle = topics_[name];
    if (!handle) {
      handle = rd_kafka_topic_new(client_.get(), name.c_str(), nullptr);
      if (!handle) {
        topics_.erase(name);
        throw unavailable("cannot open topic " + name, rd_kafka_last_error());
      }
    }
    return handle;
  }

  // Queues one message; `sent` runs on its delivery report (null: nothing
  // does). Waits while the local queue is full. Throws Error when librdkafka
  // refuses the message; `sent` is then still the caller's. `copy` false: the
  // payload lives until the report (in `sent`, or longer).
  void produce(const std::string& topic_name, const std::string& key, const std::string& payload,
               rd_kafka_headers_t* headers, Micros at, Sent* sent, bool copy = true) {
    produce(topic(topic_name), key, payload, headers, at, sent, copy);
  }

  void produce(rd_kafka_topic_t* rkt, const std::string& key, const std::string& payload,
               rd_kafka_headers_t* headers, Micros at, Sent* sent, bool copy = true) {
    const int flags = copy ? RD_KAFKA_MSG_F_COPY : 0;
    const void* k = key.empty() ? nullptr : key.data();
    void* v = const_cast<char*>(payload.data());
    for (;;) {
      // Without headers (null) the call leaves them out altogether.
      const rd_kafka_resp_err_t err =
          headers ? rd_kafka_producev(client_.get(), RD_KAFKA_V_RKT(rkt),
                                      RD_KAFKA_V_MSGFLAGS(flags), RD_KAFKA_V_KEY(k, key.size()),
                                      RD_KAFKA_V_VALUE(v, payload.size()),
                                      RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_TIMESTAMP(at / 1000),
                                      RD_KAFKA_V_OPAQUE(sent), RD_KAFKA_V_END)
                  : rd_kafka_producev(
                        client_.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(flags),
                        RD_KAFKA_V_KEY(k, key.size()), RD_KAFKA_V_VALUE(v, payload.size()),
                        RD_KAFKA_V_TIMESTAMP(at / 1000), RD_KAFKA_V_OPAQUE(sent), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        // Back-pressure: reports drain the queue.
        if (aside_) {
          serve(1);
        } else {
          std::this_thread::sleep_for(1ms);
        }
        continue;
      }
      if (headers) rd_kafka_headers_destroy(headers);  // not taken on failure
      throw unavailable(std::string("cannot queue a message to ") + rd_kafka_topic_name(rkt), err);
    }
  }

 private:
  // Serves one event of the main queue; false when none came in `timeout_ms`.
  bool serve(int timeout_ms) {
    rd_kafka_event_t* ev = rd_kafka_queue_poll(queue_, timeout_ms);
    if (!ev) return false;
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_DR) {
      while (const rd_kafka_message_t* m = rd_kafka_event_message_next(ev)) {
        if (auto* sent = static_cast<Sent*>(m->_private)) {
          try {
            sent->done(m);
          } catch (...) {
            // A report handler must not stop the poller.
          }
        }
      }
    }
    rd_kafka_event_destroy(ev);
    return true;
  }

  int close_timeout_ms_;
  Client client_{nullptr, &rd_kafka_destroy};
  rd_kafka_queue_t* queue_ = nullptr;
  std::mutex topics_mu_;
  std::unordered_map<std::string, rd_kafka_topic_t*> topics_;
  std::mutex aside_mu_;
  std::condition_variable aside_cv_;
  std::atomic<bool> aside_{false};
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

// One message the group took from Kafka and has not finished with.
struct Entry {
  enum class State { kWaiting, kOut, kRetrying };
  Delivery delivery;   // as handed out last (delivery_count 0 before the first)
  std::string source;  // the Kafka topic it was read from: the topic or the retry topic
  std::int32_t partition = 0;
  std::int64_t source_offset = 0;
  State state = State::kWaiting;
  Micros visible_at = 0;
  std::string reason;  // the last refusal
};

struct PartitionState {
  std::set<std::int64_t> open;  // offsets read and not finished
  std::int64_t next = -1;       // one past the last offset read (or the end seen)
  std::int64_t committed = -1;
  std::int64_t end_seen = -1;  // where the consumer last reached the partition's end
  // After a seek, until the consumer shows it has moved: news of the old
  // position (an end-of-partition event already queued) is ignored.
  std::int64_t seek_to = -1;
};

}  // namespace

class KafkaBus;

// The consumer of one (topic, group) and what it holds. Used under mu.
class GroupConsumer {
 public:
  GroupConsumer(KafkaBus& bus, std::string topic, std::string group);
  ~GroupConsumer();

  std::vector<Delivery> fetch(int max, const ConsumeOptions& options, Micros now);
  void ack(const std::vector<Delivery>& deliveries);
  void nack(const Delivery& d, const std::string& reason, const ConsumeOptions& options,
            Micros now);
  // Moves the group's position in `topic_` (partition -> offset): what was
  // taken and not handed out is dropped and read again from there; what is
  // handed out stays pending. The new position is committed at once.
  void seek(const std::map<std::int32_t, std::int64_t>& offsets);

 private:
  using Key = std::pair<std::string, std::int32_t>;

  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* parts, void* opaque);
  void take(rd_kafka_message_t* m);
  void catch_up();
  std::list<Entry>::iterator find(const Delivery& d);
  void finish(const Entry& e);
  void commit();
  void dead_letter(Entry& e, const std::string& reason, Micros now);

  KafkaBus& bus_;
  std::string topic_, group_, retry_;
  Client client_{nullptr, &rd_kafka_destroy};
  std::list<Entry> queue_;  // in the order taken from Kafka
  std::map<Key, PartitionState> partitions_;
  std::set<Key> assigned_;
  bool ever_assigned_ = false;
  std::vector<Key> to_commit_;
  // Ids dead-lettered and not redriven: read again after a restart (they
  // may lie beyond the committed offset), they are skipped, not handed out.
  std::set<std::string> dead_;

 public:
  std::mutex mu;
};

class KafkaBus final : public MessageBus {
  friend class GroupConsumer;

 public:
  KafkaBus(std::string brokers, int partitions, int replication, int connect_timeout_ms,
           int close_timeout_ms, int session_timeout_ms, BusOptions options)
      : brokers_(std::move(brokers)),
        partitions_(partitions),
        replication_(replication),
        close_timeout_ms_(close_timeout_ms),
        session_timeout_ms_(session_timeout_ms),
        options_(std::move(options)),
        name_("devcycle-bus-" + new_uuid_v7()) {
    if (!options_.clock)
      throw Error(ErrorCode::kInvalidArgument, "BusOptions.clock: must not be null");
    producer_ =
        std::make_unique<Producer>(brokers_, false, name_, close_timeout_ms, max_record_bytes());
    // Fail at open, clearly, rather than at the first publish.
    const rd_kafka_metadata_t* md = nullptr;
    if (const auto err = rd_kafka_metadata(producer_->get(), 0, nullptr, &md, connect_timeout_ms)) {
      throw Error(ErrorCode::kUnavailable,
                  "bus: no Kafka broker of " + brokers_ + " answered within " +
                      std::to_string(connect_timeout_ms) + " ms: " + rd_kafka_err2str(err));
    }
    rd_kafka_metadata_destroy(md);
  }

  ~KafkaBus() override {
    subscriptions_->stop_all();
    {
      std::lock_guard lock(consumers_mu_);
      consumers_.clear();
    }
    for (auto& p : txn_) p.reset();
    producer_.reset();
  }

  const std::string& brokers() const { return brokers_; }
  const std::string& name() const { return name_; }
  int session_timeout_ms() const { return session_timeout_ms_; }
  Producer& producer() { return *producer_; }
  // Every producer started so far: publish()'s and the batches'.
  std::vector<const Producer*> producers() {
    std::vector<const Producer*> out{producer_.get()};
    std::lock_guard lock(txn_mu_);
    for (const auto& p : txn_) {
      if (p) out.push_back(p.get());
    }
    return out;
  }
  Micros now() const { return options_.clock->now(); }

  std::future<Published> publish(Message message) override {
    check_message(message, options_.max_payload_bytes, "message");
    ensure_topic(message.topic);
    check_fits(message, topic_limit(message.topic), std::nullopt);
    const Micros at = now() / 1000 * 1000;  // Kafka keeps milliseconds
    auto sent = std::make_unique<SentOne>(std::move(message.payload));
    auto future = sent->promise.get_future();
    auto* headers = message.headers.empty() ? nullptr : make_headers(message.headers, {});
    const std::string& payload = sent->payload;
    producer_->produce(message.topic, message.key, payload, headers, at, sent.get(),
                       /*copy=*/false);
    sent.release();  // its report disposes of it
    return future;
  }

  std::future<std::vector<Published>> publish_batch(std::vector<Message> messages) override {
    std::vector<std::uint32_t> topic_of;
    const auto topics = check_batch(messages, options_.max_payload_bytes, &topic_of);
    std::promise<std::vector<Published>> done;
    if (messages.empty()) {
      done.set_value({});
      return done.get_future();
    }
    ensure_topics(topics, /*user=*/true);
    std::vector<std::size_t> limits;
    for (const auto& t : topics) limits.push_back(topic_limit(t));
    for (std::size_t i = 0; i < messages.size(); ++i)
      check_fits(messages[i], limits[topic_of[i]], i);
    const Micros at = now() / 1000 * 1000;
    auto reports = BatchReports::make(messages.size());
    std::lock_guard txn_lock(txn_mu_);
    std::unique_ptr<Producer>* txn_slot = nullptr;
    Producer* txn = nullptr;
    std::size_t queued = 0;
    // This thread serves the reports that come while it produces; the
    // poller is back for the commit (which sends what lingers at once and
    // waits for the rest of the reports), or when anything fails.
    auto stand_back = [](Producer* p) { p->stand_aside(false); };
    std::unique_ptr<Producer, decltype(stand_back)> aside(nullptr, stand_back);
    try {
      txn_slot = &transactional();
      txn = txn_slot->get();
      txn->stand_aside(true);
      aside.reset(txn);
      if (auto* e = rd_kafka_begin_transaction(txn->get())) {
        if (rd_kafka_error_is_fatal(e)) {
          aside.reset();
          txn_slot->reset();  // the next batch starts a new producer
        }
        throw unavailable("begin a batch", e);
      }
      try {
        std::vector<rd_kafka_topic_t*> handles;
        for (const auto& t : topics) handles.push_back(txn->topic(t));
        for (; queued < messages.size(); ++queued) {
          const auto& m = messages[queued];
          txn->produce(handles[topic_of[queued]], m.key, m.payload,
                       m.headers.empty() ? nullptr : make_headers(m.headers, {}), at,
                       reports->slot(queued));
          if (queued % 1024 == 1023) txn->serve_ready();
        }
      } catch (...) {
        aside.reset();  // the abort waits for the purged messages' reports
        abort_or_retire(*txn_slot);
        throw;
      }
    } catch (...) {
      reports->queued(queued);
      throw;
    }
    reports->queued(queued);
    aside.reset();
    rd_kafka_error_t* e = rd_kafka_commit_transaction(txn->get(), 60'000);
    if (e && rd_kafka_error_is_retriable(e) && !rd_kafka_error_txn_requires_abort(e)) {
      // A timeout, say: the outcome is open, and librdkafka asks for the
      // commit again rather than an abort. Once more (both within the
      // outbox relay's 2-minute turn).
      rd_kafka_error_destroy(e);
      e = rd_kafka_commit_transaction(txn->get(), 30'000);
    }
    if (e) {
      const bool abortable = rd_kafka_error_txn_requires_abort(e);
      const bool open = rd_kafka_error_is_retriable(e) && !abortable;
      auto error = unavailable(open ? "the batch's commit did not finish in time; whether it was "
                                      "published is unknown"
                                    : "the batch was not committed; nothing of it was published",
                               e);
      if (abortable) {
        abort_or_retire(*txn_slot);
      } else {
        txn_slot->reset();  // this producer is done for: its next batch starts a new one
      }
      throw error;
    }
    // Committed: the commit waited for every report.
    auto published = reports->wait();
    for (std::size_t i = 0; i < published.size(); ++i) {
      auto& p = published[i];
      p.id = message_id(topics[topic_of[i]], p.partition, p.offset, p.published_at / 1000);
    }
    done.set_value(std::move(published));
    return done.get_future();
  }

  std::vector<Delivery> fetch(const std::string& topic, const std::string& group, int max,
                              const ConsumeOptions& options) override {
    check_topic(topic, "topic");
    check_group(group, "group");
    check_consume(options);
    if (max < 1 || max > 10'000) throw Error(ErrorCode::kInvalidArgument, "max: must be 1..10000");
    auto& c = consumer(topic, group);
    std::lock_guard lock(c.mu);
    return c.fetch(max, options, now());
  }

  void ack(const Delivery& d) override { ack(std::vector<Delivery>{d}); }

  void ack(const std::vector<Delivery>& deliveries) override {
    for (const auto& d : deliveries) {
      check_topic(d.message.topic, "delivery.message.topic");
      check_group(d.group, "delivery.group");
    }
    if (deliveries.empty()) return;
    // All of one (topic, group) in one call, or one call per consumer; a
    // refusal is checked for all before any is acknowledged.
    std::map<std::pair<std::string, std::string>, std::vector<Delivery>> by_consumer;
    for (const auto& d : deliveries) by_consumer[{d.message.topic, d.group}].push_back(d);
    std::vector<std::pair<GroupConsumer*, std::vector<Delivery>*>> targets;
    for (auto& [k, list] : by_consumer) {
      auto* c = existing_consumer(k.first, k.second);
      if (!c) throw not_pending(list.front());
      targets.emplace_back(c, &list);
    }
    if (targets.size() == 1) {
      std::lock_guard lock(targets[0].first->mu);
      targets[0].first->ack(*targets[0].second);
      return;
    }
    // Several consumers: lock them all (in address order) so that the
    // check and the acknowledgement are one step.
    std::sort(targets.begin(), targets.end());
    std::vector<std::unique_lock<std::mutex>> locks;
    for (auto& t : targets) locks.emplace_back(t.first->mu);
    for (auto& t : targets) t.first->ack(*t.second);
  }

  void nack(const Delivery& d, const std::string& reason, const ConsumeOptions& options) override {
    check_topic(d.message.topic, "delivery.message.topic");
    check_group(d.group, "delivery.group");
    check_consume(options);
    auto* c = existing_consumer(d.message.topic, d.group);
    if (!c) throw not_pending(d);
    std::lock_guard lock(c->mu);
    c->nack(d, reason.empty() ? "refused" : clean_reason(reason), options, now());
  }

  Subscription subscribe(const std::string& topic, const std::string& group, MessageHandler handler,
                         SubscribeOptions options) override {
    return subscriptions_->start(*this, topic, group, std::move(handler), std::move(options));
  }

  std::vector<DeadLetter> dead_letters(const std::string& topic, const std::string& group,
                                       int limit, std::int64_t after_offset) override {
    check_dead_letters_query(topic, group, limit);
    std::vector<DeadLetter> out;
    for (auto& d : current_dead_letters(topic, group)) {
      if (d.letter.delivery.offset > after_offset) out.push_back(std::move(d.letter));
    }
    std::stable_sort(out.begin(), out.end(), [](const DeadLetter& a, const DeadLetter& b) {
      return a.delivery.offset < b.delivery.offset;
    });
    if (out.size() > static_cast<std::size_t>(limit)) out.resize(static_cast<std::size_t>(limit));
    return out;
  }

  int redrive(const std::string& topic, const std::string& group,
              const std::vector<std::string>& ids) override {
    check_topic(topic, "topic");
    check_group(group, "group");
    check_message_ids(ids);
    auto dead = current_dead_letters(topic, group);
    std::vector<const Dead*> chosen;
    if (ids.empty()) {
      for (const auto& d : dead) chosen.push_back(&d);
    } else {
      for (const auto& id : ids) {
        const auto it = std::find_if(dead.begin(), dead.end(),
                                     [&](const Dead& d) { return d.letter.delivery.id == id; });
        if (it == dead.end())
          throw Error(ErrorCode::kNotFound, "ids: message " + id + " is not a dead letter of " +
                                                topic + " for group " + group);
        if (std::find(chosen.begin(), chosen.end(), &*it) == chosen.end()) chosen.push_back(&*it);
      }
    }
    const Micros at = now();
    for (const auto* d : chosen) {
      // Back through the retry topic with a fresh count, then marked as
      // redriven: a crash in between redrives it twice at worst, and the
      // consumer does not take a message it already holds.
      const auto& m = d->letter.delivery;
      produce_and_wait(
          retry_topic(topic, group), m.message.key, m.message.payload,
          make_headers(m.message.headers, {{kIdHeader, m.id},
                                           {kCountHeader, "0"},
                                           {kOffsetHeader, std::to_string(m.offset)},
                                           {kPartitionHeader, std::to_string(m.partition)},
                                           {kPublishedHeader, std::to_string(m.published_at)}}),
          at);
      produce_and_wait(redriven_topic(topic, group), m.id, std::to_string(d->dlq_offset),
                       make_headers({}, {}), at);
    }
    subscriptions_->wake_all();
    return static_cast<int>(chosen.size());
  }

  void seek(const std::string& topic, const std::string& group, std::int64_t offset) override {
    check_topic(topic, "topic");
    check_group(group, "group");
    if (offset < 0) throw Error(ErrorCode::kInvalidArgument, "offset: must not be negative");
    const auto ends = partition_ends(topic);
    std::map<std::int32_t, std::int64_t> offsets;
    for (const auto& [partition, end] : ends) {
      if (offset > end) {
        throw Error(ErrorCode::kInvalidArgument,
                    "offset: " + std::to_string(offset) + " is beyond the end of topic " + topic +
                        (ends.size() > 1 ? " partition " + std::to_string(partition) : "") +
                        " (its next offset is " + std::to_string(end) + ")");
      }
      offsets[partition] = offset;
    }
    move_group(topic, group, offsets);
  }

  void seek_to_time(const std::string& topic, const std::string& group, Micros at) override {
    check_topic(topic, "topic");
    check_group(group, "group");
    const auto ends = partition_ends(topic);
    PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(ends.size())),
                       &rd_kafka_topic_partition_list_destroy);
    for (const auto& [partition, end] : ends)
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset =
          std::max<Micros>(0, at) / 1000;
    if (const auto err = rd_kafka_offsets_for_times(producer_->get(), list.get(), 10'000))
      throw unavailable("cannot find the offsets of " + topic + " at that time", err);
    std::map<std::int32_t, std::int64_t> offsets;
    for (int i = 0; i < list->cnt; ++i) {
      const auto& e = list->elems[i];
      // Nothing that recent: only what comes next.
      offsets[e.partition] = e.err || e.offset < 0 ? ends.at(e.partition) : e.offset;
    }
    move_group(topic, group, offsets);
  }

  std::int64_t purge(Micros before) override {
    std::vector<std::string> topics;
    {
      std::lock_guard lock(topics_mu_);
      topics.assign(user_topics_.begin(), user_topics_.end());
    }
    using Key = std::pair<std::string, std::int32_t>;
    std::map<Key, std::pair<std::int64_t, std::int64_t>> plan;  // low, cut
    PartitionList all(rd_kafka_topic_partition_list_new(1), &rd_kafka_topic_partition_list_destroy);
    for (const auto& topic : topics) {
      const auto bounds = partition_bounds(topic);
      PartitionList times(rd_kafka_topic_partition_list_new(static_cast<int>(bounds.size())),
                          &rd_kafka_topic_partition_list_destroy);
      for (const auto& [partition, lh] : bounds) {
        rd_kafka_topic_partition_list_add(times.get(), topic.c_str(), partition)->offset =
            std::max<Micros>(0, before) / 1000;
        rd_kafka_topic_partition_list_add(all.get(), topic.c_str(), partition);
      }
      if (const auto err = rd_kafka_offsets_for_times(producer_->get(), times.get(), 10'000))
        throw unavailable("cannot find the offsets of " + topic + " at that time", err);
      for (int i = 0; i < times->cnt; ++i) {
        const auto& e = times->elems[i];
        const auto [low, high] = bounds.at(e.partition);
        // The first message published at or after `before`; none: the end.
        plan[{topic, e.partition}] = {low, e.err || e.offset < 0 ? high : e.offset};
      }
    }
    if (plan.empty()) return 0;
    // No further than where any group's unfinished work starts.
    for (const auto& group : groups()) {
      for (const auto& [key, offset] : committed(group, all.get())) {
        if (auto it = plan.find(key); it != plan.end() && offset >= 0)
          it->second.second = std::min(it->second.second, offset);
      }
    }
    PartitionList cut(rd_kafka_topic_partition_list_new(static_cast<int>(plan.size())),
                      &rd_kafka_topic_partition_list_destroy);
    std::int64_t removed = 0;
    for (const auto& [key, lc] : plan) {
      if (lc.second <= lc.first) continue;
      rd_kafka_topic_partition_list_add(cut.get(), key.first.c_str(), key.second)->offset =
          lc.second;
      removed += lc.second - lc.first;
    }
    if (cut->cnt == 0) return 0;
    rd_kafka_DeleteRecords_t* request = rd_kafka_DeleteRecords_new(cut.get());
    admin(
        [&](rd_kafka_queue_t* q) {
          rd_kafka_DeleteRecords(producer_->get(), &request, 1, nullptr, q);
        },
        [&](rd_kafka_event_t* ev) {
          const auto* offsets =
              rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
          for (int i = 0; offsets && i < offsets->cnt; ++i) {
            if (offsets->elems[i].err)
              throw unavailable(
                  "cannot delete old records of " + std::string(offsets->elems[i].topic),
                  offsets->elems[i].err);
          }
        },
        "delete old records");
    rd_kafka_DeleteRecords_destroy(request);
    return removed;
  }

  // ensure_topics() for one topic, without allocating when it is known.
  // A topic published to: purge() covers it, and it exists.
  void ensure_topic(const std::string& topic) {
    {
      std::lock_guard lock(topics_mu_);
      if (known_topics_.count(topic) && user_topics_.count(topic)) return;
    }
    ensure_topics({topic}, /*user=*/true);
  }

  // Creates the topics that do not exist yet (once per bus and topic).
  // `user`: they are topics published to.
  void ensure_topics(const std::vector<std::string>& wanted, bool user = false) {
    std::vector<std::string> missing;
    const auto remember = [&] {
      // A topic made elsewhere may take less than the bus: learn its limit,
      // so that a message it would refuse is refused before it is produced
      // (a refusal by the broker inside a transaction costs the commit's
      // whole timeout).
      auto limits = missing.empty() ? std::map<std::string, std::size_t>{} : record_limits(missing);
      std::lock_guard lock(topics_mu_);
      known_topics_.insert(missing.begin(), missing.end());
      topic_limits_.merge(limits);
      // Only topics that exist: purge() lists what it covers.
      if (user) user_topics_.insert(wanted.begin(), wanted.end());
    };
    {
      std::lock_guard lock(topics_mu_);
      for (const auto& t : wanted) {
        if (!known_topics_.count(t) &&
            std::find(missing.begin(), missing.end(), t) == missing.end())
          missing.push_back(t);
      }
    }
    if (missing.empty()) return remember();
    std::vector<rd_kafka_NewTopic_t*> specs;
    char err[512];
    const auto max_record = std::to_string(max_record_bytes());
    for (const auto& t : missing) {
      auto* spec = rd_kafka_NewTopic_new(t.c_str(), partitions_, replication_, err, sizeof err);
      if (!spec) {
        for (auto* s : specs) rd_kafka_NewTopic_destroy(s);
        throw Error(ErrorCode::kInvalidArgument, "kafka: topic " + t + ": " + err);
      }
      specs.push_back(spec);
      // The broker takes what the bus takes (its own default is 1 MiB).
      rd_kafka_NewTopic_set_config(spec, "max.message.bytes", max_record.c_str());
    }
    rd_kafka_queue_t* queue = rd_kafka_queue_new(producer_->get());
    rd_kafka_CreateTopics(producer_->get(), specs.data(), specs.size(), nullptr, queue);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 30'000);
    std::string failure;
    if (!ev) {
      failure = "no answer within 30 s";
    } else if (rd_kafka_event_error(ev)) {
      failure = rd_kafka_event_error_string(ev);
    } else if (const auto* result = rd_kafka_event_CreateTopics_result(ev)) {
      std::size_t n = 0;
      const rd_kafka_topic_result_t** topics = rd_kafka_CreateTopics_result_topics(result, &n);
      for (std::size_t i = 0; i < n; ++i) {
        const auto code = rd_kafka_topic_result_error(topics[i]);
        if (code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
          failure =
              std::string(rd_kafka_topic_result_name(topics[i])) + ": " + rd_kafka_err2str(code);
          break;
        }
      }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(queue);
    for (auto* s : specs) rd_kafka_NewTopic_destroy(s);
    if (!failure.empty())
      throw Error(ErrorCode::kUnavailable, "kafka: cannot create topics: " + failure);
    remember();
  }

  // The largest record the bus may write: a message at every limit of
  // check_message() (payload, key, 64 headers) plus the headers the bus adds
  // to a retry or dead-letter copy (a 4 KiB reason among them). Producers and
  // the topics the bus creates take this much, so that Kafka never refuses
  // what the bus accepted.
  // max.message.bytes of each of `topics` (those the broker answers for).
  std::map<std::string, std::size_t> record_limits(const std::vector<std::string>& topics) {
    std::map<std::string, std::size_t> out;
    std::vector<rd_kafka_ConfigResource_t*> resources;
    for (const auto& t : topics)
      resources.push_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, t.c_str()));
    struct Free {
      std::vector<rd_kafka_ConfigResource_t*>& r;
      ~Free() { rd_kafka_ConfigResource_destroy_array(r.data(), r.size()); }
    } free_resources{resources};
    admin(
        [&](rd_kafka_queue_t* q) {
          rd_kafka_DescribeConfigs(producer_->get(), resources.data(), resources.size(), nullptr,
                                   q);
        },
        [&](rd_kafka_event_t* ev) {
          std::size_t n = 0;
          const auto** described = rd_kafka_DescribeConfigs_result_resources(
              rd_kafka_event_DescribeConfigs_result(ev), &n);
          for (std::size_t i = 0; i < n; ++i) {
            if (rd_kafka_ConfigResource_error(described[i])) continue;
            std::size_t entries = 0;
            const auto** configs = rd_kafka_ConfigResource_configs(described[i], &entries);
            for (std::size_t j = 0; j < entries; ++j) {
              const char* value = rd_kafka_ConfigEntry_value(configs[j]);
              if (std::string_view(rd_kafka_ConfigEntry_name(configs[j])) != "max.message.bytes" ||
                  !value)
                continue;
              std::size_t limit = 0;
              const std::string_view v(value);
              if (std::from_chars(v.data(), v.data() + v.size(), limit).ec == std::errc())
                out[rd_kafka_ConfigResource_name(described[i])] = limit;
            }
          }
        },
        "describe topics");
    return out;
  }

  // The largest record `topic` takes, as far as the bus knows (else the
  // bus's own).
  std::size_t topic_limit(const std::string& topic) {
    std::lock_guard lock(topics_mu_);
    const auto it = topic_limits_.find(topic);
    return it == topic_limits_.end() ? max_record_bytes() : it->second;
  }

  // Error{kInvalidArgument} naming `field` ("message" or messages[index])
  // when `m` would make a record larger than `limit`.
  static void check_fits(const Message& m, std::size_t limit, std::optional<std::size_t> index) {
    std::size_t size = m.payload.size() + m.key.size() + kRecordOverhead;
    for (const auto& [k, v] : m.headers) size += k.size() + v.size() + 16;
    if (size <= limit) return;
    throw Error(ErrorCode::kInvalidArgument,
                (index ? "messages[" + std::to_string(*index) + "]" : std::string("message")) +
                    ": " + std::to_string(size) + " bytes with its key and headers; topic " +
                    m.topic + " takes records of at most " + std::to_string(limit) +
                    " bytes (its max.message.bytes)");
  }

  std::size_t max_record_bytes() const {
    constexpr std::size_t kKey = 1024, kHeaders = 64 * (256 + 4096), kOwnHeaders = 8 * 1024,
                          kFraming = 64 * 1024;
    return std::max<std::size_t>(
        1'000'000, options_.max_payload_bytes + kKey + kHeaders + kOwnHeaders + kFraming);
  }

  static std::string redriven_topic(const std::string& topic, const std::string& group) {
    return topic + ".dlq." + group + ".redriven";
  }

  // The Kafka consumer group of a bus group: a group belongs to its topic,
  // as on inproc. Sharing one Kafka group across topics would make every
  // member rejoin when any topic's consumer joins, and one not fetching would
  // hold the others up. '/' is in neither name, so no two pairs collide.
  static std::string kafka_group(const std::string& topic, const std::string& group) {
    return topic + "/" + group;
  }

  static std::string retry_topic(const std::string& topic, const std::string& group) {
    return topic + ".retry." + group;
  }
  static std::string dlq_topic(const std::string& topic, const std::string& group) {
    return topic + ".dlq." + group;
  }

  // Produces on the idempotent producer and waits for the report.
  void produce_and_wait(const std::string& topic, const std::string& key,
                        const std::string& payload, rd_kafka_headers_t* headers, Micros at) {
    auto promise = std::make_shared<std::promise<void>>();
    auto future = promise->get_future();
    auto sent = std::make_unique<SentFn>([promise, topic](const rd_kafka_message_t* m) {
      if (m->err) {
        promise->set_exception(
            std::make_exception_ptr(unavailable("message to " + topic + " not delivered", m->err)));
      } else {
        promise->set_value();
      }
    });
    producer_->produce(topic, key, payload, headers, at, sent.get());
    sent.release();  // its report disposes of it
    future.get();
  }

 private:
  // The transactional producer for the next batch. Two take turns: after a
  // commit the coordinator still writes its markers for a few milliseconds,
  // and a producer that starts its next transaction meanwhile is refused
  // (CONCURRENT_TRANSACTIONS) and retried by librdkafka after a fixed 20 ms.
  // Batches are serialized (txn_mu_) and each is committed before the next
  // begins, so their order in the log is the order of the calls.
  // Aborts the slot's current transaction; a producer that cannot abort is
  // retired, so that the next batch on this slot starts a new one.
  static void abort_or_retire(std::unique_ptr<Producer>& slot) {
    if (auto* e = rd_kafka_abort_transaction(slot->get(), 30'000)) {
      rd_kafka_error_destroy(e);
      slot.reset();
    }
  }

  std::unique_ptr<Producer>& transactional() {
    auto& slot = txn_[next_txn_];
    next_txn_ = (next_txn_ + 1) % txn_.size();
    if (!slot) {
      auto p = std::make_unique<Producer>(brokers_, true,
                                          name_ + "-batches-" + std::to_string(&slot - txn_.data()),
                                          close_timeout_ms_, max_record_bytes());
      if (auto* e = rd_kafka_init_transactions(p->get(), 30'000))
        throw unavailable("cannot start the batch producer", e);
      slot = std::move(p);
    }
    return slot;
  }

  struct Dead {
    DeadLetter letter;
    std::int64_t dlq_offset = 0;
  };

  // The group's dead letters as they stand: the last one of each message
  // (a replayed message may be dead-lettered again), unless redriven since.
  std::vector<Dead> current_dead_letters(const std::string& topic, const std::string& group) {
    std::map<std::string, std::int64_t> redriven;  // id -> the dead-letter offset redriven
    read_all(redriven_topic(topic, group), [&](const rd_kafka_message_t* m) {
      if (!m->key || !m->payload) return;
      const std::string id(static_cast<const char*>(m->key), m->key_len);
      const std::string text(static_cast<const char*>(m->payload), m->len);
      std::int64_t at = -1;
      std::from_chars(text.data(), text.data() + text.size(), at);
      redriven[id] = std::max(redriven[id], at);
    });
    std::map<std::string, Dead> last;
    std::vector<std::string> order;
    read_all(dlq_topic(topic, group), [&](const rd_kafka_message_t* m) {
      Dead dead;
      dead.dlq_offset = m->offset;
      auto& dl = dead.letter;
      auto& d = dl.delivery;
      d.id = header(m, kIdHeader);
      d.offset = header_int(m, kOffsetHeader, -1);
      d.partition = static_cast<int>(header_int(m, kPartitionHeader, 0));
      d.group = group;
      d.message.topic = topic;
      if (m->key) d.message.key.assign(static_cast<const char*>(m->key), m->key_len);
      d.message.headers = user_headers(m);
      if (m->payload) d.message.payload.assign(static_cast<const char*>(m->payload), m->len);
      d.delivery_count = static_cast<int>(header_int(m, kCountHeader, 0));
      d.published_at = header_int(m, kPublishedHeader, 0);
      dl.reason = header(m, kReasonHeader);
      dl.dead_at = header_int(m, kDeadAtHeader, 0);
      if (!last.count(d.id)) order.push_back(d.id);
      last[d.id] = std::move(dead);
    });
    std::vector<Dead> out;
    for (const auto& id : order) {
      auto& d = last[id];
      if (const auto r = redriven.find(id); r != redriven.end() && r->second >= d.dlq_offset)
        continue;
      out.push_back(std::move(d));
    }
    std::stable_sort(out.begin(), out.end(), [](const Dead& a, const Dead& b) {
      return a.letter.delivery.offset < b.letter.delivery.offset;
    });
    return out;
  }

  // Runs one admin request and hands its result event to `read` (which may throw).
  void admin(const std::function<void(rd_kafka_queue_t*)>& send,
             const std::function<void(rd_kafka_event_t*)>& read, const std::string& what) {
    rd_kafka_queue_t* queue = rd_kafka_queue_new(producer_->get());
    send(queue);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 30'000);
    rd_kafka_queue_destroy(queue);
    if (!ev) throw Error(ErrorCode::kUnavailable, "kafka: " + what + ": no answer within 30 s");
    struct Free {
      rd_kafka_event_t* ev;
      ~Free() { rd_kafka_event_destroy(ev); }
    } free_ev{ev};
    if (rd_kafka_event_error(ev))
      throw Error(ErrorCode::kUnavailable,
                  "kafka: " + what + ": " + rd_kafka_event_error_string(ev));
    read(ev);
  }

  // Every consumer group of the cluster.
  std::vector<std::string> groups() {
    std::vector<std::string> out;
    admin([&](rd_kafka_queue_t* q) { rd_kafka_ListConsumerGroups(producer_->get(), nullptr, q); },
          [&](rd_kafka_event_t* ev) {
            std::size_t n = 0;
            const auto** listed = rd_kafka_ListConsumerGroups_result_valid(
                rd_kafka_event_ListConsumerGroups_result(ev), &n);
            for (std::size_t i = 0; i < n; ++i)
              out.emplace_back(rd_kafka_ConsumerGroupListing_group_id(listed[i]));
          },
          "list consumer groups");
    return out;
  }

  // A group's committed offsets for `partitions` (-1 where it has none).
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> committed(
      const std::string& group, const rd_kafka_topic_partition_list_t* partitions) {
    std::map<std::pair<std::string, std::int32_t>, std::int64_t> out;
    rd_kafka_ListConsumerGroupOffsets_t* request =
        rd_kafka_ListConsumerGroupOffsets_new(group.c_str(), partitions);
    try {
      admin(
          [&](rd_kafka_queue_t* q) {
            rd_kafka_ListConsumerGroupOffsets(producer_->get(), &request, 1, nullptr, q);
          },
          [&](rd_kafka_event_t* ev) {
            std::size_t n = 0;
            const auto** results = rd_kafka_ListConsumerGroupOffsets_result_groups(
                rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
            for (std::size_t i = 0; i < n; ++i) {
              if (rd_kafka_group_result_error(results[i])) continue;
              const auto* parts = rd_kafka_group_result_partitions(results[i]);
              for (int j = 0; parts && j < parts->cnt; ++j) {
                if (!parts->elems[j].err)
                  out[{parts->elems[j].topic, parts->elems[j].partition}] = parts->elems[j].offset;
              }
            }
          },
          "read the offsets of group " + group);
    } catch (...) {
      rd_kafka_ListConsumerGroupOffsets_destroy(request);
      throw;
    }
    rd_kafka_ListConsumerGroupOffsets_destroy(request);
    return out;
  }

  std::set<std::string> dead_ids(const std::string& topic, const std::string& group) {
    std::set<std::string> out;
    for (const auto& d : current_dead_letters(topic, group)) out.insert(d.letter.delivery.id);
    return out;
  }

  // Partition -> (first offset, next offset) of a topic.
  std::map<std::int32_t, std::pair<std::int64_t, std::int64_t>> partition_bounds(
      const std::string& topic) {
    ensure_topics({topic});
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_topic_t* handle = rd_kafka_topic_new(producer_->get(), topic.c_str(), nullptr);
    const auto err = rd_kafka_metadata(producer_->get(), 0, handle, &md, 10'000);
    rd_kafka_topic_destroy(handle);
    if (err) throw unavailable("cannot read the metadata of " + topic, err);
    std::vector<std::int32_t> ids;
    for (int i = 0; i < md->topic_cnt; ++i)
      for (int p = 0; p < md->topics[i].partition_cnt; ++p)
        ids.push_back(md->topics[i].partitions[p].id);
    rd_kafka_metadata_destroy(md);
    std::map<std::int32_t, std::pair<std::int64_t, std::int64_t>> bounds;
    for (const auto id : ids) {
      std::int64_t low = 0, high = 0;
      if (const auto e = watermarks(producer_->get(), topic, id, low, high))
        throw unavailable("cannot read the end of " + topic, e);
      bounds[id] = {low, high};
    }
    return bounds;
  }

  // Partition -> next offset (the end) of a topic.
  std::map<std::int32_t, std::int64_t> partition_ends(const std::string& topic) {
    std::map<std::int32_t, std::int64_t> ends;
    for (const auto& [id, lh] : partition_bounds(topic)) ends[id] = lh.second;
    return ends;
  }

  // Moves the group: through this bus's consumer of it when there is one,
  // else by committing the offsets for the group (refused by Kafka while
  // the group has members elsewhere).
  void move_group(const std::string& topic, const std::string& group,
                  const std::map<std::int32_t, std::int64_t>& offsets) {
    if (auto* c = existing_consumer(topic, group)) {
      std::lock_guard lock(c->mu);
      c->seek(offsets);
    } else {
      Client client =
          make_client(RD_KAFKA_CONSUMER, make_conf({{"bootstrap.servers", brokers_},
                                                    {"group.id", kafka_group(topic, group)},
                                                    {"enable.auto.commit", "false"}}));
      PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())),
                         &rd_kafka_topic_partition_list_destroy);
      for (const auto& [partition, offset] : offsets)
        rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = offset;
      if (const auto err = rd_kafka_commit(client.get(), list.get(), 0)) {
        throw Error(ErrorCode::kConflict,
                    "kafka: cannot move group " + group + " in " + topic + ": " +
                        rd_kafka_err2str(err) +
                        " (a group with members elsewhere is moved from one of them)");
      }
    }
    subscriptions_->wake_all();
  }

  GroupConsumer& consumer(const std::string& topic, const std::string& group) {
    if (redriven_topic(topic, group).size() > kMaxTopicName) {
      throw Error(ErrorCode::kInvalidArgument,
                  "group: \"" + group + "\" with topic \"" + topic +
                      "\" makes a retry topic longer than Kafka's 249 characters");
    }
    {
      std::lock_guard lock(topics_mu_);
      user_topics_.insert(topic);
    }
    std::lock_guard lock(consumers_mu_);
    auto& slot = consumers_[{topic, group}];
    if (!slot) {
      ensure_topics({topic, retry_topic(topic, group), dlq_topic(topic, group),
                     redriven_topic(topic, group)});
      slot = std::make_unique<GroupConsumer>(*this, topic, group);
    }
    return *slot;
  }

  GroupConsumer* existing_consumer(const std::string& topic, const std::string& group) {
    std::lock_guard lock(consumers_mu_);
    const auto it = consumers_.find({topic, group});
    return it == consumers_.end() ? nullptr : it->second.get();
  }

  // Reads a whole topic, every partition from its start to its end, with a
  // consumer of no group.
  void read_all(const std::string& topic,
                const std::function<void(const rd_kafka_message_t*)>& fn) {
    ensure_topics({topic});
    Client c = make_client(RD_KAFKA_CONSUMER, make_conf({{"bootstrap.servers", brokers_},
                                                         {"group.id", name_ + "-reader"},
                                                         {"enable.auto.commit", "false"},
                                                         {"isolation.level", "read_committed"}}));
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_topic_t* handle = rd_kafka_topic_new(c.get(), topic.c_str(), nullptr);
    const auto err = rd_kafka_metadata(c.get(), 0, handle, &md, 10'000);
    rd_kafka_topic_destroy(handle);
    if (err) throw unavailable("cannot read the metadata of " + topic, err);
    std::map<std::int32_t, std::int64_t> ends;
    PartitionList parts(rd_kafka_topic_partition_list_new(1),
                        &rd_kafka_topic_partition_list_destroy);
    for (int i = 0; i < md->topic_cnt; ++i) {
      for (int p = 0; p < md->topics[i].partition_cnt; ++p) {
        const auto id = md->topics[i].partitions[p].id;
        std::int64_t low = 0, high = 0;
        if (const auto e = watermarks(c.get(), topic, id, low, high)) {
          rd_kafka_metadata_destroy(md);
          throw unavailable("cannot read the end of " + topic, e);
        }
        if (high > low) {
          ends[id] = high;
          rd_kafka_topic_partition_list_add(parts.get(), topic.c_str(), id)->offset = low;
        }
      }
    }
    rd_kafka_metadata_destroy(md);
    if (ends.empty()) return;
    if (const auto e = rd_kafka_assign(c.get(), parts.get()))
      throw unavailable("cannot read " + topic, e);
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    std::map<std::int32_t, std::int64_t> reached;
    while (reached.size() < ends.size()) {
      if (std::chrono::steady_clock::now() > deadline)
        throw Error(ErrorCode::kUnavailable, "kafka: reading " + topic + " took over 30 s");
      rd_kafka_message_t* m = rd_kafka_consumer_poll(c.get(), 100);
      if (!m) {
        // Control records (transaction markers) end some partitions: done
        // when the position has passed the end.
        PartitionList pos(rd_kafka_topic_partition_list_copy(parts.get()),
                          &rd_kafka_topic_partition_list_destroy);
        rd_kafka_position(c.get(), pos.get());
        for (int i = 0; i < pos->cnt; ++i) {
          const auto id = pos->elems[i].partition;
          if (pos->elems[i].offset >= ends[id]) reached[id] = pos->elems[i].offset;
        }
        continue;
      }
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && !reached.count(m->partition) &&
          m->offset < ends[m->partition]) {
        fn(m);
        if (m->offset + 1 >= ends[m->partition]) reached[m->partition] = m->offset + 1;
      }
      rd_kafka_message_destroy(m);
    }
  }

  std::string brokers_;
  int partitions_, replication_;
  int close_timeout_ms_;
  int session_timeout_ms_;  // how soon a consumer that died loses its partitions
  BusOptions options_;
  std::string name_;
  std::unique_ptr<Producer> producer_;
  std::mutex txn_mu_;
  std::array<std::unique_ptr<Producer>, 2> txn_;
  std::size_t next_txn_ = 0;
  std::mutex topics_mu_;
  std::set<std::string> known_topics_;
  std::set<std::string> user_topics_;  // published to or fetched from: what purge() covers
  std::map<std::string, std::size_t> topic_limits_;  // max.message.bytes of the known topics
  std::mutex consumers_mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<GroupConsumer>> consumers_;
  std::shared_ptr<SubscriptionThreads> subscriptions_ = SubscriptionThreads::create();
};

GroupConsumer::GroupConsumer(KafkaBus& bus, std::string topic, std::string group)
    : bus_(bus),
      topic_(std::move(topic)),
      group_(std::move(group)),
      retry_(KafkaBus::retry_topic(topic_, group_)) {
  rd_kafka_conf_t* conf =
      make_conf({{"bootstrap.servers", bus.brokers()},
                 {"client.id", bus.name()},
                 {"group.id", KafkaBus::kafka_group(topic_, group_)},
                 {"enable.auto.commit", "false"},
                 {"enable.auto.offset.store", "false"},
                 {"auto.offset.reset", "earliest"},
                 {"isolation.level", "read_committed"},
                 {"enable.partition.eof", "true"},
                 {"session.timeout.ms", std::to_string(bus.session_timeout_ms())}});
  rd_kafka_conf_set_rebalance_cb(conf, &GroupConsumer::on_rebalance);
  rd_kafka_conf_set_opaque(conf, this);
  client_ = make_client(RD_KAFKA_CONSUMER, conf);
  rd_kafka_poll_set_consumer(client_.get());
  dead_ = bus.dead_ids(topic_, group_);
  PartitionList topics(rd_kafka_topic_partition_list_new(2),
                       &rd_kafka_topic_partition_list_destroy);
  rd_kafka_topic_partition_list_add(topics.get(), topic_.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_topic_partition_list_add(topics.get(), retry_.c_str(), RD_KAFKA_PARTITION_UA);
  if (const auto err = rd_kafka_subscribe(client_.get(), topics.get()))
    throw unavailable("cannot subscribe to " + topic_, err);
  // Join the group before the first fetch, so that a fetch right after a
  // publish sees it.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!ever_assigned_) {
    if (std::chrono::steady_clock::now() > deadline)
      throw Error(ErrorCode::kUnavailable,
                  "kafka: group " + group_ + " got no partitions of " + topic_ + " within 30 s");
    if (rd_kafka_message_t* m = rd_kafka_consumer_poll(client_.get(), 100)) take(m);
  }
}

GroupConsumer::~GroupConsumer() {
  // Leaves the group at once, so that another member takes over now.
  rd_kafka_consumer_close(client_.get());
}

void GroupConsumer::on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                 rd_kafka_topic_partition_list_t* parts, void* opaque) {
  auto& self = *static_cast<GroupConsumer*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    rd_kafka_assign(rk, parts);
    for (int i = 0; i < parts->cnt; ++i)
      self.assigned_.insert({parts->elems[i].topic, parts->elems[i].partition});
    self.ever_assigned_ = true;
    return;
  }
  // Revoked: what was taken from these partitions is another member's now
  // (it reads from the committed offset); forget it here.
  for (int i = 0; i < parts->cnt; ++i) {
    const Key k{parts->elems[i].topic, parts->elems[i].partition};
    self.assigned_.erase(k);
    self.partitions_.erase(k);
    self.queue_.remove_if([&](const Entry& e) {
      return e.state != Entry::State::kRetrying && e.source == k.first && e.partition == k.second;
    });
  }
  rd_kafka_assign(rk, nullptr);
}

// A message (or an event) from the consumer.
void GroupConsumer::take(rd_kafka_message_t* m) {
  std::unique_ptr<rd_kafka_message_t, decltype(&rd_kafka_message_destroy)> own(
      m, &rd_kafka_message_destroy);
  const std::string source = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
  const Key k{source, m->partition};

  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    auto& p = partitions_[k];
    if (p.seek_to >= 0 && m->offset != p.seek_to) return;  // from before the seek
    p.seek_to = -1;
    p.end_seen = m->offset;
    p.next = std::max(p.next, m->offset);
    return;
  }
  if (m->err) return;  // transient consumer errors: librdkafka retries on its own
  auto& p = partitions_[k];
  if (p.seek_to >= 0) {
    if (m->offset < p.seek_to) return;  // from before the seek
    p.seek_to = -1;
  }
  p.next = std::max(p.next, m->offset + 1);
  std::string id = header(m, kIdHeader);  // the bus's own copies carry it
  if (id.empty()) id = message_id(topic_, m->partition, m->offset, timestamp_ms(m));
  // A replay (after a seek) or a redrive of a message the queue holds
  // already: it is not taken twice.
  const bool held = std::any_of(queue_.begin(), queue_.end(), [&](const Entry& q) {
    return q.delivery.id == id && !id.empty() &&
           !(q.state == Entry::State::kRetrying && source == retry_);
  });
  if (held) return;
  if (source == retry_) {
    dead_.erase(id);  // redriven
  } else if (dead_.count(id)) {
    to_commit_.push_back(k);  // finished already: passed over
    return;
  }
  p.open.insert(m->offset);

  Entry e;
  e.source = source;
  e.partition = m->partition;
  e.source_offset = m->offset;
  auto& d = e.delivery;
  d.id = id;
  d.group = group_;
  d.message.topic = topic_;
  if (m->key) d.message.key.assign(static_cast<const char*>(m->key), m->key_len);
  d.message.headers = user_headers(m);
  if (m->payload) d.message.payload.assign(static_cast<const char*>(m->payload), m->len);
  if (source == retry_) {
    d.offset = header_int(m, kOffsetHeader, -1);
    d.partition = static_cast<int>(header_int(m, kPartitionHeader, 0));
    d.delivery_count = static_cast<int>(header_int(m, kCountHeader, 0));
    d.published_at = header_int(m, kPublishedHeader, 0);
    // The refused message keeps its place in the queue, ahead of later
    // messages of its key.
    for (auto& q : queue_) {
      if (q.state == Entry::State::kRetrying && q.delivery.id == d.id) {
        q.source = source;
        q.partition = m->partition;
        q.source_offset = m->offset;
        q.delivery.delivery_count = d.delivery_count;
        q.state = Entry::State::kWaiting;
        return;
      }
    }
  } else {
    d.offset = m->offset;
    d.partition = m->partition;
    d.published_at = timestamp_ms(m) * 1000;
  }
  queue_.push_back(std::move(e));
}

// Reads what the broker holds now for this consumer's partitions (its end
// when the fetch began), or what arrives within kCatchUp.
void GroupConsumer::catch_up() {
  // Asked through the producer's connections: on the consumer's own, the
  // question would queue behind its long-polling fetch.
  std::map<Key, std::int64_t> ends;
  for (const auto& k : assigned_) {
    std::int64_t low = 0, high = 0;
    if (watermarks(bus_.producer().get(), k.first, k.second, low, high) ==
        RD_KAFKA_RESP_ERR_NO_ERROR)
      ends[k] = high;
  }
  const auto deadline = std::chrono::steady_clock::now() + kCatchUp;
  auto caught_up = [&] {
    for (const auto& [k, end] : ends) {
      const auto it = partitions_.find(k);
      if (it == partitions_.end() || std::max(it->second.end_seen, it->second.next) < end)
        return false;
    }
    return true;
  };
  // Take whatever is ready without waiting, then wait only while behind.
  while (rd_kafka_message_t* m = rd_kafka_consumer_poll(client_.get(), 0)) take(m);
  while (!caught_up() && std::chrono::steady_clock::now() < deadline) {
    if (rd_kafka_message_t* m = rd_kafka_consumer_poll(client_.get(), 20)) take(m);
  }
}

std::vector<Delivery> GroupConsumer::fetch(int max, const ConsumeOptions& options, Micros now) {
  catch_up();
  std::vector<Delivery> out;
  std::set<std::string> keys_ahead;  // keys of earlier messages still in the queue
  const Micros timeout = options.visibility_timeout.count() * 1000;
  // What this call handed out, as it was: when a dead letter cannot be
  // stored, the call fails and they are as before it (no delivery used up
  // that nobody received).
  struct Before {
    std::list<Entry>::iterator it;
    Entry::State state;
    Micros visible_at;
  };
  std::vector<Before> handed;
  try {
    for (auto it = queue_.begin(); it != queue_.end() && static_cast<int>(out.size()) < max;) {
      Entry& e = *it;
      const auto& key = e.delivery.message.key;
      const bool behind = !key.empty() && keys_ahead.count(key);
      if (!key.empty()) keys_ahead.insert(key);
      if (behind || e.state == Entry::State::kRetrying ||
          (e.state == Entry::State::kOut && e.visible_at > now)) {
        ++it;
        continue;
      }
      if (e.state == Entry::State::kOut && e.delivery.delivery_count >= options.max_deliveries) {
        dead_letter(e,
                    "not acknowledged within the visibility timeout of " +
                        std::to_string(options.visibility_timeout.count()) + " ms",
                    now);
        finish(e);
        it = queue_.erase(it);
        continue;
      }
      handed.push_back({it, e.state, e.visible_at});
      e.state = Entry::State::kOut;
      e.visible_at = now + timeout;
      ++e.delivery.delivery_count;
      out.push_back(e.delivery);
      ++it;
    }
  } catch (...) {
    for (const auto& b : handed) {
      b.it->state = b.state;
      b.it->visible_at = b.visible_at;
      --b.it->delivery.delivery_count;
    }
    commit();  // what was dead-lettered before the failure is finished
    throw;
  }
  commit();
  return out;
}

std::list<Entry>::iterator GroupConsumer::find(const Delivery& d) {
  return std::find_if(queue_.begin(), queue_.end(), [&](const Entry& e) {
    return e.state == Entry::State::kOut && e.delivery.id == d.id &&
           e.delivery.delivery_count == d.delivery_count && !d.id.empty();
  });
}

void GroupConsumer::ack(const std::vector<Delivery>& deliveries) {
  // All of them or none: find each first.
  std::vector<std::list<Entry>::iterator> found;
  for (const auto& d : deliveries) {
    auto it = find(d);
    if (it == queue_.end() || std::find(found.begin(), found.end(), it) != found.end())
      throw not_pending(d);
    found.push_back(it);
  }
  for (auto it : found) {
    finish(*it);
    queue_.erase(it);
  }
  commit();
}

void GroupConsumer::nack(const Delivery& d, const std::string& reason,
                         const ConsumeOptions& options, Micros now) {
  auto it = find(d);
  if (it == queue_.end()) throw not_pending(d);
  Entry& e = *it;
  e.reason = reason;
  if (e.delivery.delivery_count >= options.max_deliveries) {
    dead_letter(e, reason, now);
    finish(e);
    queue_.erase(it);
  } else {
    // Through the retry topic, so that a crash from here on still brings it
    // back with its count; the original is finished once the copy is stored.
    const auto& m = e.delivery;
    bus_.produce_and_wait(
        retry_, m.message.key, m.message.payload,
        make_headers(m.message.headers, {{kIdHeader, m.id},
                                         {kCountHeader, std::to_string(m.delivery_count)},
                                         {kOffsetHeader, std::to_string(m.offset)},
                                         {kPartitionHeader, std::to_string(m.partition)},
                                         {kPublishedHeader, std::to_string(m.published_at)},
                                         {kReasonHeader, reason}}),
        now);
    finish(e);
    e.state = Entry::State::kRetrying;
  }
  commit();
}

void GroupConsumer::dead_letter(Entry& e, const std::string& reason, Micros now) {
  const auto& m = e.delivery;
  bus_.produce_and_wait(
      KafkaBus::dlq_topic(topic_, group_), m.message.key, m.message.payload,
      make_headers(m.message.headers, {{kIdHeader, m.id},
                                       {kCountHeader, std::to_string(m.delivery_count)},
                                       {kOffsetHeader, std::to_string(m.offset)},
                                       {kPartitionHeader, std::to_string(m.partition)},
                                       {kPublishedHeader, std::to_string(m.published_at)},
                                       {kReasonHeader, reason},
                                       {kDeadAtHeader, std::to_string(now)}}),
      now);
  // Only once the letter is stored: a message marked dead is skipped when
  // read again, and would otherwise be lost with a failed produce.
  dead_.insert(m.id);
}

void GroupConsumer::seek(const std::map<std::int32_t, std::int64_t>& offsets) {
  dead_.clear();  // a replay hands out again what it passes, dead letters included

  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())),
                     &rd_kafka_topic_partition_list_destroy);
  for (const auto& [partition, offset] : offsets) {
    const Key k{topic_, partition};
    queue_.remove_if([&](const Entry& e) {
      return e.state == Entry::State::kWaiting && e.source == topic_ && e.partition == partition;
    });
    auto& p = partitions_[k];
    p.open.clear();
    for (const auto& e : queue_) {
      if (e.state != Entry::State::kRetrying && e.source == topic_ && e.partition == partition)
        p.open.insert(e.source_offset);
    }
    p.next = offset;
    p.end_seen = -1;
    p.seek_to = offset;
    p.committed = -1;  // committed again below, whichever way it moved
    rd_kafka_topic_partition_list_add(list.get(), topic_.c_str(), partition)->offset = offset;
    to_commit_.push_back(k);
  }
  if (!assigned_.empty()) {
    PartitionList mine(rd_kafka_topic_partition_list_new(list->cnt),
                       &rd_kafka_topic_partition_list_destroy);
    for (int i = 0; i < list->cnt; ++i) {
      if (assigned_.count({topic_, list->elems[i].partition}))
        rd_kafka_topic_partition_list_add(mine.get(), topic_.c_str(), list->elems[i].partition)
            ->offset = list->elems[i].offset;
    }
    if (mine->cnt > 0) {
      if (auto* e = rd_kafka_seek_partitions(client_.get(), mine.get(), 10'000))
        throw unavailable("cannot move group " + group_ + " in " + topic_, e);
    }
  }
  // Committed as the start of the unbroken run, so that handed-out
  // messages ahead of the new position still count as unfinished.
  commit();
}

// The entry's Kafka offset is done with; its partition may commit further.
void GroupConsumer::finish(const Entry& e) {
  const Key k{e.source, e.partition};
  const auto it = partitions_.find(k);
  if (it == partitions_.end()) return;  // revoked meanwhile
  it->second.open.erase(e.source_offset);
  to_commit_.push_back(k);
}

void GroupConsumer::commit() {
  if (to_commit_.empty()) return;
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(to_commit_.size())),
                     &rd_kafka_topic_partition_list_destroy);
  std::vector<std::pair<Key, std::int64_t>> moved;
  for (const auto& k : std::set<Key>(to_commit_.begin(), to_commit_.end())) {
    const auto it = partitions_.find(k);
    if (it == partitions_.end()) continue;
    auto& p = it->second;
    // The start of the unbroken run of finished offsets.
    const std::int64_t upto = p.open.empty() ? p.next : std::min(p.next, *p.open.begin());
    if (upto <= p.committed || upto < 0) continue;
    rd_kafka_topic_partition_list_add(list.get(), k.first.c_str(), k.second)->offset = upto;
    moved.emplace_back(k, upto);
  }
  to_commit_.clear();
  if (moved.empty()) return;
  if (const auto err = rd_kafka_commit(client_.get(), list.get(), 0)) {
    // Not fatal: the next commit covers it; a crash before then redelivers.
    (void)err;
    return;
  }
  for (const auto& [k, upto] : moved) partitions_[k].committed = upto;
}

std::unique_ptr<MessageBus> open_kafka_bus(const std::string& url, BusOptions options) {
  const auto parsed = parse_url(url, "bus");
  if (parsed.scheme != "kafka" || parsed.hosts.empty())
    fail_setting("bus", url, "is not kafka://host:port[,host:port...]");
  std::string brokers;
  for (const auto& h : parsed.hosts) {
    if (!brokers.empty()) brokers += ",";
    brokers += h.host + ":" + std::to_string(h.port.value_or(9092));
  }
  int partitions = 1, replication = 1, connect_timeout_ms = 10'000, close_timeout_ms = 30'000,
      session_timeout_ms = 45'000;
  for (const auto& [k, v] : parsed.query) {
    int* target = k == "partitions"           ? &partitions
                  : k == "replication"        ? &replication
                  : k == "connect_timeout_ms" ? &connect_timeout_ms
                  : k == "close_timeout_ms"   ? &close_timeout_ms
                  : k == "session_timeout_ms" ? &session_timeout_ms
                                              : nullptr;
    if (!target)
      fail_setting("bus", url,
                   "has an unknown parameter \"" + k +
                       "\" (known: partitions, replication, connect_timeout_ms, "
                       "close_timeout_ms, session_timeout_ms)");
    // The session timeout within the broker's defaults for
    // group.min/max.session.timeout.ms.
    const int least = target == &session_timeout_ms ? 6'000 : 1;
    const int most = target == &session_timeout_ms                                  ? 1'800'000
                     : target == &connect_timeout_ms || target == &close_timeout_ms ? 600'000
                                                                                    : 10'000;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), *target);
    if (ec != std::errc() || end != v.data() + v.size() || *target < least || *target > most)
      fail_setting("bus", url,
                   k + "=" + v + " must be a whole number from " + std::to_string(least) + " to " +
                       std::to_string(most));
  }
  return std::make_unique<KafkaBus>(brokers, partitions, replication, connect_timeout_ms,
                                    close_timeout_ms, session_timeout_ms, std::move(options));
}

std::vector<std::map<std::string, std::string>> kafka_producer_settings(
    MessageBus& bus, const std::vector<std::string>& names) {
  auto* kafka = dynamic_cast<KafkaBus*>(&bus);
  if (!kafka) throw Error(ErrorCode::kInvalidArgument, "bus: not a kafka:// bus");
  std::vector<std::map<std::string, std::string>> out;
  for (const Producer* p : kafka->producers()) {
    const rd_kafka_conf_t* conf = rd_kafka_conf(p->get());
    auto& settings = out.emplace_back();
    for (const auto& name : names) {
      char value[512];
      std::size_t size = sizeof value;
      if (rd_kafka_conf_get(conf, name.c_str(), value, &size) == RD_KAFKA_CONF_OK)
        settings[name] = value;
    }
  }
  return out;
}

}  // namespace devcycle::internal
