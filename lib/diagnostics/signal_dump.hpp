// Runtime::Options::dump_signal: the runtime's dump on a signal.
//
// The handler does only async-signal-safe work: it finds the eventfds of
// the runtimes registered for the signal (a fixed table of atomics) and
// writes to each. A thread per such runtime sleeps in read() on its eventfd
// and, when woken, writes Runtime::dump() to stderr (fd 2, write(2) in a
// loop, no stdio lock shared with the program's own output).
//
// Unregistering against a handler in flight: the handler counts itself in
// the slot (busy) before it reads the slot's fd and out after its write;
// the destructor clears the slot, then waits for busy to reach 0 before it
// closes the fd, so a late handler never writes to a closed (or reused)
// descriptor.
//
// Contract: constructed and destroyed by the Scheduler (any thread, not
// concurrently for one object); the handler runs on any thread.
#pragma once

#include <atomic>
#include <thread>

namespace weft::detail {

class Scheduler;

class SignalDump {
 public:
  // Installs the handler for `sig` (first user of that signal) and starts
  // the thread. Throws std::system_error (eventfd, sigaction, thread) or
  // std::runtime_error (more than 16 runtimes dumping on signals).
  SignalDump(Scheduler& s, int sig);
  // Stops the thread, unregisters, and restores the signal's previous
  // handler after its last user.
  ~SignalDump();
  SignalDump(const SignalDump&) = delete;
  SignalDump& operator=(const SignalDump&) = delete;

 private:
  void run() noexcept;
  void unregister() noexcept;  // clears the slot, restores the handler, closes fd_

  Scheduler& scheduler_;
  const int sig_;
  int fd_ = -1;
  int slot_ = -1;
  // Set (release) by the destructor before it wakes the thread; read
  // (acquire) by the thread after each wake-up.
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace weft::detail
