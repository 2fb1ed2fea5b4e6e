// Process agents: a task run as a program on this host.
//
// An agent version with executor `process:["/abs/path", "arg", ...]` runs
// that argv — never through a shell, and only from the version's own
// configuration: task input reaches the process on stdin only, as JSON; its
// stdout (JSON) is the task's output; each line of stderr is a task log
// line. The agent's configuration is in ./agent.json, with the secrets it
// names ({{ secrets.NAME }}) put in. Each attempt gets a fresh working directory, a scrubbed
// environment, rlimits on CPU time and memory, and its own process group,
// which the timeout (the task's start_to_close, else `timeout`) and
// cancellation kill whole; PR_SET_PDEATHSIG kills it with its engine.
//
// A process agent is arbitrary code on the host, so the executable must be
// on the operator's allow-list: named exactly as an entry is written, and
// the same file by realpath (a link made elsewhere to an allowed program is
// refused). Interpreters (sh, bash, python3, node, ...) need the entry's
// `interpreter` flag, because with them argv is a program of its own.
//
// Thread-safety: plain values and pure functions; run_process may be called
// from many threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace devcycle {

struct AllowedExecutable {
  std::string path;          // absolute
  bool interpreter = false;  // may run programs given as arguments
};

struct ProcessOptions {
  std::vector<AllowedExecutable> allow;  // empty: no process agents run here
  std::chrono::milliseconds timeout{5 * 60 * 1000};
  std::uint64_t memory_bytes = 1024ull * 1024 * 1024;  // RLIMIT_AS
  std::uint64_t cpu_seconds = 600;                     // RLIMIT_CPU
  // RLIMIT_NPROC: processes the engine's user may have when the program
  // forks (a fork bomb stops there; the kernel does not apply it to root).
  std::uint64_t max_processes = 4096;
  std::uint64_t max_file_bytes = 1024ull * 1024 * 1024;  // RLIMIT_FSIZE: any file it writes
  std::size_t max_output_bytes = 16 * 1024 * 1024;       // stdout beyond it fails the attempt
  std::string work_root;  // per-attempt directories go here; empty: $TMPDIR or /tmp
};

// Parses an executor "process:[...]" into its argv. Throws
// Error{kInvalidArgument} naming "executor".
std::vector<std::string> parse_process_argv(std::string_view executor);

// Throws Error{kPermissionDenied} naming the executable when argv[0] is not
// on the allow-list as described above.
void check_allowed(const std::vector<std::string>& argv, const ProcessOptions& options);

struct ProcessResult {
  int exit_code = -1;      // when it exited
  int signal = 0;          // when a signal ended it
  bool timed_out = false;  // killed by the timeout
  bool cancelled = false;  // killed because `cancelled()` said so
  bool output_too_large = false;
  std::string output;  // stdout
  // Regular files the program left in ./artifacts/ (name, bytes), when it
  // exited 0: at most 100, within max_output_bytes together.
  std::vector<std::pair<std::string, std::string>> artifacts;
};

struct ProcessCall {
  std::vector<std::string> argv;
  std::string input;                     // written to stdin, then stdin is closed
  std::chrono::milliseconds timeout{0};  // 0: ProcessOptions::timeout
  std::function<void(std::string_view line)> on_stderr_line;
  std::function<bool()> cancelled;  // polled; true kills the process group
  // Files written into the working directory before the program starts
  // (name, content; mode 0600): the agent's configuration as agent.json.
  std::vector<std::pair<std::string, std::string>> files;
};

// Runs one attempt (after check_allowed). Throws Error{kUnavailable} when
// the process cannot be started.
ProcessResult run_process(const ProcessCall& call, const ProcessOptions& options);

// One sentence on how an attempt ended, for the task's error.
std::string describe(const ProcessResult& r, const ProcessOptions& options);

}  // namespace devcycle
