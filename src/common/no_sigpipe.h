#pragma once

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <ctime>

namespace devcycle {

// Writes to a pipe or socket whose reader is gone raise SIGPIPE, whose
// default action ends the process. A library must not change the host's
// signal dispositions, so for the length of this scope SIGPIPE is blocked on
// the calling thread, and one raised here is taken back before the mask is
// restored; the write itself fails with EPIPE, which the caller handles.
class NoSigpipeScope {
 public:
  NoSigpipeScope() {
    sigemptyset(&pipe_only_);
    sigaddset(&pipe_only_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &pipe_only_, &old_);
  }
  ~NoSigpipeScope() {
    const int saved = errno;
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const timespec now{0, 0};
        while (::sigtimedwait(&pipe_only_, nullptr, &now) < 0 && errno == EINTR) {
        }
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    errno = saved;
  }
  NoSigpipeScope(const NoSigpipeScope&) = delete;
  NoSigpipeScope& operator=(const NoSigpipeScope&) = delete;

 private:
  sigset_t pipe_only_{};
  sigset_t old_{};
  bool was_pending_ = false;
};

}  // namespace devcycle
