// Workflow definitions and the catalog of their versions.
//
// A definition is JSON (the schema is in docs/workflows.md and enforced by
// validate_definition) or built in C++ with WorkflowBuilder. It names tasks
// that run on agents chosen by capability (or by name), with dependencies,
// input templates, conditions, fan-out, retries, timeouts and priorities.
// Validation reports every problem at once, each with its JSON path.
//
// A stored version is immutable: creating a changed definition makes the
// next version; runs pin the version they started with.
//
// Thread-safety: definitions are plain values; WorkflowCatalog may be used
// from any number of threads.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/common/clock.h"
#include "devcycle/store/database.h"

namespace devcycle {

class Registry;
class SecretStore;

struct RetryPolicy {
  int max_attempts = 3;                          // 1 = no retry; at most 100
  std::chrono::milliseconds initial{1000};       // first backoff
  double multiplier = 2.0;                       // exponential factor, 1-10
  std::chrono::milliseconds max{5 * 60 * 1000};  // cap on one backoff
  double jitter = 0.1;                           // +/- this fraction, 0-1
};

struct TaskTimeouts {
  std::optional<std::chrono::milliseconds> schedule_to_start;  // ready -> running
  std::optional<std::chrono::milliseconds> start_to_close;     // one attempt
  std::optional<std::chrono::milliseconds> heartbeat;          // between heartbeats
};

struct TaskDefinition {
  std::string id;                   // [a-z0-9][a-z0-9_-]*, unique in the workflow
  std::string capability;           // either a capability ...
  std::string version_range = "*";  // ... within this range,
  std::string agent;                // or a named agent "owner/name",
  // or no agent at all: a timer that waits this long ...
  std::optional<std::chrono::milliseconds> sleep;
  std::string until;   // ... or until this RFC 3339 time (a template),
  std::string signal;  // or a wait for the signal of this name (approvals);
                       // timeouts.start_to_close bounds the wait
  // or a child run of this workflow, started with the rendered input; the
  // task waits for it and ends as it ends (its output is the child's output)
  std::string workflow;
  std::optional<int> workflow_version;  // pinned; default: the latest when it starts
  std::vector<std::string> depends_on;
  std::string input = "{}";  // JSON; strings may hold {{ templates }}
  std::string when;          // condition; empty: always
  std::string for_each;      // expression yielding a list; empty: one task
  RetryPolicy retry;
  TaskTimeouts timeouts;
  int priority = 0;  // -1000..1000, higher runs first
};

// What happens to a run that would exceed its workflow's concurrency limit.
enum class ConcurrencyStrategy {
  kQueue,         // it waits in `pending` and starts when a run of its group finishes
  kCancelNewest,  // it is cancelled at once
  kCancelOldest,  // the oldest active run of its group is cancelled to make room
};
std::string_view to_string(ConcurrencyStrategy s) noexcept;

// At most `limit` active (running or paused) runs of a workflow at once per
// group: one group for the whole workflow (every version), or one per value
// of `key`, a template over the run's input ("{{ input.repo }}").
struct ConcurrencyLimit {
  int limit = 1;  // 1-10000
  std::string key;
  ConcurrencyStrategy strategy = ConcurrencyStrategy::kQueue;
};

struct WorkflowDefinition {
  std::string name;  // [a-z0-9][a-z0-9._-]*, at most 128
  std::string description;
  std::map<std::string, std::string> labels;
  std::optional<std::chrono::milliseconds> timeout;  // of a whole run
  std::string input_schema = "{}";                   // JSON Schema for run input
  std::optional<ConcurrencyLimit> concurrency;
  std::vector<TaskDefinition> tasks;

  // The canonical JSON form (what is stored and hashed).
  std::string to_json() const;
};

struct DefinitionProblem {
  std::string path;  // JSON path, e.g. $.tasks[2].depends_on[0]
  std::string message;
  bool warning = false;  // warnings do not stop a definition from being stored
};

struct DefinitionReport {
  std::vector<DefinitionProblem> problems;
  bool ok() const noexcept;      // no errors (warnings allowed)
  std::string describe() const;  // "path: message; ..." (errors first)
  std::vector<DefinitionProblem> warnings() const;
};

// Parses and checks a definition. With a registry, a capability that no
// registered agent's deployed version offers (or an unknown named agent) is
// a warning: agents may register after the workflow. Never throws for a bad
// definition: the report holds every problem, and the definition is returned
// only when there is no error.
std::pair<std::optional<WorkflowDefinition>, DefinitionReport> validate_definition(
    std::string_view definition_json, Registry* registry = nullptr);

// The JSON Schema that validate_definition enforces for the structure (the
// meaning — dependencies, cycles, templates — is checked on top).
std::string_view definition_schema() noexcept;

// Builds a definition in code; build() validates it as JSON would be.
class WorkflowBuilder {
 public:
  explicit WorkflowBuilder(std::string name);
  WorkflowBuilder& description(std::string text);
  WorkflowBuilder& label(std::string key, std::string value);
  WorkflowBuilder& timeout(std::chrono::milliseconds t);
  WorkflowBuilder& input_schema(std::string schema_json);
  WorkflowBuilder& concurrency(ConcurrencyLimit limit);

  class TaskBuilder {
   public:
    TaskBuilder& capability(std::string name, std::string range = "*");
    TaskBuilder& agent(std::string owner_slash_name);
    TaskBuilder& sleep(std::chrono::milliseconds d);
    TaskBuilder& until(std::string rfc3339_template);
    TaskBuilder& signal(std::string name);
    TaskBuilder& workflow(std::string name, std::optional<int> version = std::nullopt);
    TaskBuilder& depends_on(std::vector<std::string> ids);
    TaskBuilder& input(std::string json);
    TaskBuilder& when(std::string expression);
    TaskBuilder& for_each(std::string expression);
    TaskBuilder& retry(RetryPolicy policy);
    TaskBuilder& timeouts(TaskTimeouts t);
    TaskBuilder& priority(int p);
    // Back to the workflow, to add the next task or build().
    WorkflowBuilder& done() { return parent_; }

   private:
    friend class WorkflowBuilder;
    TaskBuilder(WorkflowBuilder& parent, std::size_t index) : parent_(parent), index_(index) {}
    TaskDefinition& task();
    WorkflowBuilder& parent_;
    std::size_t index_;
  };

  TaskBuilder task(std::string id);

  // Throws Error{kInvalidArgument} with every problem when invalid.
  WorkflowDefinition build(Registry* registry = nullptr) const;

 private:
  WorkflowDefinition def_;
};

struct StoredWorkflow {
  std::string id;  // uuid v7 of this version
  std::string name;
  int version = 0;
  std::string owner;
  WorkflowDefinition definition;
  std::string definition_json;  // canonical
  std::string checksum;         // of definition_json
  Micros created_at = 0;
  std::vector<DefinitionProblem> warnings;  // only on the create() that stored it
};

struct WorkflowSummary {
  std::string name;
  int latest_version = 0;
  std::string owner;
  Micros updated_at = 0;
};

class WorkflowCatalog {
 public:
  static std::vector<Migration> migrations();

  // Applies migrations() to `db`. `registry` (optional) is used for the
  // capability warnings; `secrets` (optional) for refusing definitions that
  // name a secret their owner may not use. All must outlive the catalog.
  WorkflowCatalog(Database& db, Registry* registry = nullptr,
                  std::shared_ptr<Clock> clock = SystemClock::instance(),
                  SecretStore* secrets = nullptr);

  // Validates and stores `definition_json` as the next version of its name.
  // Storing a definition identical to the latest version returns that version
  // (so applying the same file twice is harmless). Throws
  // Error{kInvalidArgument} listing every problem, Error{kPermissionDenied}
  // naming a secret in a task's input that `owner` may not use.
  // `may_add_version`, when given, sees the owner of the name's latest
  // version inside the storing transaction (nothing when the name is new)
  // and throws to refuse: two callers creating one new name at once cannot
  // both pass a check made before either stored.
  StoredWorkflow create(
      std::string_view definition_json, std::string_view owner,
      const std::function<void(const std::string& existing_owner)>& may_add_version = {});
  // The latest version, or the given one. Error{kNotFound} when absent.
  StoredWorkflow get(std::string_view name, std::optional<int> version = std::nullopt);
  // Every version of `name`, newest first.
  std::vector<StoredWorkflow> versions(std::string_view name);
  // One entry per workflow name, sorted by name.
  std::vector<WorkflowSummary> list();

 private:
  Database& db_;
  Registry* registry_;
  std::shared_ptr<Clock> clock_;
  SecretStore* secrets_;
};

}  // namespace devcycle
