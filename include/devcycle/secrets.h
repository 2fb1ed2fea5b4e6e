// Named secrets (API tokens for model endpoints, deploy credentials), stored
// encrypted at rest with the master key (libsodium secretbox).
//
// No read API returns a value: list() and info() give names and times;
// only reveal() opens one, for the code that runs a task. redact() replaces
// every stored secret's value in a text, for task logs and error messages.
// Names: a letter, then letters, digits and '_', at most 64 (DEPLOY_TOKEN).
// Values: 1 byte to 64 KiB. Error messages name secrets, never values.
//
// Thread-safety: a SecretStore may be used from any number of threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/clock.h"
#include "devcycle/database.h"

namespace devcycle {

struct SecretInfo {
  std::string name;
  std::string owner;  // who last set it
  int version = 1;    // grows with every put() of the name
  Micros created_at = 0;
  Micros updated_at = 0;
};

class SecretStore {
 public:
  static std::vector<Migration> migrations();
  // `master_key` as TokenService takes it (32 raw bytes or 64 hex digits).
  // Throws Error{kInvalidArgument} when it cannot open the stored secrets
  // (another key). `db` must outlive the store.
  SecretStore(Database& db, std::string_view master_key,
              std::shared_ptr<Clock> clock = SystemClock::instance());
  ~SecretStore();
  SecretStore(const SecretStore&) = delete;
  SecretStore& operator=(const SecretStore&) = delete;

  // Creates or replaces a secret.
  SecretInfo put(std::string_view name, std::string_view value, std::string_view owner);
  std::vector<SecretInfo> list();          // sorted by name
  SecretInfo info(std::string_view name);  // kNotFound
  void remove(std::string_view name);      // kNotFound
  // The value, for running a task. kNotFound naming the secret.
  std::string reveal(std::string_view name);
  // `text` with each stored secret's value (of at least 4 bytes) replaced
  // by "[redacted:NAME]".
  std::string redact(std::string_view text);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace devcycle
