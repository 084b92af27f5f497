// Death tests: run death_child (tests/death_child.cpp) in a subprocess with
// one mode and collect how it ended and what it printed.
#pragma once

#include <doctest/doctest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <initializer_list>
#include <string>
#include <vector>

extern char** environ;

namespace weft_test {

struct Outcome {
  int status = 0;      // as from waitpid
  std::string output;  // stdout and stderr together
};

// Runs `path` with `args` (argv[1..]) and collects how it ended and what it
// printed. (Also the weft-trace tests' way to run the tool.)
inline Outcome run_process(const std::string& path, const std::vector<std::string>& args) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<char*> argv{const_cast<char*>(path.c_str())};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
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

inline Outcome run_process(const char* path, std::initializer_list<const char*> args) {
  return run_process(std::string(path), std::vector<std::string>(args.begin(), args.end()));
}

#ifdef WEFT_DEATH_CHILD
// Runs death_child (tests/death_child.cpp) in `mode`.
inline Outcome run_child(const char* mode) { return run_process(WEFT_DEATH_CHILD, {mode}); }
#endif

inline bool killed_by(const Outcome& o, int sig) { return WIFSIGNALED(o.status) && WTERMSIG(o.status) == sig; }

}  // namespace weft_test
