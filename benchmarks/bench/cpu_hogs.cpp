// CpuHogs (cpu_hogs.hpp): start, hand-shake and stop the spinning children.
#include "cpu_hogs.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace bench {

namespace {

// The child: only async-signal-safe calls, since the parent may have had
// other threads (whose locks the child would inherit held) when it forked.
[[noreturn]] void spin(pid_t parent, int ready_fd) {
  // Killed with the parent thread, however that ends (see the header); if
  // the parent is already gone, prctl came too late to see it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(0);
  const char ready = 1;
  (void)!::write(ready_fd, &ready, 1);
  // Closing our copy of the write end lets the parent see end-of-file if
  // every child died before saying it was ready.
  ::close(ready_fd);
  volatile std::uint64_t x = 1;
  for (;;) x = x * 31 + 7;
}

}  // namespace

CpuHogs::CpuHogs(std::size_t count) {
  int ready[2];
  if (::pipe(ready) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  const pid_t parent = ::getpid();
  for (std::size_t i = 0; i < count; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(ready[0]);
      spin(parent, ready[1]);
    }
    if (pid < 0) {
      const int err = errno;
      ::close(ready[0]);
      ::close(ready[1]);
      stop();
      throw std::system_error(err, std::generic_category(), "fork");
    }
    pids_.push_back(pid);
  }
  ::close(ready[1]);
  // Until each has run far enough to say so: the measurement starts with
  // every core contended, not while the children are still being scheduled.
  std::size_t started = 0;
  char buf[64];
  while (started < count) {
    const ssize_t got = ::read(ready[0], buf, sizeof buf);
    if (got > 0) {
      started += static_cast<std::size_t>(got);
    } else if (got == 0 || errno != EINTR) {
      ::close(ready[0]);
      stop();
      throw std::system_error(got == 0 ? ECHILD : errno, std::generic_category(), "CPU hog processes did not start");
    }
  }
  ::close(ready[0]);
}

CpuHogs::~CpuHogs() { stop(); }

void CpuHogs::stop() noexcept {
  for (const pid_t pid : pids_) ::kill(pid, SIGKILL);
  for (const pid_t pid : pids_) {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  pids_.clear();
}

}  // namespace bench
