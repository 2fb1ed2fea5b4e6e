#include "devcycle/workflow/process_executor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/no_sigpipe.h"
#include "devcycle/common/error.h"

namespace devcycle {

namespace {

[[noreturn]] void bad_executor(const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, "executor: " + why);
}

std::string real_path(const std::string& path) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf)) return {};
  return buf;
}

// Programs that run other programs given as arguments.
bool is_interpreter(std::string_view base) {
  static constexpr std::array<std::string_view, 14> kNames = {
      "sh",   "bash", "dash", "zsh",    "ksh", "fish", "env",
      "perl", "ruby", "node", "nodejs", "php", "lua",  "busybox"};
  for (auto n : kNames) {
    if (base == n) return true;
  }
  return base.starts_with("python") || base.starts_with("perl") || base.starts_with("ruby");
}

void close_quietly(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// A fresh directory for one attempt, removed afterwards.
struct WorkDir {
  std::string path;
  explicit WorkDir(const std::string& root) {
    std::string base = root;
    if (base.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      base = tmp && *tmp ? tmp : "/tmp";
    }
    std::string templ = base + "/devcycle-task-XXXXXX";
    if (!::mkdtemp(templ.data())) {
      throw Error(ErrorCode::kUnavailable, "process: cannot make a working directory in " + base +
                                               ": " + std::strerror(errno));
    }
    path = templ;
  }
  ~WorkDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

// Regular files (never links) directly in `dir`, bounded.
void collect_artifacts(const std::string& dir, const ProcessOptions& options, ProcessResult& r) {
  std::error_code ec;
  if (!std::filesystem::is_directory(std::filesystem::symlink_status(dir, ec))) return;
  std::size_t total = r.output.size();
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file(ec) || entry.is_symlink(ec)) continue;
    if (r.artifacts.size() >= 100) break;
    const auto size = entry.file_size(ec);
    if (ec || total + size > options.max_output_bytes) break;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    total += bytes.size();
    r.artifacts.emplace_back(entry.path().filename().string(), std::move(bytes));
  }
}

// A limit the child can set: no higher than the hard limit the engine runs
// under (only root may raise one), so that setting it never fails for that.
rlimit within_hard_limit(int resource, rlim_t soft, rlim_t hard) {
  rlimit current{};
  if (::getrlimit(resource, &current) == 0 && current.rlim_max != RLIM_INFINITY) {
    hard = std::min(hard, current.rlim_max);
    soft = std::min(soft, hard);
  }
  return {soft, hard};
}

}  // namespace

std::vector<std::string> parse_process_argv(std::string_view executor) {
  if (!executor.starts_with("process:")) bad_executor("must start with process:");
  const auto text = executor.substr(8);
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_array() || j.empty()) {
    bad_executor("write process:[\"/absolute/program\", \"argument\", ...] (a JSON list)");
  }
  std::vector<std::string> argv;
  for (const auto& a : j) {
    if (!a.is_string()) bad_executor("every element of the argv list must be a string");
    const auto s = a.get<std::string>();
    if (s.find('\0') != std::string::npos) bad_executor("an argument holds a NUL byte");
    argv.push_back(s);
  }
  if (argv[0].empty() || argv[0][0] != '/') bad_executor("the program must be an absolute path");
  if (argv.size() > 256) bad_executor("at most 256 arguments");
  return argv;
}

void check_allowed(const std::vector<std::string>& argv, const ProcessOptions& options) {
  if (argv.empty()) bad_executor("no program");
  const auto& program = argv[0];
  const auto denied = [&](const std::string& why) {
    throw Error(ErrorCode::kPermissionDenied, "process: " + program + ": " + why);
  };
  if (options.allow.empty())
    denied("no executable is allowed on this host (process allow-list is empty)");
  const auto real = real_path(program);
  if (real.empty()) denied("does not exist");
  for (const auto& a : options.allow) {
    // Matched as the operator wrote it, and to the same file: a link made
    // elsewhere to an allowed program is not that program.
    if (a.path != program || real_path(a.path) != real) continue;
    const auto base = std::filesystem::path(real).filename().string();
    if (is_interpreter(base) && !a.interpreter) {
      denied("is an interpreter; allow it with the interpreter flag to run programs with it");
    }
    return;
  }
  denied(
      "is not on the allow-list (entries match as written; a link to an allowed program is "
      "not that program)");
}

ProcessResult run_process(const ProcessCall& call, const ProcessOptions& options) {
  if (call.argv.empty()) bad_executor("no program");
  WorkDir dir(options.work_root);
  for (const auto& [name, content] : call.files) {
    if (name.empty() || name.find('/') != std::string::npos || name.starts_with(".")) {
      bad_executor("file name \"" + name + "\" is not a plain name");
    }
    const auto path = dir.path + "/" + name;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    const bool ok = fd >= 0 && ::write(fd, content.data(), content.size()) ==
                                   static_cast<ssize_t>(content.size());
    if (fd >= 0) ::close(fd);
    if (!ok) throw Error(ErrorCode::kUnavailable, "process: cannot write " + path);
  }
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls.
  std::vector<char*> argv;
  for (const auto& a : call.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::vector<std::string> env_strings = {"PATH=/usr/local/bin:/usr/bin:/bin",
                                                "HOME=" + dir.path, "TMPDIR=" + dir.path,
                                                "LANG=C.UTF-8", "LC_ALL=C.UTF-8"};
  std::vector<char*> envp;
  for (const auto& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) throw Error(ErrorCode::kUnavailable, "process: pipe failed");
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    throw Error(ErrorCode::kUnavailable, "process: pipe failed");
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
    throw Error(ErrorCode::kUnavailable, "process: pipe failed");
  }
  const pid_t parent = ::getpid();
  const rlimit as = within_hard_limit(RLIMIT_AS, options.memory_bytes, options.memory_bytes);
  const rlimit cpu = within_hard_limit(RLIMIT_CPU, options.cpu_seconds, options.cpu_seconds + 1);
  const rlimit core{0, 0};
  const rlimit nproc =
      within_hard_limit(RLIMIT_NPROC, options.max_processes, options.max_processes);
  const rlimit fsize =
      within_hard_limit(RLIMIT_FSIZE, options.max_file_bytes, options.max_file_bytes);
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);  // read here: the child only uses what it was given
  const pid_t pid = ::fork();
  if (pid < 0) {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) ::close(fd);
    throw Error(ErrorCode::kUnavailable,
                std::string("process: fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the engine died before the line above
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the server blocks some; the child must not
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    // Every other descriptor of the engine stays behind: close_range, or
    // where the kernel or a seccomp filter refuses it, one close per number.
    if (::syscall(SYS_close_range, 3u, ~0u, 0u) != 0) {
      const rlim_t top = files.rlim_cur == RLIM_INFINITY || files.rlim_cur > (1u << 20)
                             ? (1u << 20)
                             : files.rlim_cur;
      for (rlim_t fd = 3; fd < top; ++fd) ::close(static_cast<int>(fd));
    }
    // A limit that cannot be set would leave the program unbounded: refuse to run it.
    if (::setrlimit(RLIMIT_AS, &as) != 0 || ::setrlimit(RLIMIT_CPU, &cpu) != 0 ||
        ::setrlimit(RLIMIT_CORE, &core) != 0 || ::setrlimit(RLIMIT_NPROC, &nproc) != 0 ||
        ::setrlimit(RLIMIT_FSIZE, &fsize) != 0) {
      ::_exit(126);
    }
    if (::chdir(dir.path.c_str()) != 0) ::_exit(126);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here, so that killpg works even before the child ran
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  int to_child = in[1], from_out = out[0], from_err = err[0];
  ::fcntl(to_child, F_SETFL, O_NONBLOCK);

  ProcessResult r;
  std::size_t written = 0;
  std::string err_buf;
  const auto timeout = call.timeout.count() > 0 ? call.timeout : options.timeout;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto kill_all = [&] { ::killpg(pid, SIGKILL); };
  const auto flush_err_lines = [&](bool all) {
    std::size_t start = 0;
    for (auto nl = err_buf.find('\n'); nl != std::string::npos; nl = err_buf.find('\n', start)) {
      if (call.on_stderr_line)
        call.on_stderr_line(std::string_view(err_buf).substr(start, nl - start));
      start = nl + 1;
    }
    err_buf.erase(0, start);
    if (all && !err_buf.empty()) {
      if (call.on_stderr_line) call.on_stderr_line(err_buf);
      err_buf.clear();
    }
  };
  if (call.input.empty()) close_quietly(to_child);
  while (from_out >= 0 || from_err >= 0) {
    std::array<pollfd, 3> fds{};
    nfds_t n = 0;
    if (from_out >= 0) fds[n++] = {from_out, POLLIN, 0};
    if (from_err >= 0) fds[n++] = {from_err, POLLIN, 0};
    if (to_child >= 0) fds[n++] = {to_child, POLLOUT, 0};
    const int ready = ::poll(fds.data(), n, 100);
    if (ready < 0 && errno != EINTR) break;
    for (nfds_t i = 0; i < n && ready > 0; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == to_child) {
        const auto rest = std::string_view(call.input).substr(written);
        ssize_t w = 0;
        {
          const NoSigpipeScope quiet;  // the program may have stopped reading
          w = ::write(to_child, rest.data(), rest.size());
        }
        if (w > 0) written += static_cast<std::size_t>(w);
        if (w < 0 && errno != EAGAIN) close_quietly(to_child);  // it stopped reading
        if (written == call.input.size()) close_quietly(to_child);
        continue;
      }
      char buf[65536];
      const auto got = ::read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        if (fds[i].fd == from_out)
          close_quietly(from_out);
        else
          close_quietly(from_err);
        continue;
      }
      if (fds[i].fd == from_out) {
        r.output.append(buf, static_cast<std::size_t>(got));
        if (r.output.size() > options.max_output_bytes) {
          r.output_too_large = true;
          kill_all();
        }
      } else {
        err_buf.append(buf, static_cast<std::size_t>(got));
        flush_err_lines(false);
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      r.timed_out = true;
      kill_all();
      break;
    }
    if (call.cancelled && call.cancelled()) {
      r.cancelled = true;
      kill_all();
      break;
    }
  }
  flush_err_lines(true);
  close_quietly(to_child);
  close_quietly(from_out);
  close_quietly(from_err);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // Whatever the program left running in its group goes with it.
  ::killpg(pid, SIGKILL);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  if (r.exit_code == 0 && !r.timed_out && !r.cancelled && !r.output_too_large) {
    collect_artifacts(dir.path + "/artifacts", options, r);
  }
  return r;
}

std::string describe(const ProcessResult& r, const ProcessOptions& options) {
  if (r.timed_out) return "process: killed after its timeout";
  if (r.cancelled) return "process: killed because the task was cancelled";
  if (r.output_too_large) {
    return "process: wrote more than " + std::to_string(options.max_output_bytes) +
           " bytes to stdout; killed";
  }
  const std::string limits = " (limits: memory " + std::to_string(options.memory_bytes >> 20) +
                             " MiB, CPU " + std::to_string(options.cpu_seconds) + " s)";
  if (r.signal == SIGXCPU) return "process: killed for using its CPU time" + limits;
  if (r.signal != 0) {
    return std::string("process: killed by signal ") + ::strsignal(r.signal) +
           (r.signal == SIGKILL || r.signal == SIGSEGV || r.signal == SIGABRT ? limits : "");
  }
  if (r.exit_code == 127) return "process: could not be executed (exit status 127)";
  if (r.exit_code != 0) {
    return "process: exited with status " + std::to_string(r.exit_code) +
           "; its last stderr lines are in the task log" + limits;
  }
  return "process: succeeded";
}

}  // namespace devcycle
