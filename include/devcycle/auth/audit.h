// The audit log: who did what security-relevant thing, when, from where.
//
// Entries are append-only rows: logins (succeeded and failed), logouts and
// revocations, account and role changes, API keys, sessions and secrets
// created or deleted, and permission denials. They are queried by time,
// actor and action, newest first. Nothing secret is ever recorded: details
// name objects, never passwords, tokens or secret values.
//
// Thread-safety: an AuditLog may be used from any number of threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "devcycle/common/clock.h"
#include "devcycle/store/database.h"

namespace devcycle {

struct NewAuditEntry {
  std::string actor;   // user id; "" when unknown (a failed login)
  std::string action;  // [a-z0-9._]{1,64}, e.g. "login.failed", "api_key.created"
  std::string target;  // what it was done to, e.g. "user:<id>", "api_key:<id>"; may be ""
  std::string client_address;
  std::string detail = "{}";  // a JSON object, at most 4 KiB
};

struct AuditEntry {
  std::string id;  // uuid v7: entries sort by it
  Micros at = 0;
  std::string actor;
  std::string action;
  std::string target;
  std::string client_address;
  std::string detail;
};

struct AuditFilter {
  std::optional<Micros> after;   // inclusive
  std::optional<Micros> before;  // exclusive
  std::optional<std::string> actor;
  std::optional<std::string> action;  // exact, or a prefix ending in "." ("login.")
  int limit = 100;                    // 1-1000
  std::string page_token;
};

struct AuditPage {
  std::vector<AuditEntry> entries;  // newest first
  std::string next_page_token;
};

class AuditLog {
 public:
  static std::vector<Migration> migrations();
  // Applies migrations(). `db` must outlive the log.
  AuditLog(Database& db, std::shared_ptr<Clock> clock = SystemClock::instance());

  // Throws Error{kInvalidArgument} naming the field for a bad entry.
  AuditEntry record(const NewAuditEntry& entry);
  AuditPage query(const AuditFilter& filter = {});

 private:
  Database& db_;
  std::shared_ptr<Clock> clock_;
};

}  // namespace devcycle
