#include "thread_parker.hpp"

#include "futex.hpp"

namespace weft::detail {

void ThreadParker::park() noexcept {
  // acquire: pairs with unpark()'s release store of the token.
  while (token_.exchange(0, std::memory_order_acquire) == 0) futex_wait(token_, 0);
}

bool ThreadParker::park_until(Nanos deadline) noexcept {
  // acquire: as in park().
  if (token_.exchange(0, std::memory_order_acquire) != 0) return true;
  futex_wait_until(token_, 0, deadline);
  return token_.exchange(0, std::memory_order_acquire) != 0;
}

void ThreadParker::unpark() noexcept {
  // release: publishes the unparker's writes (e.g. a waiter's outcome).
  token_.store(1, std::memory_order_release);
  // The owner may see the token, return and even exit before this call; a
  // FUTEX_WAKE on a dead word wakes nobody (or returns EFAULT), which is
  // harmless because every futex waiter here re-checks its word.
  futex_wake(token_, 1);
}

__attribute__((noinline)) ThreadParker& this_thread_parker() noexcept {
  static thread_local ThreadParker parker;
  asm volatile("" ::: "memory");
  return parker;
}

}  // namespace weft::detail
