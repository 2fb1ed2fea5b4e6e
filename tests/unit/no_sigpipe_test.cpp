// NoSigpipeScope: a write to a closed pipe fails with EPIPE instead of ending
// the process, and the host's own pending SIGPIPE is left where it was.
#include "common/no_sigpipe.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace devcycle {
namespace {

bool sigpipe_pending() {
  sigset_t pending;
  sigpending(&pending);
  return sigismember(&pending, SIGPIPE) == 1;
}

bool sigpipe_blocked() {
  sigset_t mask;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, SIGPIPE) == 1;
}

struct ClosedPipe {
  int write_end = -1;
  ClosedPipe() {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    ::close(fds[0]);
    write_end = fds[1];
  }
  ~ClosedPipe() { ::close(write_end); }
};

TEST(NoSigpipeScopeTest, AWriteToAClosedPipeIsEpipeAndNoSignal) {
  ClosedPipe p;
  ASSERT_FALSE(sigpipe_blocked());
  errno = 0;
  ssize_t w = 0;
  {
    const NoSigpipeScope quiet;
    EXPECT_TRUE(sigpipe_blocked());
    w = ::write(p.write_end, "x", 1);
  }
  EXPECT_EQ(w, -1);
  EXPECT_EQ(errno, EPIPE);  // kept across the scope's own system calls
  EXPECT_FALSE(sigpipe_blocked());
  EXPECT_FALSE(sigpipe_pending());
}

TEST(NoSigpipeScopeTest, ASigpipeTheHostAlreadyHadStaysPending) {
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  ::pthread_kill(::pthread_self(), SIGPIPE);
  ASSERT_TRUE(sigpipe_pending());
  {
    ClosedPipe p;
    const NoSigpipeScope quiet;
    EXPECT_EQ(::write(p.write_end, "x", 1), -1);
  }
  EXPECT_TRUE(sigpipe_pending());  // the host's, not ours to take
  EXPECT_TRUE(sigpipe_blocked());  // and the host's mask is as it was
  const timespec now{0, 0};
  EXPECT_EQ(::sigtimedwait(&pipe_only, nullptr, &now), SIGPIPE);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

}  // namespace
}  // namespace devcycle
