// wake_floor: what the idlewait pattern costs this machine with no runtime
// at all (docs/design/timers.md, "What an idle second costs"). Process CPU
// time over a 1 s wait, median of 5, in three shapes:
//   one    the waiting thread times its own sleep (one wake-up)
//   two    a timer thread sleeps 1 s, then futex-wakes the waiter (two)
//   three  as two, but the timer thread sleeps without a timeout until the
//          waiter wakes it to take the deadline (three: weft's shape when
//          the first timer is armed while every worker sleeps)
// Prints one line per shape in weft-bench's format, peer=floor.
#include <linux/futex.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>

namespace {

void futex_wait(std::atomic<int>& word, int expected, const timespec* timeout = nullptr) {
  syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, expected, timeout, nullptr, 0);
}

void futex_wake(std::atomic<int>& word) { syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0); }

double process_cpu_ms() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

// One 1 s wait in the given shape (1, 2 or 3 wake-ups); process CPU in ms.
double one_wait(int shape) {
  // seq_cst throughout: two threads and two words, nothing here is hot.
  std::atomic<int> go{0};    // 1: take the deadline; 2: leave
  std::atomic<int> done{0};  // 1: the deadline passed
  std::thread timer([&] {
    while (go.load() == 0) futex_wait(go, 0);
    if (go.load() == 2) return;
    const timespec one_second{1, 0};
    std::atomic<int> never{0};
    futex_wait(never, 0, &one_second);
    done.store(1);
    futex_wake(done);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the timer thread is asleep
  double cpu0 = process_cpu_ms();
  if (shape == 1) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
  } else {
    go.store(1);
    futex_wake(go);
    if (shape == 2) {  // the kick is outside the measured second
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      cpu0 = process_cpu_ms();
    }
    while (done.load() == 0) futex_wait(done, 0);
  }
  const double cpu = process_cpu_ms() - cpu0;
  if (shape == 1) {
    go.store(2);
    futex_wake(go);
  }
  timer.join();
  return cpu;
}

}  // namespace

int main() {
  for (int shape = 1; shape <= 3; ++shape) {
    std::array<double, 5> ms{};
    for (double& m : ms) m = one_wait(shape);
    std::sort(ms.begin(), ms.end());
    std::printf("peer=floor workload=idlewait param=%d_wakeups metric=cpu_ms value=%.3f\n", shape, ms[2]);
  }
  return 0;
}
