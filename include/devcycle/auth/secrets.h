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
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/auth/authz.h"
#include "devcycle/common/clock.h"
#include "devcycle/store/database.h"

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

  // Trusted use: creates the secret owned by `owner`, or replaces its value
  // (the owner stays).
  SecretInfo put(std::string_view name, std::string_view value, std::string_view owner);
  // For `who`: creates the secret, owned by `who`, or replaces its value when
  // `who` may update it (authz.h matrix: its owner or an admin), the check
  // and the change in one transaction; the owner never changes. Throws what
  // authorize() throws. `created`, when given, says which happened.
  SecretInfo put(std::string_view name, std::string_view value, const Principal& who,
                 bool* created = nullptr);
  std::vector<SecretInfo> list();          // sorted by name
  SecretInfo info(std::string_view name);  // kNotFound
  void remove(std::string_view name);      // kNotFound
  // Trusted use: the value. kNotFound naming the secret.
  std::string reveal(std::string_view name);
  // Whether work run for the user `user` may have the value of `name`: when
  // `user` owns the secret or is an active admin (the matrix's execute on a
  // secret). A secret that does not exist is not refused here.
  bool may_use(std::string_view name, std::string_view user);
  // The names read as secrets.NAME inside {{ }} in `text` (a task's input,
  // an agent's configuration), each once.
  static std::vector<std::string> references(std::string_view text);
  // Error{kPermissionDenied} naming the first of `names` that `user` may not
  // use: a definition or configuration naming it is refused when stored.
  void check_use(std::span<const std::string> names, std::string_view user);
  // `text` with each stored secret's value (of at least 4 bytes) replaced
  // by "[redacted:NAME]" — as it is, as it appears escaped inside JSON text,
  // and, for a multi-line value (a PEM key), each of its lines of 8 bytes or
  // more, since logs carry a line at a time. Values are remembered for up to two seconds, so
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
  // for a JSON string, for work run for `user` (the run's owner).
  // Error{kNotFound} naming a referenced secret that does not exist,
  // Error{kPermissionDenied} naming one `user` may not use (may_use).
  std::string resolve(std::string_view scope, std::string_view json_text, std::string_view user);
  // Text written by `user` (an agent's configuration, by the agent's owner):
  // each {{ secrets.NAME }} in it replaced by the value, escaped for a JSON
  // string. kNotFound and kPermissionDenied as resolve().
  std::string resolve_references(std::string_view json_text, std::string_view user);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace devcycle
