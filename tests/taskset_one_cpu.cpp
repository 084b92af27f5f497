// Started under `taskset -c N` (one CPU allowed), the default worker count is
// 1 and a default Runtime starts 1 worker: the check the issue asked for, run
// the way a user would run it.
//
// Run with no arguments, this program re-runs itself as
// `taskset -c FIRST_ALLOWED_CPU <itself> --child` and returns the child's
// status; it exits 77 (meson's "skipped") when taskset is not installed
// (it comes with util-linux).
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <weft/weft.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

extern char** environ;

namespace {

int child() {
  std::size_t count = weft::default_worker_count();
  std::size_t workers = 0;
  {
    weft::Runtime rt;
    workers = rt.num_workers();
    int answer = rt.block_on([] { return 6 * 7; });
    if (answer != 42) {
      std::fprintf(stderr, "FAIL: the runtime answered %d\n", answer);
      return 1;
    }
  }
  std::printf("under taskset: default_worker_count() = %zu, Runtime().num_workers() = %zu\n", count, workers);
  if (count != 1 || workers != 1) {
    std::fprintf(stderr, "FAIL: expected 1 and 1 with one CPU allowed\n");
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--child") == 0) return child();

  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof mask, &mask) != 0) {
    std::perror("sched_getaffinity");
    return 1;
  }
  int first = 0;
  while (first < CPU_SETSIZE && !CPU_ISSET(first, &mask)) ++first;
  if (first == CPU_SETSIZE) {
    std::fprintf(stderr, "no CPU in the affinity mask\n");
    return 1;
  }
  std::string cpu = std::to_string(first);
  // Our own path: "/proc/self/exe" itself would name taskset once it runs.
  char self_buf[4096];
  ssize_t len = readlink("/proc/self/exe", self_buf, sizeof self_buf - 1);
  if (len <= 0) {
    std::perror("readlink /proc/self/exe");
    return 1;
  }
  std::string self(self_buf, static_cast<std::size_t>(len));
  char* args[] = {const_cast<char*>("taskset"), const_cast<char*>("-c"), cpu.data(), self.data(),
                  const_cast<char*>("--child"), nullptr};
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "taskset", nullptr, nullptr, args, environ);
  if (rc == ENOENT) {
    std::printf("SKIP: taskset not found (apt-get install util-linux)\n");
    return 77;
  }
  if (rc != 0) {
    std::fprintf(stderr, "posix_spawnp(taskset): %s\n", std::strerror(rc));
    return 1;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      std::perror("waitpid");
      return 1;
    }
  }
  if (!WIFEXITED(status)) {
    std::fprintf(stderr, "FAIL: the child did not exit normally (status %d)\n", status);
    return 1;
  }
  return WEXITSTATUS(status);
}
