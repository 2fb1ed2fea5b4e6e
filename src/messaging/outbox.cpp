#include "messaging/outbox.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "devcycle/error.h"

namespace devcycle::internal {

namespace {

constexpr int kBatch = 1000;

}  // namespace

std::vector<Migration> Outbox::migrations() {
  return {{"outbox", 1, "transactional outbox",
           "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, "
           "msg_key TEXT NOT NULL, headers TEXT NOT NULL, payload TEXT NOT NULL, "
           "created_at BIGINT NOT NULL)",
           "CREATE TABLE outbox (seq BIGSERIAL PRIMARY KEY, topic TEXT NOT NULL, "
           "msg_key TEXT NOT NULL, headers TEXT NOT NULL, payload TEXT NOT NULL, "
           "created_at BIGINT NOT NULL)"}};
}

void Outbox::add(Txn& t, const std::vector<Message>& messages, Micros at) {
  // Multi-row INSERTs, 64 rows a statement; seq follows the order given.
  std::vector<Value> params;
  for (std::size_t first = 0; first < messages.size(); first += 64) {
    const std::size_t n = std::min<std::size_t>(64, messages.size() - first);
    std::string sql = "INSERT INTO outbox (topic, msg_key, headers, payload, created_at) VALUES ";
    params.clear();
    for (std::size_t i = 0; i < n; ++i) {
      const auto& m = messages[first + i];
      const int b = static_cast<int>(i) * 5;
      sql += (i ? ", ($" : "($") + std::to_string(b + 1) + ", $" + std::to_string(b + 2) + ", $" +
             std::to_string(b + 3) + ", $" + std::to_string(b + 4) + ", $" + std::to_string(b + 5) +
             ")";
      params.emplace_back(m.topic);
      params.emplace_back(m.key);
      params.emplace_back(m.headers.empty() ? std::string("{}") : nlohmann::json(m.headers).dump());
      params.emplace_back(m.payload);
      params.emplace_back(at);
    }
    t.execute(sql, params);
  }
}

OutboxRelay::OutboxRelay(Database& db, MessageBus& bus, std::chrono::milliseconds poll_interval)
    : db_(db), bus_(bus), poll_interval_(poll_interval) {
  thread_ = std::thread([this] { loop(); });
}

OutboxRelay::~OutboxRelay() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void OutboxRelay::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_one();
}

int OutboxRelay::drain() {
  int total = 0;
  for (int n; (n = relay_once()) > 0;) total += n;
  return total;
}

int OutboxRelay::relay_once() {
  std::lock_guard run_lock(run_mu_);
  std::vector<Value> seqs;
  std::vector<Message> messages;
  db_.read([&](Txn& t) {
    for (const auto& r :
         t.query("SELECT seq, topic, msg_key, headers, payload FROM outbox ORDER BY seq LIMIT $1",
                 {kBatch})) {
      seqs.emplace_back(r[0].as_int());
      Message m;
      m.topic = r[1].as_text();
      m.key = r[2].as_text();
      if (const auto& h = r[3].as_text(); h != "{}")
        m.headers = nlohmann::json::parse(h).get<std::map<std::string, std::string>>();
      m.payload = r[4].as_text();
      messages.push_back(std::move(m));
    }
  });
  if (messages.empty()) return 0;
  // All of them or none, in order; deleted only after the bus accepted them.
  bus_.publish_batch(messages).get();
  // Exactly the rows published: with several writers (engines sharing a
  // PostgreSQL database) a row with a lower seq may commit after this read.
  db_.write([&](Txn& t) {
    for (std::size_t first = 0; first < seqs.size(); first += 250) {
      const std::size_t n = std::min<std::size_t>(250, seqs.size() - first);
      std::string sql = "DELETE FROM outbox WHERE seq IN (";
      for (std::size_t i = 0; i < n; ++i) sql += (i ? ", $" : "$") + std::to_string(i + 1);
      sql += ")";
      t.execute(sql, std::span<const Value>(seqs.data() + first, n));
    }
  });
  return static_cast<int>(messages.size());
}

void OutboxRelay::loop() {
  auto backoff = std::chrono::milliseconds(100);
  for (;;) {
    bool failed = false;
    try {
      drain();
      backoff = std::chrono::milliseconds(100);
    } catch (...) {
      failed = true;  // the bus or the database is away: the rows wait
    }
    std::unique_lock lock(mu_);
    if (stopping_) return;
    if (failed) {
      cv_.wait_for(lock, backoff, [&] { return stopping_; });
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(5));
    } else {
      cv_.wait_for(lock, poll_interval_, [&] { return stopping_ || woken_; });
    }
    woken_ = false;
    if (stopping_) {
      lock.unlock();
      try {
        drain();  // a last attempt
      } catch (...) {
      }
      return;
    }
  }
}

}  // namespace devcycle::internal
