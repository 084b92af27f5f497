// Stack overflow reports: a fiber that runs off the low end of its stack hits
// the guard page below it (stack_pool.hpp), and the SIGSEGV handler installed
// here, running on an alternate signal stack (the fiber's own stack is the
// thing that is exhausted), prints
//   weft: stack overflow in fiber <id> (stack <size> bytes); ...
// with a hint to raise Runtime::Options::stack_size, and aborts.
//
// A fault that is not an overflow of the current fiber's stack is passed on
// unchanged: to the handler that was installed before weft's (a sanitizer's,
// or the program's own), else the default action runs (the process dies of
// SIGSEGV, with a core dump where enabled). A handler the program installs
// after the first Runtime is created replaces weft's, and weft then reports
// nothing.
#pragma once

#include <signal.h>

#include <cstddef>

namespace weft::detail {

// Installs the process-wide handler once (later calls do nothing). Thread-safe.
void install_stack_overflow_handler();

// Gives the calling thread an alternate signal stack for as long as this
// object lives. Worker threads hold one; only they run fibers.
class AltSignalStack {
 public:
  AltSignalStack() noexcept;  // a thread that cannot get one keeps the default behaviour
  ~AltSignalStack();
  AltSignalStack(const AltSignalStack&) = delete;
  AltSignalStack& operator=(const AltSignalStack&) = delete;

 private:
  void* base_ = nullptr;    // the mapping, guard page included; null if none
  std::size_t size_ = 0;
  stack_t previous_{};      // the thread's alternate stack before this one
};

}  // namespace weft::detail
