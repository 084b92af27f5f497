// stack_floor: what a fiber stack costs the kernel, measured alone, with no
// runtime around it (issue 17; docs/design/stacks.md). One thread, N slots of
// a 256 KiB stack plus a 4 KiB guard in one mapping:
//   guard_install_us   madvise(MADV_GUARD_INSTALL) of one slot's guard page
//   first_touch_us     the first write to a stack's top page (a page fault)
//   resident_touch_us  a write to it again (resident: a TLB miss at most)
//   dontneed_us        MADV_DONTNEED of one slot
//   dontneed_all_ms    MADV_DONTNEED of all N slots in one call
//   refault_us         the first write after that (a page fault again)
//   mapped_us          the fallback's way, for comparison: mmap + mprotect
//                      of a guard + first touch + munmap, per stack
// and checks that the guards still fault after both kinds of MADV_DONTNEED
// and that /proc/self/maps did not grow by a line per stack.
// Usage: stack_floor [N]  (default 100000). Needs Linux 6.13+.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace {

using Clock = std::chrono::steady_clock;

double us_per(Clock::time_point t0, std::size_t n) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / static_cast<double>(n);
}

bool write_faults(char* p) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::signal(SIGSEGV, SIG_DFL);
    *static_cast<volatile char*>(p) = 1;
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

std::size_t map_lines() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::size_t n = 0;
  while (std::getline(maps, line)) ++n;
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100'000;
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t slot = 256 * 1024 + page;
  const std::size_t lines0 = map_lines();
  auto* a = static_cast<char*>(
      ::mmap(nullptr, n * slot, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  if (a == MAP_FAILED) return 1;
  ::madvise(a, n * slot, MADV_NOHUGEPAGE);
  auto top = [&](std::size_t i) { return a + (i + 1) * slot - 64; };

  auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    if (::madvise(a + i * slot, page, MADV_GUARD_INSTALL) != 0) {
      std::perror("madvise(MADV_GUARD_INSTALL)");
      return 1;
    }
  }
  const double guard = us_per(t0, n);
  t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) *top(i) = 1;
  const double first = us_per(t0, n);
  t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) *top(i) = 2;
  const double resident = us_per(t0, n);
  t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) ::madvise(a + i * slot + page, slot - page, MADV_DONTNEED);
  const double dontneed = us_per(t0, n);
  for (std::size_t i = 0; i < n; ++i) *top(i) = 3;
  t0 = Clock::now();
  ::madvise(a, n * slot, MADV_DONTNEED);
  const double dontneed_all_ms = us_per(t0, 1) / 1000;
  t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) *top(i) = 4;
  const double refault = us_per(t0, n);
  const bool guards_kept = write_faults(a + page - 1) && write_faults(a + (n - 1) * slot + page - 1) &&
                           !write_faults(a + page);
  const std::size_t lines = map_lines();

  const std::size_t m = std::min<std::size_t>(n, 10'000);  // well within vm.max_map_count
  std::vector<char*> stacks(m);
  t0 = Clock::now();
  for (std::size_t i = 0; i < m; ++i) {
    stacks[i] = static_cast<char*>(
        ::mmap(nullptr, slot, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0));
    ::mprotect(stacks[i], page, PROT_NONE);
    stacks[i][slot - 64] = 1;
  }
  for (std::size_t i = 0; i < m; ++i) ::munmap(stacks[i], slot);
  const double mapped = us_per(t0, m);

  std::printf("stack_floor n=%zu guard_install_us=%.3f first_touch_us=%.3f resident_touch_us=%.3f "
              "dontneed_us=%.3f dontneed_all_ms=%.1f refault_us=%.3f mapped_us=%.3f "
              "guards_kept_after_dontneed=%s maps_lines_added=%zu\n",
              n, guard, first, resident, dontneed, dontneed_all_ms, refault, mapped, guards_kept ? "yes" : "NO",
              lines - lines0);
  return guards_kept ? 0 : 1;
}
