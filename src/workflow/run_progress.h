// Moves one run through its DAG inside a transaction: creates task rows,
// readies tasks whose dependencies are done (evaluating when, for_each and
// input templates), finishes fan-out groups and the run. Internal.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "devcycle/workflow/engine.h"
#include "devcycle/workflow/workflow.h"
#include "workflow/run_store.h"

namespace devcycle::internal {

// What a run's progress needs from the engine, bound to the same transaction.
class RunHooks {
 public:
  virtual ~RunHooks() = default;
  // Where {{ secrets.NAME }} in inputs gets its markers (null: nowhere, and
  // such a task fails).
  virtual SecretStore* secrets() = 0;
  // Starts the child run of a workflow task; throws Error when it cannot
  // (unknown workflow, input its schema refuses), which fails the task.
  struct Child {
    std::string run_id;
    std::optional<Run> finished;  // when it ended at once (its tasks were all skipped, ...)
  };
  virtual Child start_child(const TaskRow& task, const TaskDefinition& d, const Run& parent,
                            const nlohmann::json& input) = 0;
  // The run has just been written as finished.
  virtual void run_finished(const Run& run, const RunStore::Finished& what) = 0;
  // The task waiting for this child run ended (cancelled, timed out): so does the child.
  virtual void cancel_child(const std::string& child_run_id, const std::string& reason) = 0;
};

// "child run <id> failed: <error>": why a task whose child run did not succeed failed.
std::string child_error(const Run& child);

class RunProgress {
 public:
  RunProgress(RunStore& store, const WorkflowDefinition& def, Run& run, Micros now,
              std::vector<EngineEvent>& events, RunHooks& hooks);

  // Inserts a row per definition task and readies the roots.
  void create_tasks();
  // Readies what can run, finishes groups and the run. Call after any task
  // reached a terminal state.
  void advance();
  // After the definition-level task `done_key` succeeded: readies what that
  // can ready, reading only the rows concerned (a leaf reads the run's rows
  // and finishes the run when nothing else is open). Returns false, having
  // changed nothing, when the full advance() is needed instead: a dependent
  // whose input, condition or fan-out needs the run's context. Uses only the
  // run's id and status.
  bool advance_after_success(const std::string& done_key);
  // The rows advance_after_success(done_key) reads, by key: none for a leaf
  // (it reads every row of the run), nullopt when it would need the full
  // advance().
  static std::optional<std::vector<std::string>> keys_after_success(const WorkflowDefinition& def,
                                                                    const std::string& done_key);
  // Ends the run with `status`; every open task is cancelled.
  void finish_run(RunStatus status, const std::string& error);

  // The run's task rows as advance() left them.
  std::vector<TaskRow> take_rows() { return std::move(rows_); }

  // Called when a task becomes ready, before its row is written: a hook
  // that claims it (setting the row running, with its lease) returns true,
  // and the row is written once instead of twice.
  using ClaimHook = std::function<bool(TaskRow&, const TaskDefinition&)>;
  void set_claim_hook(ClaimHook hook) { claim_hook_ = std::move(hook); }

  static const TaskDefinition& definition_of(const WorkflowDefinition& def, const std::string& id);

 private:
  void load();
  void advance_rows();  // advance() over rows_ as they are
  bool make_ready(TaskRow& row);
  void ready_one(TaskRow& row, const TaskDefinition& d, const nlohmann::json& ctx);
  // A timer, a signal wait or a child run begins (or, for a signal already
  // sent or a child that ended at once, ends).
  void wait(TaskRow& row, const TaskDefinition& d, const nlohmann::json& ctx);
  nlohmann::json context() const;
  void event(EngineEvent::Kind kind, const TaskRow& row);
  void set_terminal(TaskRow& row, TaskStatus status, const std::string& error = {});
  // Writes a row's change. Rows made in this transaction are not written
  // until insert_unsaved(): each is inserted once, as it ends up, in
  // multi-row statements, instead of inserted and then updated.
  void save(const TaskRow& row);
  void insert_unsaved();

  RunStore& store_;
  const WorkflowDefinition& def_;
  Run& run_;
  Micros now_;
  std::vector<EngineEvent>& events_;
  std::vector<TaskRow> rows_;
  std::unordered_set<std::string> unsaved_;  // ids of rows_ not inserted yet
  ClaimHook claim_hook_;
  RunHooks& hooks_;
};

}  // namespace devcycle::internal
