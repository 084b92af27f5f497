// Stack overflow: a fiber that overflows its stack is reported by name and
// size and the process aborts; every other fault keeps its usual behaviour.
// Each case runs stack_overflow_child in a subprocess (a death test).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "sanitizers.hpp"

extern char** environ;

namespace {

struct Outcome {
  int status = 0;      // as from waitpid
  std::string output;  // stdout and stderr together
};

Outcome run_child(const char* mode) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  char* argv[] = {const_cast<char*>(WEFT_OVERFLOW_CHILD), const_cast<char*>(mode), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, WEFT_OVERFLOW_CHILD, &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  REQUIRE(rc == 0);
  Outcome out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    out.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  REQUIRE(::waitpid(pid, &out.status, 0) == pid);
  return out;
}

bool killed_by(const Outcome& o, int sig) { return WIFSIGNALED(o.status) && WTERMSIG(o.status) == sig; }

constexpr const char* k_report = "weft: stack overflow in fiber ";

}  // namespace

TEST_CASE("stack overflow: names the fiber and the stack size, hints at stack_size, and aborts" *
          doctest::timeout(60)) {
  for (const char* mode : {"overflow", "big-frame"}) {
    CAPTURE(mode);
    const Outcome o = run_child(mode);
    CAPTURE(o.output);
    CHECK(killed_by(o, SIGABRT));
    CHECK(o.output.find(k_report) != std::string::npos);
    CHECK(o.output.find("(stack 65536 bytes)") != std::string::npos);
    CHECK(o.output.find("Options::stack_size") != std::string::npos);
    CHECK(o.output.find("survived") == std::string::npos);
  }
}

TEST_CASE("stack overflow: a fiber that uses most of its stack runs normally" * doctest::timeout(60)) {
  const Outcome o = run_child("deep-ok");
  CAPTURE(o.output);
  CHECK(WIFEXITED(o.status));
  CHECK(WEXITSTATUS(o.status) == 0);
  CHECK(o.output.find("deep-ok") != std::string::npos);
  CHECK(o.output.find(k_report) == std::string::npos);
}

TEST_CASE("stack overflow: other faults keep their normal crash behaviour" * doctest::timeout(60)) {
  for (const char* mode : {"null-fiber", "null-thread"}) {
    CAPTURE(mode);
    const Outcome o = run_child(mode);
    CAPTURE(o.output);
    CHECK(o.output.find(k_report) == std::string::npos);
    CHECK(o.output.find("survived") == std::string::npos);
    if (WEFT_ASAN) {
      // AddressSanitizer's handler was there first: it reports the SEGV.
      CHECK(o.output.find("SEGV") != std::string::npos);
      CHECK(!(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0));
    } else if (WEFT_TSAN) {
      CHECK(!(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0));
    } else {
      CHECK(killed_by(o, SIGSEGV));
    }
  }
}

TEST_CASE("stack overflow: a SIGSEGV handler the program installed first still gets other faults" *
          doctest::timeout(60)) {
  const Outcome o = run_child("user-handler");
  CAPTURE(o.output);
  CHECK(WIFEXITED(o.status));
  CHECK(WEXITSTATUS(o.status) == 42);
  CHECK(o.output.find("user handler ran") != std::string::npos);
  CHECK(o.output.find(k_report) == std::string::npos);
}
