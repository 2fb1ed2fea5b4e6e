#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <set>

#include "common/field_checks.h"
#include "common/json_schema_internal.h"
#include "devcycle/common/duration.h"
#include "devcycle/common/error.h"
#include "devcycle/common/json_schema.h"
#include "devcycle/registry/registry.h"
#include "devcycle/registry/semver.h"
#include "devcycle/workflow/expression.h"
#include "devcycle/workflow/workflow.h"

namespace devcycle {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

constexpr std::string_view kSchema =
#include "workflow/definition_schema.inc"
    ;

const std::set<std::string, std::less<>> kRoots = {"input", "tasks", "run", "item", "index"};

class Checker {
 public:
  explicit Checker(Registry* registry) : registry_(registry) {}

  DefinitionReport report;

  void error(std::string path, std::string message) {
    report.problems.push_back({std::move(path), std::move(message), false});
  }
  void warning(std::string path, std::string message) {
    report.problems.push_back({std::move(path), std::move(message), true});
  }

  // Runs `check`, turning a thrown "<path>: reason" into a problem at `path`.
  template <class F>
  bool capture(const std::string& path, F&& check) {
    try {
      check();
      return true;
    } catch (const Error& e) {
      std::string msg = e.what();
      if (msg.starts_with(path + ": "))
        msg = msg.substr(path.size() + 2);
      else if (msg.starts_with(path + " "))
        msg = msg.substr(path.size() + 1);
      error(path, msg);
      return false;
    }
  }

  std::optional<std::chrono::milliseconds> duration(const json& obj, const char* key,
                                                    const std::string& path) {
    const auto it = obj.find(key);
    if (it == obj.end() || !it->is_string()) return std::nullopt;
    std::optional<std::chrono::milliseconds> out;
    const auto p = path + "." + key;
    capture(p, [&] { out = parse_duration(it->get<std::string>(), p); });
    return out;
  }

  std::optional<WorkflowDefinition> run(const json& doc) {
    static const JsonSchema schema = JsonSchema::parse(kSchema, "definition schema");
    for (auto& v : internal::validate(schema, doc)) error(v.path, v.message);
    if (!doc.is_object()) return std::nullopt;

    WorkflowDefinition def;
    if (const auto it = doc.find("name"); it != doc.end() && it->is_string()) {
      def.name = it->get<std::string>();
      capture("$.name", [&] {
        internal::check_lower_name("$.name", def.name, 128);
        // The API's own path: GET /workflows/validate could never read it.
        if (def.name == "validate")
          throw Error(ErrorCode::kInvalidArgument, "$.name: \"validate\" is reserved");
      });
    }
    if (const auto it = doc.find("description"); it != doc.end() && it->is_string()) {
      def.description = it->get<std::string>();
      capture("$.description",
              [&] { internal::check_text("$.description", def.description, 4096); });
    }
    if (const auto it = doc.find("labels"); it != doc.end() && it->is_object()) {
      for (const auto& [k, v] : it->items()) {
        const auto p = internal::json_path_child("$.labels", k);
        capture(p, [&] {
          internal::check_name(p, k, 63, "a-z0-9", "a-z0-9._/-", "[a-z0-9][a-z0-9._/-]*");
        });
        if (v.is_string()) def.labels[k] = v.get<std::string>();
      }
    }
    def.timeout = duration(doc, "timeout", "$");
    if (const auto it = doc.find("concurrency"); it != doc.end() && it->is_object()) {
      ConcurrencyLimit c;
      if (const auto l = it->find("limit"); l != it->end() && l->is_number_integer())
        c.limit = l->get<int>();
      if (const auto k = it->find("key"); k != it->end() && k->is_string()) {
        c.key = k->get<std::string>();
        check_templates(
            json(c.key), "$.concurrency.key",
            [&](const std::vector<std::vector<std::string>>& refs, const std::string& p) {
              for (const auto& r : refs) {
                if (r.front() != "input")
                  error(p,
                        "a concurrency key reads only input (it is known before "
                        "the run starts)");
              }
            });
      }
      if (const auto st = it->find("strategy"); st != it->end() && st->is_string()) {
        const auto name = st->get<std::string>();
        c.strategy = name == "cancel_newest"   ? ConcurrencyStrategy::kCancelNewest
                     : name == "cancel_oldest" ? ConcurrencyStrategy::kCancelOldest
                                               : ConcurrencyStrategy::kQueue;
      }
      def.concurrency = c;
    }
    if (const auto it = doc.find("input_schema"); it != doc.end()) {
      def.input_schema = it->dump();
      capture("$.input_schema", [&] { JsonSchema::parse(def.input_schema, "$.input_schema"); });
    }

    const auto tasks_it = doc.find("tasks");
    if (tasks_it == doc.end() || !tasks_it->is_array()) return finish(def);
    std::map<std::string, std::size_t> first_at;
    for (std::size_t i = 0; i < tasks_it->size(); ++i) {
      const auto& t = (*tasks_it)[i];
      const auto path = "$.tasks[" + std::to_string(i) + "]";
      TaskDefinition task;
      if (t.is_object()) parse_task(t, path, task);
      if (!task.id.empty()) {
        const auto [it, fresh] = first_at.emplace(task.id, i);
        if (!fresh) {
          error(path + ".id", "duplicate id \"" + task.id + "\" (first used at $.tasks[" +
                                  std::to_string(it->second) + "])");
        }
      }
      def.tasks.push_back(std::move(task));
    }
    check_dependencies(def, first_at);
    return finish(def);
  }

 private:
  std::optional<WorkflowDefinition> finish(WorkflowDefinition& def) {
    if (!report.ok()) return std::nullopt;
    return std::move(def);
  }

  void parse_task(const json& t, const std::string& path, TaskDefinition& task) {
    if (const auto it = t.find("id"); it != t.end() && it->is_string()) {
      task.id = it->get<std::string>();
      if (!capture(path + ".id", [&] {
            internal::check_name(path + ".id", task.id, 64, "a-z0-9", "a-z0-9_-",
                                 "[a-z0-9][a-z0-9_-]*");
          })) {
        task.id.clear();
      }
    }
    const bool has_cap = t.contains("capability");
    const bool has_agent = t.contains("agent");
    const int kinds = int(has_cap) + int(has_agent) + int(t.contains("sleep")) +
                      int(t.contains("until")) + int(t.contains("signal")) +
                      int(t.contains("workflow"));
    if (kinds != 1) {
      error(path, kinds == 0 ? "needs a capability (with an optional version range), an agent, "
                               "a child workflow, or no agent at all: sleep, until or signal"
                             : "give one of capability, agent, workflow, sleep, until and signal");
    }
    if (const auto it = t.find("workflow"); it != t.end() && it->is_string()) {
      task.workflow = it->get<std::string>();
      capture(path + ".workflow",
              [&] { internal::check_lower_name(path + ".workflow", task.workflow, 128); });
    }
    if (const auto it = t.find("workflow_version"); it != t.end() && it->is_number_integer()) {
      if (task.workflow.empty()) error(path + ".workflow_version", "applies only to a workflow");
      task.workflow_version = it->get<int>();
    }
    if (auto d = duration(t, "sleep", path)) task.sleep = *d;
    if (const auto it = t.find("until"); it != t.end() && it->is_string()) {
      task.until = it->get<std::string>();
      capture(path + ".until", [&] { Template::parse(task.until, path + ".until"); });
    }
    if (const auto it = t.find("signal"); it != t.end() && it->is_string()) {
      task.signal = it->get<std::string>();
      capture(path + ".signal",
              [&] { internal::check_lower_name(path + ".signal", task.signal, 64); });
    }
    if ((task.sleep || !task.until.empty() || !task.signal.empty()) && t.contains("for_each")) {
      error(path + ".for_each", "a timer or a signal wait is one task; it cannot fan out");
    }
    if (const auto it = t.find("capability"); it != t.end() && it->is_string()) {
      task.capability = it->get<std::string>();
      capture(path + ".capability",
              [&] { internal::check_lower_name(path + ".capability", task.capability, 128); });
    }
    if (const auto it = t.find("version"); it != t.end() && it->is_string()) {
      if (has_agent && !has_cap) error(path + ".version", "applies only to a capability");
      task.version_range = it->get<std::string>();
      capture(path + ".version",
              [&] { VersionRange::parse(task.version_range, path + ".version"); });
    }
    if (const auto it = t.find("agent"); it != t.end() && it->is_string()) {
      task.agent = it->get<std::string>();
      const auto slash = task.agent.find('/');
      if (slash == std::string::npos || slash == 0 || slash + 1 == task.agent.size()) {
        error(path + ".agent", "\"" + task.agent.substr(0, 128) + "\" must be owner/name");
      }
    }
    if (const auto it = t.find("depends_on"); it != t.end() && it->is_array()) {
      for (const auto& d : *it) {
        if (d.is_string()) task.depends_on.push_back(d.get<std::string>());
      }
    }
    if (const auto it = t.find("input"); it != t.end()) task.input = it->dump();
    if (const auto it = t.find("when"); it != t.end() && it->is_string()) {
      task.when = it->get<std::string>();
      capture(path + ".when", [&] { Expression::parse(task.when, path + ".when"); });
    }
    if (const auto it = t.find("for_each"); it != t.end() && it->is_string()) {
      task.for_each = it->get<std::string>();
      capture(path + ".for_each", [&] { Expression::parse(task.for_each, path + ".for_each"); });
    }
    if (const auto it = t.find("retry"); it != t.end() && it->is_object()) {
      const auto& r = *it;
      if (const auto m = r.find("max_attempts"); m != r.end() && m->is_number_integer()) {
        task.retry.max_attempts = m->get<int>();
      }
      if (auto d = duration(r, "initial", path + ".retry")) task.retry.initial = *d;
      if (auto d = duration(r, "max", path + ".retry")) task.retry.max = *d;
      if (const auto m = r.find("multiplier"); m != r.end() && m->is_number())
        task.retry.multiplier = m->get<double>();
      if (const auto m = r.find("jitter"); m != r.end() && m->is_number())
        task.retry.jitter = m->get<double>();
      if (task.retry.initial > task.retry.max) {
        error(path + ".retry", "initial (" + format_duration(task.retry.initial) +
                                   ") is longer than max (" + format_duration(task.retry.max) +
                                   ")");
      }
    }
    if (const auto it = t.find("timeouts"); it != t.end() && it->is_object()) {
      task.timeouts.schedule_to_start = duration(*it, "schedule_to_start", path + ".timeouts");
      task.timeouts.start_to_close = duration(*it, "start_to_close", path + ".timeouts");
      task.timeouts.heartbeat = duration(*it, "heartbeat", path + ".timeouts");
      for (const auto& [key, value] :
           {std::pair{"schedule_to_start", task.timeouts.schedule_to_start},
            std::pair{"start_to_close", task.timeouts.start_to_close},
            std::pair{"heartbeat", task.timeouts.heartbeat}}) {
        if (value && value->count() == 0)
          error(path + ".timeouts." + key, "must be longer than 0s");
      }
    }
    if (const auto it = t.find("priority"); it != t.end() && it->is_number_integer()) {
      task.priority = it->get<int>();
    }
  }

  void check_dependencies(const WorkflowDefinition& def,
                          const std::map<std::string, std::size_t>& index) {
    const auto n = def.tasks.size();
    std::vector<std::vector<std::size_t>> deps(n);
    for (std::size_t i = 0; i < n; ++i) {
      std::set<std::string> seen;
      for (std::size_t k = 0; k < def.tasks[i].depends_on.size(); ++k) {
        const auto& d = def.tasks[i].depends_on[k];
        const auto p = "$.tasks[" + std::to_string(i) + "].depends_on[" + std::to_string(k) + "]";
        if (!seen.insert(d).second) {
          error(p, "\"" + d + "\" is listed twice");
        } else if (d == def.tasks[i].id) {
          error(p, "a task cannot depend on itself");
        } else if (const auto it = index.find(d); it == index.end()) {
          error(p, "unknown task \"" + d + "\"");
        } else {
          deps[i].push_back(it->second);
        }
      }
    }

    // Cycles: depth-first search with colours; each cycle is reported once.
    std::vector<int> colour(n, 0);
    std::vector<std::size_t> stack;
    bool cyclic = false;
    std::function<void(std::size_t)> visit = [&](std::size_t v) {
      colour[v] = 1;
      stack.push_back(v);
      for (auto w : deps[v]) {
        if (colour[w] == 1) {
          cyclic = true;
          const auto start = std::find(stack.begin(), stack.end(), w);
          std::string names;
          for (auto it = start; it != stack.end(); ++it) names += def.tasks[*it].id + " -> ";
          error("$.tasks[" + std::to_string(w) + "].depends_on",
                "cycle: " + names + def.tasks[w].id);
        } else if (colour[w] == 0) {
          visit(w);
        }
      }
      stack.pop_back();
      colour[v] = 2;
    };
    for (std::size_t i = 0; i < n; ++i) {
      if (colour[i] == 0) visit(i);
    }

    // Everything a task may read: its transitive dependencies.
    std::vector<std::set<std::string>> upstream(n);
    if (!cyclic) {
      std::vector<bool> done(n, false);
      std::function<void(std::size_t)> collect = [&](std::size_t v) {
        if (done[v]) return;
        for (auto w : deps[v]) {
          collect(w);
          upstream[v].insert(def.tasks[w].id);
          upstream[v].insert(upstream[w].begin(), upstream[w].end());
        }
        done[v] = true;
      };
      for (std::size_t i = 0; i < n; ++i) collect(i);
    }

    for (std::size_t i = 0; i < n; ++i) {
      const auto& t = def.tasks[i];
      const auto path = "$.tasks[" + std::to_string(i) + "]";
      auto check_refs = [&](const std::vector<std::vector<std::string>>& refs, const std::string& p,
                            bool allow_item, bool allow_secrets = false) {
        for (const auto& r : refs) {
          const auto& root = r.front();
          if (root == "secrets") {
            if (!allow_secrets) {
              error(p,
                    "secrets may be read only in a task's input, where they reach the agent "
                    "and nothing else");
            } else if (r.size() != 2 || r[1].empty() ||
                       !std::isalpha(static_cast<unsigned char>(r[1][0])) || r[1].size() > 64) {
              error(p, "read a secret as secrets.NAME (a letter, then letters, digits and '_')");
            }
            continue;
          }
          if (!kRoots.count(root)) {
            error(p, "\"" + root + "\" is not something a definition can read (input, tasks, run" +
                         std::string(allow_item ? ", item, index" : "") + ")");
          } else if ((root == "item" || root == "index") && !allow_item) {
            error(p, "\"" + root + "\" exists only in tasks with for_each");
          } else if (root == "tasks") {
            if (r.size() < 2) {
              error(p, "read tasks.<id>.output, not tasks as a whole");
            } else if (!index.count(r[1])) {
              error(p, "references unknown task \"" + r[1] + "\"");
            } else if (!cyclic && !upstream[i].count(r[1])) {
              error(p, "references task \"" + r[1] + "\", which is not upstream of \"" + t.id +
                           "\" (add it to depends_on)");
            } else if (r.size() >= 3 && r[2] != "output") {
              error(p, "tasks." + r[1] + "." + r[2] + " does not exist (tasks expose only output)");
            }
          }
        }
      };
      const bool fan_out = !t.for_each.empty();
      // Syntax errors were reported while parsing the task; only what parses is checked here.
      if (auto refs = references_of(t.when)) check_refs(*refs, path + ".when", fan_out);
      if (auto refs = references_of(t.for_each)) check_refs(*refs, path + ".for_each", false);
      if (!t.until.empty()) {
        check_templates(json(t.until), path + ".until",
                        [&](const std::vector<std::vector<std::string>>& refs,
                            const std::string& p) { check_refs(refs, p, false); });
      }
      check_templates(json::parse(t.input), path + ".input",
                      [&](const std::vector<std::vector<std::string>>& refs, const std::string& p) {
                        check_refs(refs, p, fan_out, /*allow_secrets=*/true);
                      });
      if (registry_) check_registry(t, path);
    }
  }

  static std::optional<std::vector<std::vector<std::string>>> references_of(
      const std::string& expr) {
    if (expr.empty()) return std::nullopt;
    try {
      return Expression::parse(expr).references();
    } catch (const Error&) {
      return std::nullopt;
    }
  }

  template <class F>
  void check_templates(const json& v, const std::string& path, F&& check_refs) {
    if (v.is_string()) {
      capture(path,
              [&] { check_refs(Template::parse(v.get<std::string>(), path).references(), path); });
    } else if (v.is_object()) {
      for (const auto& [k, child] : v.items())
        check_templates(child, internal::json_path_child(path, k), check_refs);
    } else if (v.is_array()) {
      for (std::size_t i = 0; i < v.size(); ++i)
        check_templates(v[i], path + "[" + std::to_string(i) + "]", check_refs);
    }
  }

  void check_registry(const TaskDefinition& t, const std::string& path) {
    try {
      if (!t.capability.empty()) {
        CapabilityQuery q;
        q.capability = t.capability;
        q.range = t.version_range;
        q.include_offline = true;
        q.limit = 1;
        if (registry_->select(q).empty()) {
          warning(path + ".capability", "no registered agent offers " + t.capability + "@" +
                                            t.version_range + " yet; runs will wait for one");
        }
      } else if (!t.agent.empty()) {
        const auto slash = t.agent.find('/');
        registry_->get_by_name(t.agent.substr(0, slash), t.agent.substr(slash + 1));
      }
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kNotFound) {
        warning(path + ".agent",
                "no agent \"" + t.agent + "\" is registered yet; runs will wait for it");
      }
      // Other errors (bad ranges) were reported above.
    }
  }

  Registry* registry_;
};

ordered_json duration_json(const std::optional<std::chrono::milliseconds>& d) {
  return d ? ordered_json(format_duration(*d)) : ordered_json(nullptr);
}

}  // namespace

bool DefinitionReport::ok() const noexcept {
  return std::none_of(problems.begin(), problems.end(), [](const auto& p) { return !p.warning; });
}

std::string DefinitionReport::describe() const {
  std::string out;
  for (bool warnings_pass : {false, true}) {
    for (const auto& p : problems) {
      if (p.warning != warnings_pass) continue;
      if (!out.empty()) out += "; ";
      out += (p.warning ? "warning: " : "") + p.path + ": " + p.message;
    }
  }
  return out;
}

std::vector<DefinitionProblem> DefinitionReport::warnings() const {
  std::vector<DefinitionProblem> out;
  for (const auto& p : problems) {
    if (p.warning) out.push_back(p);
  }
  return out;
}

std::string_view definition_schema() noexcept { return kSchema; }

std::string_view to_string(ConcurrencyStrategy s) noexcept {
  switch (s) {
    case ConcurrencyStrategy::kCancelNewest:
      return "cancel_newest";
    case ConcurrencyStrategy::kCancelOldest:
      return "cancel_oldest";
    case ConcurrencyStrategy::kQueue:
      break;
  }
  return "queue";
}

std::pair<std::optional<WorkflowDefinition>, DefinitionReport> validate_definition(
    std::string_view definition_json, Registry* registry) {
  Checker checker(registry);
  json doc;
  try {
    doc = internal::parse_json(definition_json, "$");
  } catch (const Error& e) {
    std::string msg = e.what();
    if (msg.starts_with("$: ")) msg = msg.substr(3);
    checker.error("$", msg);
    return {std::nullopt, checker.report};
  }
  auto def = checker.run(doc);
  return {std::move(def), checker.report};
}

std::string WorkflowDefinition::to_json() const {
  ordered_json j;
  j["name"] = name;
  if (!description.empty()) j["description"] = description;
  if (!labels.empty()) j["labels"] = labels;
  if (timeout) j["timeout"] = format_duration(*timeout);
  j["input_schema"] = ordered_json::parse(input_schema);
  if (concurrency) {
    ordered_json c;
    c["limit"] = concurrency->limit;
    if (!concurrency->key.empty()) c["key"] = concurrency->key;
    c["strategy"] = to_string(concurrency->strategy);
    j["concurrency"] = std::move(c);
  }
  j["tasks"] = ordered_json::array();
  for (const auto& t : tasks) {
    ordered_json o;
    o["id"] = t.id;
    if (!t.capability.empty()) {
      o["capability"] = t.capability;
      o["version"] = t.version_range;
    } else if (!t.agent.empty()) {
      o["agent"] = t.agent;
    } else if (t.sleep) {
      o["sleep"] = format_duration(*t.sleep);
    } else if (!t.until.empty()) {
      o["until"] = t.until;
    } else if (!t.workflow.empty()) {
      o["workflow"] = t.workflow;
      if (t.workflow_version) o["workflow_version"] = *t.workflow_version;
    } else {
      o["signal"] = t.signal;
    }
    o["depends_on"] = t.depends_on;
    o["input"] = ordered_json::parse(t.input);
    if (!t.when.empty()) o["when"] = t.when;
    if (!t.for_each.empty()) o["for_each"] = t.for_each;
    o["retry"] = {{"max_attempts", t.retry.max_attempts},
                  {"initial", format_duration(t.retry.initial)},
                  {"multiplier", t.retry.multiplier},
                  {"max", format_duration(t.retry.max)},
                  {"jitter", t.retry.jitter}};
    ordered_json timeouts = ordered_json::object();
    if (t.timeouts.schedule_to_start)
      timeouts["schedule_to_start"] = duration_json(t.timeouts.schedule_to_start);
    if (t.timeouts.start_to_close)
      timeouts["start_to_close"] = duration_json(t.timeouts.start_to_close);
    if (t.timeouts.heartbeat) timeouts["heartbeat"] = duration_json(t.timeouts.heartbeat);
    o["timeouts"] = timeouts;
    o["priority"] = t.priority;
    j["tasks"].push_back(std::move(o));
  }
  return j.dump();
}

WorkflowBuilder::WorkflowBuilder(std::string name) { def_.name = std::move(name); }
WorkflowBuilder& WorkflowBuilder::description(std::string text) {
  def_.description = std::move(text);
  return *this;
}
WorkflowBuilder& WorkflowBuilder::label(std::string key, std::string value) {
  def_.labels[std::move(key)] = std::move(value);
  return *this;
}
WorkflowBuilder& WorkflowBuilder::timeout(std::chrono::milliseconds t) {
  def_.timeout = t;
  return *this;
}
WorkflowBuilder& WorkflowBuilder::input_schema(std::string schema_json) {
  def_.input_schema = std::move(schema_json);
  return *this;
}
WorkflowBuilder& WorkflowBuilder::concurrency(ConcurrencyLimit limit) {
  def_.concurrency = std::move(limit);
  return *this;
}
WorkflowBuilder::TaskBuilder WorkflowBuilder::task(std::string id) {
  TaskDefinition t;
  t.id = std::move(id);
  def_.tasks.push_back(std::move(t));
  return TaskBuilder(*this, def_.tasks.size() - 1);
}
TaskDefinition& WorkflowBuilder::TaskBuilder::task() { return parent_.def_.tasks[index_]; }
WorkflowBuilder::TaskBuilder& WorkflowBuilder::TaskBuilder::sleep(std::chrono::milliseconds d) {
  task().sleep = d;
  return *this;
}
WorkflowBuilder::TaskBuilder& WorkflowBuilder::TaskBuilder::until(std::string rfc3339_template) {
  task().until = std::move(rfc3339_template);
  return *this;
}
WorkflowBuilder::TaskBuilder& WorkflowBuilder::TaskBuilder::signal(std::string name) {
  task().signal = std::move(name);
  return *this;
}
WorkflowBuilder::TaskBuilder& WorkflowBuilder::TaskBuilder::workflow(std::string name,
                                                                     std::optional<int> version) {
  task().workflow = std::move(name);
  task().workflow_version = version;
  return *this;
}
WorkflowBuilder::TaskBuilder& WorkflowBuilder::TaskBuilder::capability(std::string name,
                                                                       std::string range) {
  task().capability = std::move(name);
  task().version_range = std::move(range);
  return *this;
}
WorkflowBuilder::TaskBuilder& WorkflowBuilder::TaskBuilder::agent(std::string owner_slash_name) {
  task().agent = std::move(owner_slash_name);
  return *this;
}
WorkflowBuilder::TaskBuilder& WorkflowBuilder::TaskBuilder::depends_on(
    std::vector<std::string> ids) {
  task().depends_on = std::move(ids);
  return *this;
}
WorkflowBuilder::TaskBuilder& WorkflowBuilder::TaskBuilder::input(std::string json_text) {
  task().input = std::move(json_text);
  return *this;
}
WorkflowBuilder::TaskBuilder& WorkflowBuilder::TaskBuilder::when(std::string expression) {
  task().when = std::move(expression);
  return *this;
}
WorkflowBuilder::TaskBuilder& WorkflowBuilder::TaskBuilder::for_each(std::string expression) {
  task().for_each = std::move(expression);
  return *this;
}
WorkflowBuilder::TaskBuilder& WorkflowBuilder::TaskBuilder::retry(RetryPolicy policy) {
  task().retry = policy;
  return *this;
}
WorkflowBuilder::TaskBuilder& WorkflowBuilder::TaskBuilder::timeouts(TaskTimeouts t) {
  task().timeouts = t;
  return *this;
}
WorkflowBuilder::TaskBuilder& WorkflowBuilder::TaskBuilder::priority(int p) {
  task().priority = p;
  return *this;
}

WorkflowDefinition WorkflowBuilder::build(Registry* registry) const {
  // Building goes through the JSON form, so code and files obey one set of rules.
  std::string text;
  try {
    text = def_.to_json();
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument,
                "workflow " + def_.name +
                    ": a task input or the input schema is not valid JSON: " + e.what());
  }
  auto [def, report] = validate_definition(text, registry);
  if (!def)
    throw Error(ErrorCode::kInvalidArgument, "workflow " + def_.name + ": " + report.describe());
  return *def;
}

}  // namespace devcycle
