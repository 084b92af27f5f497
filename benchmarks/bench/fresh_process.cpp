// weft-bench run again, in a fresh process of its own, for a measurement
// that must not see what earlier work left behind in this one: parked.cpp's
// memory per parked fiber, which free lists of task memory and malloc's
// freed-but-resident pages warmed by earlier runs would make look cheaper.
//
// The program re-executes itself through /proc/self/exe, which names this
// very binary even if the file was rebuilt or moved since it started.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "bench.hpp"

extern char** environ;

namespace bench {

FreshRun run_in_fresh_process(const std::vector<std::string>& args) {
  int out[2];
  // O_CLOEXEC: only the child's stdout and stderr (dup2 clears the flag on
  // them) hold the write end, so the read below ends when the child does.
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  ::posix_spawn_file_actions_adddup2(&actions, out[1], STDERR_FILENO);
  std::vector<std::string> argv_text = {"weft-bench"};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (spawned != 0) {
    ::close(out[0]);
    throw std::system_error(spawned, std::generic_category(), "posix_spawn /proc/self/exe");
  }
  FreshRun run;
  char buf[4096];
  for (;;) {
    const ssize_t got = ::read(out[0], buf, sizeof buf);
    if (got > 0) {
      run.output.append(buf, static_cast<std::size_t>(got));
    } else if (got == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? -WTERMSIG(status) : -1;
  return run;
}

}  // namespace bench
