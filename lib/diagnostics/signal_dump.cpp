// The dump on a signal (signal_dump.hpp has the protocol).
#include "diagnostics/signal_dump.hpp"

#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>

#include "diagnostics/fiber_dump.hpp"

namespace weft::detail {

namespace {

constexpr int k_slots = 16;

struct Slot {
  // All seq_cst: the handler's busy increment, then its sig/fd loads, must
  // not be reordered with the destructor's clear of sig and its load of
  // busy (a Dekker pair: either the handler sees the slot cleared, or the
  // destructor sees it busy and waits). Lock-free atomics: async-signal-safe.
  std::atomic<int> sig{0};
  std::atomic<int> fd{-1};
  std::atomic<int> busy{0};
};
Slot g_slots[k_slots];

// Guards the slots' registration (not the handler's reads) and the handler
// bookkeeping below. Never taken in the handler.
std::mutex g_lock;
int g_users[NSIG] = {};
struct sigaction g_previous[NSIG];

void on_signal(int sig) {
  const int saved_errno = errno;
  for (Slot& s : g_slots) {
    s.busy.fetch_add(1, std::memory_order_seq_cst);
    if (s.sig.load(std::memory_order_seq_cst) == sig) {
      const int fd = s.fd.load(std::memory_order_seq_cst);
      const std::uint64_t one = 1;
      if (fd >= 0) (void)!::write(fd, &one, sizeof one);
    }
    s.busy.fetch_sub(1, std::memory_order_seq_cst);
  }
  errno = saved_errno;
}

void write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stderr closed or full: nothing better to do
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

SignalDump::SignalDump(Scheduler& s, int sig) : scheduler_(s), sig_(sig) {
  fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "weft: eventfd for dump_signal");
  {
    std::lock_guard<std::mutex> guard(g_lock);
    for (int i = 0; i < k_slots; ++i) {
      if (g_slots[i].sig.load(std::memory_order_seq_cst) == 0) {
        slot_ = i;
        break;
      }
    }
    if (slot_ < 0) {
      ::close(fd_);
      throw std::runtime_error("weft: more than 16 runtimes use Runtime::Options::dump_signal at once");
    }
    if (g_users[sig] == 0) {
      struct sigaction sa = {};
      sa.sa_handler = &on_signal;
      sa.sa_flags = SA_RESTART;
      sigemptyset(&sa.sa_mask);
      if (::sigaction(sig, &sa, &g_previous[sig]) != 0) {
        const int e = errno;
        ::close(fd_);
        throw std::system_error(e, std::generic_category(), "weft: sigaction for dump_signal");
      }
    }
    ++g_users[sig];
    g_slots[slot_].fd.store(fd_, std::memory_order_seq_cst);
    g_slots[slot_].sig.store(sig, std::memory_order_seq_cst);  // live from here on
  }
  try {
    thread_ = std::thread([this] { run(); });
  } catch (...) {
    unregister();
    throw;
  }
}

SignalDump::~SignalDump() {
  stop_.store(true, std::memory_order_release);  // pairs with run()'s acquire load
  const std::uint64_t one = 1;
  (void)!::write(fd_, &one, sizeof one);
  thread_.join();
  unregister();
}

void SignalDump::unregister() noexcept {
  {
    std::lock_guard<std::mutex> guard(g_lock);
    Slot& s = g_slots[slot_];
    s.sig.store(0, std::memory_order_seq_cst);
    s.fd.store(-1, std::memory_order_seq_cst);
    while (s.busy.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();  // a handler in flight
    if (--g_users[sig_] == 0) ::sigaction(sig_, &g_previous[sig_], nullptr);
  }
  ::close(fd_);
}

void SignalDump::run() noexcept {
  // The signal is for the program's other threads; this one only reads.
  sigset_t all;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
  for (;;) {
    std::uint64_t count = 0;
    const ssize_t n = ::read(fd_, &count, sizeof count);
    if (n < 0 && errno == EINTR) continue;
    if (stop_.load(std::memory_order_acquire)) return;  // pairs with the destructor's release store
    if (n != sizeof count) continue;
    try {
      write_all(2, "weft: dump on signal " + std::to_string(sig_) + "\n" + dump_runtime(scheduler_));
    } catch (...) {
      write_all(2, "weft: dump on signal: out of memory\n");
    }
  }
}

}  // namespace weft::detail
