#include "messaging/outbox.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "devcycle/common/error.h"
#include "devcycle/common/uuid.h"

namespace devcycle::internal {

namespace {

constexpr int kBatch = 1000;
// How long the relay that publishes holds its turn without renewing it.
// Longer than one relay_once can take (a Kafka batch commit waits up to
// 60 s), so two relays never publish the same rows; after a crash the next
// relay takes over within it.
constexpr Micros kTurn = 120'000'000;

Micros wall_now() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::vector<Migration> Outbox::migrations() {
  return {{"outbox", 1, "transactional outbox",
           "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, "
           "msg_key TEXT NOT NULL, headers TEXT NOT NULL, payload TEXT NOT NULL, "
           "created_at BIGINT NOT NULL)",
           "CREATE TABLE outbox (seq BIGSERIAL PRIMARY KEY, topic TEXT NOT NULL, "
           "msg_key TEXT NOT NULL, headers TEXT NOT NULL, payload TEXT NOT NULL, "
           "created_at BIGINT NOT NULL)"},
          {"outbox", 2, "one relay at a time; rows the bus refuses are set aside",
           "ALTER TABLE outbox ADD COLUMN refused TEXT;"
           "CREATE TABLE outbox_relay (id INTEGER PRIMARY KEY, holder TEXT NOT NULL, "
           "until_us BIGINT NOT NULL)",
           ""}};
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
    : db_(db), bus_(bus), poll_interval_(poll_interval), holder_("relay-" + new_uuid_v7()) {
  thread_ = std::thread([this] { loop(); });
}

OutboxRelay::~OutboxRelay() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  try {
    // Hands the turn on at once rather than when it would run out.
    db_.write([&](Txn& t) { t.execute("DELETE FROM outbox_relay WHERE holder = $1", {holder_}); });
  } catch (...) {
  }
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

bool OutboxRelay::take_turn() {
  const Micros now = wall_now();
  return db_.write([&](Txn& t) {
    return t.execute(
        "INSERT INTO outbox_relay (id, holder, until_us) VALUES (1, $1, $2) "
        "ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, "
        "until_us = excluded.until_us "
        "WHERE outbox_relay.holder = excluded.holder OR outbox_relay.until_us < $3",
        {holder_, now + kTurn, now});
  }) == 1;
}

int OutboxRelay::relay_once() {
  std::lock_guard run_lock(run_mu_);
  // Rows to publish, and whether another relay holds the turn (then this one
  // leaves it without a write: it is woken after every commit of its engine).
  bool rows = false, others_turn = false;
  db_.read([&](Txn& t) {
    rows = !t.query("SELECT 1 FROM outbox WHERE refused IS NULL LIMIT 1").empty();
    const auto turn = t.query("SELECT holder, until_us FROM outbox_relay WHERE id = 1");
    others_turn =
        !turn.empty() && turn[0][0].as_text() != holder_ && turn[0][1].as_int() >= wall_now();
  });
  // Only the relay whose turn it is publishes, so that relays of several
  // engines sharing a database neither double rows nor reorder a key.
  if (!rows || others_turn || !take_turn()) return 0;
  std::vector<Value> seqs;
  std::vector<Message> messages;
  db_.read([&](Txn& t) {
    for (const auto& r :
         t.query("SELECT seq, topic, msg_key, headers, payload FROM outbox WHERE refused IS NULL "
                 "ORDER BY seq LIMIT $1",
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
  std::vector<std::pair<Value, std::string>> refused;
  try {
    // All of them or none, in order; deleted only after the bus accepted them.
    bus_.publish_batch(messages).get();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kInvalidArgument) throw;  // the rows wait for the bus
    // The bus refuses one of them for good (too large, say): one at a time,
    // setting aside each it refuses, so that one bad row does not hold up
    // everything behind it.
    for (std::size_t i = 0; i < messages.size(); ++i) {
      try {
        bus_.publish(messages[i]).get();
      } catch (const Error& one) {
        if (one.code() != ErrorCode::kInvalidArgument) {
          // What went out so far is out: delete it, keep the rest.
          seqs.resize(i);
          messages.resize(i);
          forget(seqs, refused);
          throw;
        }
        refused.emplace_back(seqs[i], one.what());
      }
    }
  }
  forget(seqs, refused);
  return static_cast<int>(messages.size());
}

// Deletes the published rows and marks the refused ones (both among `seqs`).
// Exactly those rows: with several writers a row with a lower seq may commit
// after the read.
void OutboxRelay::forget(const std::vector<Value>& seqs,
                         const std::vector<std::pair<Value, std::string>>& refused) {
  db_.write([&](Txn& t) {
    for (const auto& [seq, why] : refused)
      t.execute("UPDATE outbox SET refused = $1 WHERE seq = $2", {why, seq});
    for (std::size_t first = 0; first < seqs.size(); first += 250) {
      const std::size_t n = std::min<std::size_t>(250, seqs.size() - first);
      std::string sql = "DELETE FROM outbox WHERE refused IS NULL AND seq IN (";
      for (std::size_t i = 0; i < n; ++i) sql += (i ? ", $" : "$") + std::to_string(i + 1);
      sql += ")";
      t.execute(sql, std::span<const Value>(seqs.data() + first, n));
    }
  });
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
