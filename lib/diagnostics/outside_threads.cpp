#include "diagnostics/outside_threads.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace weft::detail::outside_threads {

namespace {

// The threads that existed when the library was loaded, sorted. Written
// once by the static initializer below, before any runtime exists; read
// only afterwards.
std::vector<long> g_at_load;

// Plain threads blocked in an untimed weft wait, only those count() counts
// (this_thread_counts()), so that the subtraction below matches.
// seq_cst: the detector reads it between its two activity snapshots, which
// are seq_cst too (see count()).
std::atomic<long> g_blocked{0};

template <class F>
bool for_each_thread(F f) {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return false;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    f(std::strtol(e->d_name, nullptr, 10));
  }
  closedir(dir);
  return true;
}

// weft names each of its threads "weft-..." before it runs anything.
bool is_weft_thread_name(const char* name) { return std::strncmp(name, "weft-", 5) == 0; }

// True if the thread's name is one of weft's. False for a thread that is
// gone or unreadable (it is then not counted: it cannot call in).
bool weft_named(long tid, bool& gone) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%ld/comm", tid);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    gone = true;
    return false;
  }
  char name[32] = {};
  const ssize_t n = read(fd, name, sizeof name - 1);
  close(fd);
  if (n <= 0) {
    gone = true;
    return false;
  }
  return is_weft_thread_name(name);
}

bool existed_at_load(long tid) { return std::binary_search(g_at_load.begin(), g_at_load.end(), tid); }

// Whether count() counts the calling thread when it runs: not if it existed
// at load or is one of weft's own (a blocking-pool thread running a job that
// waits as a plain thread). Cached per thread (-1 unknown, 0, 1); weft names
// its threads before they run anything.
bool this_thread_counts() {
  thread_local int cached = -1;
  if (cached < 0) {
    char name[32] = {};
    pthread_getname_np(pthread_self(), name, sizeof name);
    const bool own = is_weft_thread_name(name);
    cached = (own || existed_at_load(static_cast<long>(gettid()))) ? 0 : 1;
  }
  return cached == 1;
}

struct RecordAtLoad {
  RecordAtLoad() {
#if defined(__SANITIZE_THREAD__)
    // ThreadSanitizer starts its background thread at the process's first
    // thread creation, later than this: create one now, so that its helper
    // is there to be recorded with the threads that predate weft.
    std::thread([] {}).join();
#endif
    for_each_thread([](long tid) { g_at_load.push_back(tid); });
    std::sort(g_at_load.begin(), g_at_load.end());
  }
} g_record_at_load;

}  // namespace

std::size_t count() {
  long outside = 0;
  const bool readable = for_each_thread([&](long tid) {
    if (existed_at_load(tid)) return;
    bool gone = false;
    if (weft_named(tid, gone) || gone) return;
    ++outside;
  });
  if (!readable) return 0;
  // seq_cst: see g_blocked.
  outside -= g_blocked.load(std::memory_order_seq_cst);
  return outside > 0 ? static_cast<std::size_t>(outside) : 0;
}

void blocked_enter() noexcept {
  if (this_thread_counts()) g_blocked.fetch_add(1, std::memory_order_seq_cst);  // seq_cst: see g_blocked
}

void blocked_leave() noexcept {
  if (this_thread_counts()) g_blocked.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: see g_blocked
}

}  // namespace weft::detail::outside_threads
