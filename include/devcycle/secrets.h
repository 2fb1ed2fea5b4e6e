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
  // by "[redacted:NAME]". Values are remembered for up to two seconds, so
  // that logging stays cheap; a put() or remove() here is seen at once.
  std::string redact(std::string_view text);

  // References from task inputs. The engine renders {{ secrets.NAME }} in a
  // task's input as a marker "[secret:NAME:<mac>]" bound to `scope` (the
  // task's id) by a MAC under the master key, and the stored input keeps the
  // marker; resolve() puts the values in when the task executes. A marker
  // that data brought in (a run's input, another task's output) carries no
  // valid MAC for this task and stays as it is, so data can never name a
  // secret into a task.
  std::string marker(std::string_view scope, std::string_view name) const;
  // `json_text` with this scope's markers replaced by their values, escaped
  // for a JSON string. Error{kNotFound} naming a referenced secret that does
  // not exist.
  std::string resolve(std::string_view scope, std::string_view json_text);
  // Trusted text (an agent's configuration, written by its owner): each
  // {{ secrets.NAME }} in it replaced by the value, escaped for a JSON
  // string. kNotFound naming a secret that does not exist.
  std::string resolve_references(std::string_view json_text);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace devcycle
