#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "auth/sealed_box.h"
#include "auth/sodium.h"
#include "devcycle/auth/auth.h"
#include "devcycle/auth/authz.h"
#include "devcycle/auth/secrets.h"
#include "devcycle/common/error.h"

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
      : db(d), master(std::move(m)), clock(std::move(c)) {
    // A key of its own for markers, so that no MAC is ever made with the master key itself.
    static constexpr std::string_view kContext = "devcycle secret markers";
    unsigned char k[32];
    crypto_generichash(k, sizeof k, reinterpret_cast<const unsigned char*>(kContext.data()),
                       kContext.size(), reinterpret_cast<const unsigned char*>(master.data()),
                       master.size());
    marker_key.assign(reinterpret_cast<const char*>(k), sizeof k);
    sodium_memzero(k, sizeof k);
  }
  Database& db;
  std::string master;
  std::shared_ptr<Clock> clock;
  // Opened values for redaction, by name, with the version they belong to.
  std::mutex mu;
  std::map<std::string, std::pair<int, std::string>, std::less<>> opened;
  std::vector<std::pair<std::string, std::string>> values;  // name, value: longest first
  std::chrono::steady_clock::time_point refreshed_at{};
  bool fresh = false;      // false: read the table again before the next redaction
  std::string marker_key;  // derived from the master key, for marker MACs

  // Whether work run for `user` may have the value of `name`: the matrix's
  // execute on a secret — its owner, or an active admin. A secret that does
  // not exist (yet) is not refused here: reveal() says it is missing.
  bool may_use(Txn& t, std::string_view name, std::string_view user) {
    const auto owner = t.query("SELECT owner FROM secrets WHERE name = $1", {name});
    if (owner.empty()) return true;
    const auto u = t.query("SELECT role, active FROM users WHERE id = $1", {user});
    // A deactivated account's work stops getting secrets; an owner that is no
    // user at all (an embedder's own names) keeps its own.
    if (!u.empty() && !u[0][1].as_bool()) return false;
    if (owner[0][0].as_text() == user) return true;
    return !u.empty() && u[0][0].as_text() == "admin";
  }

  static Error refused(std::string_view name) {
    return Error(ErrorCode::kPermissionDenied,
                 "secret \"" + std::string(name) +
                     "\": the owner of this work may not use it (only the secret's owner or an "
                     "admin may)");
  }

  // The value of `name` for work run for `user`.
  std::string reveal_for(std::string_view name, std::string_view user) {
    auto rows = db.read([&](Txn& t) {
      if (!may_use(t, name, user)) throw refused(name);
      return t.query("SELECT sealed FROM secrets WHERE name = $1", {name});
    });
    if (rows.empty()) throw not_found(name);
    return open(std::string(name), rows[0][0]);
  }

  std::string mac(std::string_view scope, std::string_view name) const {
    std::string data(scope);
    data.push_back('\0');
    data.append(name);
    unsigned char h[16];
    crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(data.data()),
                       data.size(), reinterpret_cast<const unsigned char*>(marker_key.data()),
                       marker_key.size());
    std::string out(32, '\0');
    sodium_bin2hex(out.data(), out.size() + 1, h, sizeof h);
    return out;
  }

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
  // Who may use a secret depends on the user's role (may_use).
  db.migrate(UserDirectory::migrations());
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
  {
    std::lock_guard lock(impl_->mu);
    impl_->fresh = false;
  }
  // One statement: two servers putting the same name at once (PostgreSQL)
  // each get a version of their own, and neither fails on the new row.
  return impl_->db.write([&](Txn& t) {
    const auto rows = t.query(
        "INSERT INTO secrets (name, owner, version, created_at, updated_at, sealed) VALUES ($1, "
        "$2, 1, $3, $3, $4) ON CONFLICT (name) DO UPDATE SET version = "
        "secrets.version + 1, updated_at = excluded.updated_at, sealed = excluded.sealed "
        "RETURNING name, owner, version, created_at, updated_at",
        {name, owner, now, sealed});
    return from_row(rows[0]);
  });
}

SecretInfo SecretStore::put(std::string_view name, std::string_view value, const Principal& who,
                            bool* created) {
  check_name(name);
  if (value.empty() || value.size() > 64 * 1024) {
    throw Error(ErrorCode::kInvalidArgument, "value: a secret is 1 byte to 64 KiB");
  }
  const Micros now = impl_->clock->now();
  const auto sealed = Blob::of(internal::seal(impl_->master, std::string(value)));
  {
    std::lock_guard lock(impl_->mu);
    impl_->fresh = false;
  }
  // The check and the change in one transaction: the row is locked (on
  // PostgreSQL; SQLite has one writer) from the moment its owner is read.
  return impl_->db.write([&](Txn& t) {
    const bool pg = t.dialect() == Dialect::kPostgres;
    auto rows = t.query(
        "SELECT name, owner, version, created_at, updated_at FROM secrets WHERE "
        "name = $1" +
            std::string(pg ? " FOR UPDATE" : ""),
        {name});
    if (rows.empty()) {
      authorize(who, Action::kCreate, ObjectRef{Resource::kSecret, "", "", false, {}});
      // A concurrent create of the same name makes this insert fail: never an overwrite.
      t.execute(
          "INSERT INTO secrets (name, owner, version, created_at, updated_at, sealed) VALUES ($1, "
          "$2, 1, $3, $3, $4)",
          {name, who.id, now, sealed});
      if (created) *created = true;
      return SecretInfo{std::string(name), who.id, 1, now, now};
    }
    auto info = from_row(rows[0]);
    authorize(who, Action::kUpdate, ObjectRef{Resource::kSecret, info.name, info.owner, false, {}});
    t.execute(
        "UPDATE secrets SET version = version + 1, updated_at = $2, sealed = $3 WHERE name = $1",
        {name, now, sealed});
    info.version += 1;
    info.updated_at = now;
    if (created) *created = false;
    return info;
  });
}

std::vector<std::string> SecretStore::references(std::string_view text) {
  std::vector<std::string> out;
  const auto ident = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  for (auto open = text.find("{{"); open != std::string_view::npos;
       open = text.find("{{", open + 2)) {
    const auto close = text.find("}}", open);
    if (close == std::string_view::npos) break;
    const auto inner = text.substr(open + 2, close - open - 2);
    for (auto at = inner.find("secrets."); at != std::string_view::npos;
         at = inner.find("secrets.", at + 8)) {
      if (at > 0 && (ident(inner[at - 1]) || inner[at - 1] == '.')) continue;
      auto end = at + 8;
      while (end < inner.size() && ident(inner[end])) ++end;
      auto name = std::string(inner.substr(at + 8, end - at - 8));
      if (!name.empty() && std::find(out.begin(), out.end(), name) == out.end())
        out.push_back(std::move(name));
    }
  }
  return out;
}

bool SecretStore::may_use(std::string_view name, std::string_view user) {
  return impl_->db.read([&](Txn& t) { return impl_->may_use(t, name, user); });
}

void SecretStore::check_use(std::span<const std::string> names, std::string_view user) {
  impl_->db.read([&](Txn& t) {
    for (const auto& name : names) {
      if (!impl_->may_use(t, name, user)) throw impl_->refused(name);
    }
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
  impl_->fresh = false;
}

std::string SecretStore::reveal(std::string_view name) {
  auto rows = impl_->db.read(
      [&](Txn& t) { return t.query("SELECT sealed FROM secrets WHERE name = $1", {name}); });
  if (rows.empty()) throw not_found(name);
  return impl_->open(std::string(name), rows[0][0]);
}

std::string SecretStore::redact(std::string_view text) {
  if (text.size() < 4) return std::string(text);  // nothing to find in it, no need to look
  std::vector<std::pair<std::string, std::string>> values;
  {
    std::lock_guard lock(impl_->mu);
    const auto now = std::chrono::steady_clock::now();
    if (!impl_->fresh || now - impl_->refreshed_at > std::chrono::seconds(2)) {
      auto rows = impl_->db.read([](Txn& t) {
        return t.query("SELECT name, version, sealed FROM secrets ORDER BY name");
      });
      impl_->values.clear();
      for (const auto& r : rows) {
        const auto name = r[0].as_text();
        const int version = static_cast<int>(r[1].as_int());
        auto& slot = impl_->opened[name];
        if (slot.first != version || slot.second.empty()) slot = {version, impl_->open(name, r[2])};
        // Shorter values are too much like ordinary text to replace.
        if (slot.second.size() >= 4) {
          const auto& value = slot.second;
          impl_->values.emplace_back(name, value);
          // As it appears inside JSON text (a task's output, an error).
          const auto escaped =
              nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
          if (escaped.size() - 2 != value.size())
            impl_->values.emplace_back(name, escaped.substr(1, escaped.size() - 2));
          // A multi-line value (a PEM key) reaches logs a line at a time.
          if (value.find('\n') != std::string::npos) {
            std::size_t at = 0;
            while (at < value.size()) {
              auto end = value.find('\n', at);
              if (end == std::string::npos) end = value.size();
              auto line = value.substr(at, end - at);
              if (!line.empty() && line.back() == '\r') line.pop_back();
              if (line.size() >= 8) impl_->values.emplace_back(name, line);
              at = end + 1;
            }
          }
        }
      }
      // Longest values first, so that a value containing another is replaced whole.
      std::sort(impl_->values.begin(), impl_->values.end(),
                [](const auto& a, const auto& b) { return a.second.size() > b.second.size(); });
      impl_->refreshed_at = now;
      impl_->fresh = true;
    }
    values = impl_->values;
  }
  std::string out(text);
  for (const auto& [name, value] : values) {
    const std::string mark = "[redacted:" + name + "]";
    for (auto at = out.find(value); at != std::string::npos;
         at = out.find(value, at + mark.size())) {
      out.replace(at, value.size(), mark);
    }
  }
  return out;
}

std::string SecretStore::marker(std::string_view scope, std::string_view name) const {
  check_name(name);
  return "[secret:" + std::string(name) + ":" + impl_->mac(scope, name) + "]";
}

std::string SecretStore::resolve(std::string_view scope, std::string_view text,
                                 std::string_view user) {
  std::string out;
  std::size_t from = 0;
  for (auto at = text.find("[secret:"); at != std::string_view::npos;
       at = text.find("[secret:", at + 1)) {
    const auto end = text.find(']', at);
    if (end == std::string_view::npos) break;
    const auto body = text.substr(at + 8, end - at - 8);  // NAME:MAC
    const auto colon = body.rfind(':');
    if (colon == std::string_view::npos) continue;
    const auto name = body.substr(0, colon);
    const auto mac = body.substr(colon + 1);
    if (mac.size() != 32 || name.empty() || name.size() > 64) continue;
    const auto expected = impl_->mac(scope, name);
    if (sodium_memcmp(expected.data(), mac.data(), 32) != 0) continue;        // not this task's
    const auto value = nlohmann::json(impl_->reveal_for(name, user)).dump();  // "...", escaped
    out.append(text.substr(from, at - from));
    out.append(value.substr(1, value.size() - 2));
    from = end + 1;
  }
  out.append(text.substr(from));
  return out;
}

std::string SecretStore::resolve_references(std::string_view text, std::string_view user) {
  std::string out;
  std::size_t from = 0;
  for (auto open = text.find("{{"); open != std::string_view::npos;
       open = text.find("{{", open + 2)) {
    const auto close = text.find("}}", open);
    if (close == std::string_view::npos) break;
    auto inner = text.substr(open + 2, close - open - 2);
    while (!inner.empty() && inner.front() == ' ') inner.remove_prefix(1);
    while (!inner.empty() && inner.back() == ' ') inner.remove_suffix(1);
    if (!inner.starts_with("secrets.")) continue;
    const auto name = inner.substr(8);
    check_name(name);
    const auto value = nlohmann::json(impl_->reveal_for(name, user)).dump();
    out.append(text.substr(from, open - from));
    out.append(value.substr(1, value.size() - 2));
    from = close + 2;
  }
  out.append(text.substr(from));
  return out;
}

}  // namespace devcycle
