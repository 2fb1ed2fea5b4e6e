// Process agents on this host: the allow-list, argv from configuration only,
// stdin/stdout/stderr, the sandbox's limits and the timeout.
#include "devcycle/workflow/process_executor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "devcycle/common/error.h"
#include "support/error_matchers.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

std::string real(const std::string& p) { return std::filesystem::canonical(p).string(); }

std::string python3() {
  for (const char* dir : {"/usr/bin", "/usr/local/bin"}) {
    const std::string p = std::string(dir) + "/python3";
    if (::access(p.c_str(), X_OK) == 0) return real(p);
  }
  return {};
}

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.allow = {{real("/bin/cat"), false}, {real("/bin/sh"), true}};
    options_.timeout = std::chrono::seconds(20);
  }
  ProcessResult run(std::vector<std::string> argv, std::string input,
                    std::vector<std::string>* errors = nullptr) {
    ProcessCall call;
    call.argv = std::move(argv);
    call.input = std::move(input);
    call.on_stderr_line = [errors](std::string_view l) {
      if (errors) errors->emplace_back(l);
    };
    check_allowed(call.argv, options_);
    return run_process(call, options_);
  }
  ProcessOptions options_;
  testing::TempDir dir_;
};

TEST_F(ProcessTest, InputGoesInOnStdinLiterallyAndOutputComesBack) {
  const std::string input =
      R"({"cmd": "; rm -rf / $(touch /tmp/pwned) `id` && echo x | sh", "n": 1})";
  const auto r = run({real("/bin/cat")}, input);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, input);  // arrived byte for byte, nothing was run
  EXPECT_FALSE(std::filesystem::exists("/tmp/pwned"));
}

// A program that exits without reading its input closes the pipe under the
// engine's writes; that is the program's business and must not raise SIGPIPE
// in the engine (whose default action would end the whole process).
TEST_F(ProcessTest, AProgramThatIgnoresItsInputDoesNotKillTheEngine) {
  const std::string input(4 << 20, 'x');  // far more than a pipe holds
  const auto r = run({real("/bin/sh"), "-c", "echo done"}, input);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "done\n");
  // Nor is one left pending for the engine to meet later.
  sigset_t pending;
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

TEST_F(ProcessTest, StderrLinesEnvironmentAndWorkingDirectory) {
  ::setenv("DEVCYCLE_SECRET_OF_THE_ENGINE", "x", 1);
  std::vector<std::string> errors;
  const auto r = run(
      {real("/bin/sh"), "-c", "echo one >&2; echo two >&2; env; echo \"WD=$(pwd)\"; ls -A | wc -l"},
      "", &errors);
  ::unsetenv("DEVCYCLE_SECRET_OF_THE_ENGINE");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(errors, (std::vector<std::string>{"one", "two"}));
  // A scrubbed environment: nothing of the engine's.
  EXPECT_EQ(r.output.find("DEVCYCLE"), std::string::npos);
  EXPECT_NE(r.output.find("PATH=/usr/local/bin:/usr/bin:/bin\n"), std::string::npos);
  // A fresh, empty working directory, removed afterwards.
  const auto wd_at = r.output.find("\nWD=") + 1;
  ASSERT_NE(wd_at, 0u);
  const auto wd = r.output.substr(wd_at + 3, r.output.find('\n', wd_at) - wd_at - 3);
  EXPECT_NE(wd.find("devcycle-task-"), std::string::npos);
  EXPECT_EQ(r.output.substr(r.output.find('\n', wd_at) + 1), "0\n");
  EXPECT_FALSE(std::filesystem::exists(wd));
}

TEST_F(ProcessTest, OnlyAllowListedExecutablesByTheirRealPath) {
  EXPECT_DEVCYCLE_ERROR(check_allowed({real("/bin/ls")}, options_), ErrorCode::kPermissionDenied,
                        "not on the allow-list");
  const auto link = dir_.path().string() + "/cat";
  std::filesystem::create_symlink(real("/bin/cat"), link);
  EXPECT_DEVCYCLE_ERROR(check_allowed({link}, options_), ErrorCode::kPermissionDenied,
                        "not on the allow-list", "a link to an allowed program");
  // An entry the operator wrote as a link (/usr/bin/python3 -> python3.11) is
  // matched as written.
  ProcessOptions by_link;
  by_link.allow = {{link, false}};
  EXPECT_NO_THROW(check_allowed({link}, by_link));
  EXPECT_DEVCYCLE_ERROR(check_allowed({real("/bin/cat")}, by_link), ErrorCode::kPermissionDenied,
                        "not on the allow-list");
  EXPECT_DEVCYCLE_ERROR(check_allowed({dir_.path().string() + "/nothing"}, options_),
                        ErrorCode::kPermissionDenied, "does not exist");
  ProcessOptions none;
  EXPECT_DEVCYCLE_ERROR(check_allowed({real("/bin/cat")}, none), ErrorCode::kPermissionDenied,
                        "allow-list is empty");
  // An interpreter without the flag runs nothing.
  ProcessOptions plain;
  plain.allow = {{real("/bin/sh"), false}};
  EXPECT_DEVCYCLE_ERROR(check_allowed({real("/bin/sh"), "-c", "id"}, plain),
                        ErrorCode::kPermissionDenied, "interpreter");
}

TEST_F(ProcessTest, ExecutorArgvIsAJsonListWithAnAbsoluteProgram) {
  EXPECT_EQ(parse_process_argv(R"(process:["/bin/cat", "-u"])"),
            (std::vector<std::string>{"/bin/cat", "-u"}));
  for (const char* bad : {"process:", "process:/bin/cat", "process:[]", R"(process:["cat"])",
                          R"(process:["/bin/cat", 5])", "inproc:x"}) {
    SCOPED_TRACE(bad);
    EXPECT_DEVCYCLE_ERROR(parse_process_argv(bad), ErrorCode::kInvalidArgument, "executor");
  }
}

TEST_F(ProcessTest, TheTimeoutKillsTheWholeProcessGroup) {
  options_.timeout = std::chrono::milliseconds(300);
  const auto r = run({real("/bin/sh"), "-c", "sleep 1234.5 & sleep 1234.5; echo never"}, "");
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_EQ(r.output, "");
  EXPECT_EQ(describe(r, options_), "process: killed after its timeout");
  // The background child went with it: pgrep finds nothing (status 1).
  // (The pattern does not match its own shell's command line.)
  EXPECT_EQ(std::system("pgrep -f 'sleep 1234[.]5' > /dev/null"), 256);
}

TEST_F(ProcessTest, AMemoryHungryAgentIsStoppedByItsLimit) {
  const auto py = python3();
  ASSERT_FALSE(py.empty()) << "python3 is needed for this test";
  options_.allow.push_back({py, true});
  options_.memory_bytes = 256ull << 20;
  std::vector<std::string> errors;
  const auto r = run({py, "-c", "x = bytearray(1024 * 1024 * 1024)"}, "", &errors);
  EXPECT_NE(r.exit_code, 0);
  const auto why = describe(r, options_);
  EXPECT_NE(why.find("memory 256 MiB"), std::string::npos) << why;
  bool memory_error = false;
  for (const auto& e : errors)
    memory_error = memory_error || e.find("MemoryError") != std::string::npos;
  EXPECT_TRUE(memory_error);
}

// Issue #20: a process agent could fork without bound and write files of
// any size; it now runs under RLIMIT_NPROC and RLIMIT_FSIZE as well.
TEST_F(ProcessTest, ProcessCountAndFileSizeAreLimited) {
  options_.max_processes = 123;
  options_.max_file_bytes = 8192;
  const auto r = run({real("/bin/sh"), "-c",
                      "awk '/Max processes/ {print $3}' /proc/self/limits; "
                      "head -c 100000 /dev/zero > big; echo wrote $?; wc -c < big"},
                     "");
  EXPECT_EQ(r.exit_code, 0);
  std::istringstream lines(r.output);
  std::string nproc, wrote, size;
  std::getline(lines, nproc);
  std::getline(lines, wrote);
  std::getline(lines, size);
  EXPECT_EQ(nproc, "123");
  EXPECT_NE(wrote, "wrote 0");  // head was stopped (SIGXFSZ) at the limit
  EXPECT_EQ(std::stoll(size), 8192);
}

TEST_F(ProcessTest, CancellationKillsIt) {
  ProcessCall call;
  call.argv = {real("/bin/sh"), "-c", "sleep 30"};
  int polls = 0;
  call.cancelled = [&] { return ++polls > 2; };
  const auto r = run_process(call, options_);
  EXPECT_TRUE(r.cancelled);
}

}  // namespace
}  // namespace devcycle
