#include <algorithm>
#include <map>
#include <mutex>

#include "auth/sealed_box.h"
#include "auth/sodium.h"
#include "devcycle/error.h"
#include "devcycle/secrets.h"

namespace devcycle {

namespace {

void check_name(std::string_view name) {
  const bool ok = !name.empty() && name.size() <= 64 &&
                  ((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z')) &&
                  std::all_of(name.begin(), name.end(), [](char c) {
                    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                           (c >= '0' && c <= '9') || c == '_';
                  });
  if (!ok) {
    throw Error(ErrorCode::kInvalidArgument,
                "name: a secret's name is a letter, then letters, digits and '_', at most 64");
  }
}

Error not_found(std::string_view name) {
  return Error(ErrorCode::kNotFound,
               "secret \"" + std::string(name.substr(0, 64)) + "\" not found");
}

SecretInfo from_row(const Row& r) {
  return {r[0].as_text(), r[1].as_text(), static_cast<int>(r[2].as_int()), r[3].as_int(),
          r[4].as_int()};
}

}  // namespace

struct SecretStore::Impl {
  Impl(Database& d, std::string m, std::shared_ptr<Clock> c)
      : db(d), master(std::move(m)), clock(std::move(c)) {}
  Database& db;
  std::string master;
  std::shared_ptr<Clock> clock;
  // Opened values for redaction, by name, with the version they belong to.
  std::mutex mu;
  std::map<std::string, std::pair<int, std::string>, std::less<>> opened;

  std::string open(const std::string& name, const Value& sealed) {
    auto plain = internal::open_box(master, sealed.as_blob().str());
    if (!plain) {
      throw Error(ErrorCode::kInvalidArgument, "master key: cannot open secret \"" + name +
                                                   "\"; it was sealed under another master key");
    }
    return std::move(*plain);
  }
};

std::vector<Migration> SecretStore::migrations() {
  return {{"secrets", 1, "secrets sealed under the master key",
           "CREATE TABLE secrets ("
           " name TEXT PRIMARY KEY, owner TEXT NOT NULL, version BIGINT NOT NULL,"
           " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, sealed BLOB NOT NULL)",
           ""}};
}

SecretStore::SecretStore(Database& db, std::string_view master_key, std::shared_ptr<Clock> clock)
    : impl_(std::make_unique<Impl>(db, internal::master_key_bytes(master_key, "master key"),
                                   std::move(clock))) {
  internal::init_sodium();
  if (!impl_->clock)
    throw Error(ErrorCode::kInvalidArgument, "SecretStore clock: must not be null");
  db.migrate(migrations());
  // A wrong master key shows at start, not at the first task that needs a secret.
  auto rows = db.read([](Txn& t) { return t.query("SELECT name, sealed FROM secrets LIMIT 1"); });
  if (!rows.empty()) impl_->open(rows[0][0].as_text(), rows[0][1]);
}

SecretStore::~SecretStore() = default;

SecretInfo SecretStore::put(std::string_view name, std::string_view value, std::string_view owner) {
  check_name(name);
  if (value.empty() || value.size() > 64 * 1024) {
    throw Error(ErrorCode::kInvalidArgument, "value: a secret is 1 byte to 64 KiB");
  }
  if (owner.empty() || owner.size() > 128) {
    throw Error(ErrorCode::kInvalidArgument, "owner: 1 to 128 bytes");
  }
  const Micros now = impl_->clock->now();
  const auto sealed = Blob::of(internal::seal(impl_->master, std::string(value)));
  return impl_->db.write([&](Txn& t) {
    auto rows = t.query(
        "SELECT name, owner, version, created_at, updated_at FROM secrets WHERE name = $1", {name});
    SecretInfo info{std::string(name), std::string(owner), 1, now, now};
    if (rows.empty()) {
      t.execute(
          "INSERT INTO secrets (name, owner, version, created_at, updated_at, sealed) VALUES ($1, "
          "$2, 1, $3, $3, $4)",
          {name, owner, now, sealed});
    } else {
      info = from_row(rows[0]);
      info.owner = std::string(owner);
      info.version += 1;
      info.updated_at = now;
      t.execute(
          "UPDATE secrets SET owner = $2, version = $3, updated_at = $4, sealed = $5 WHERE name = "
          "$1",
          {name, owner, info.version, now, sealed});
    }
    return info;
  });
}

std::vector<SecretInfo> SecretStore::list() {
  auto rows = impl_->db.read([](Txn& t) {
    return t.query(
        "SELECT name, owner, version, created_at, updated_at FROM secrets ORDER BY name");
  });
  std::vector<SecretInfo> out;
  for (const auto& r : rows) out.push_back(from_row(r));
  return out;
}

SecretInfo SecretStore::info(std::string_view name) {
  auto rows = impl_->db.read([&](Txn& t) {
    return t.query(
        "SELECT name, owner, version, created_at, updated_at FROM secrets WHERE name = $1", {name});
  });
  if (rows.empty()) throw not_found(name);
  return from_row(rows[0]);
}

void SecretStore::remove(std::string_view name) {
  const bool gone = impl_->db.write(
      [&](Txn& t) { return t.execute("DELETE FROM secrets WHERE name = $1", {name}) > 0; });
  if (!gone) throw not_found(name);
  std::lock_guard lock(impl_->mu);
  impl_->opened.erase(std::string(name));
}

std::string SecretStore::reveal(std::string_view name) {
  auto rows = impl_->db.read(
      [&](Txn& t) { return t.query("SELECT sealed FROM secrets WHERE name = $1", {name}); });
  if (rows.empty()) throw not_found(name);
  return impl_->open(std::string(name), rows[0][0]);
}

std::string SecretStore::redact(std::string_view text) {
  if (text.size() < 4) return std::string(text);  // nothing to find in it, no need to look
  auto rows = impl_->db.read(
      [](Txn& t) { return t.query("SELECT name, version, sealed FROM secrets ORDER BY name"); });
  std::vector<std::pair<std::string, std::string>> values;  // name, value
  {
    std::lock_guard lock(impl_->mu);
    for (const auto& r : rows) {
      const auto name = r[0].as_text();
      const int version = static_cast<int>(r[1].as_int());
      auto& slot = impl_->opened[name];
      if (slot.first != version || slot.second.empty()) {
        slot = {version, impl_->open(name, r[2])};
      }
      values.emplace_back(name, slot.second);
    }
  }
  // Longest values first, so that a value containing another is replaced whole.
  std::sort(values.begin(), values.end(),
            [](const auto& a, const auto& b) { return a.second.size() > b.second.size(); });
  std::string out(text);
  for (const auto& [name, value] : values) {
    if (value.size() < 4) continue;  // too short to tell from ordinary text
    const std::string mark = "[redacted:" + name + "]";
    for (auto at = out.find(value); at != std::string::npos;
         at = out.find(value, at + mark.size())) {
      out.replace(at, value.size(), mark);
    }
  }
  return out;
}

}  // namespace devcycle
