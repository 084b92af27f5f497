#include "scheduling/current.hpp"

#include "scheduling/worker.hpp"

namespace weft::detail {

// initial-exec: a fixed offset from the thread pointer, no __tls_get_addr call
// (libweft is linked at startup, where static TLS is always available).
constinit __attribute__((tls_model("initial-exec"), visibility("hidden"))) thread_local Worker* current_detail::t_worker =
    nullptr;
using current_detail::t_worker;

#if !WEFT_INLINE_WORKER_READ
// noinline + compiler barrier: see current.hpp (x86-64 reads it inline).
__attribute__((noinline)) Worker* current_worker() noexcept {
  asm volatile("" ::: "memory");
  return t_worker;
}
#endif

__attribute__((noinline)) void set_current_worker(Worker* worker) noexcept {
  asm volatile("" ::: "memory");
  t_worker = worker;
}

#ifndef NDEBUG
// Not inlined, for the reason above: a fiber never holds a SpinLock across a
// switch, but the caller's code around lock() must not cache the address.
__attribute__((noinline)) int& spin_locks_held() noexcept {
  static thread_local int held = 0;
  asm volatile("" ::: "memory");
  return held;
}
#endif

Fiber* current_fiber() noexcept {
  Worker* w = current_worker();
  return w != nullptr ? w->current_fiber() : nullptr;
}

}  // namespace weft::detail
