#include "current.hpp"

#include "worker.hpp"

namespace weft::detail {

namespace {
// initial-exec: a fixed offset from the thread pointer, no __tls_get_addr call
// (libweft is linked at startup, where static TLS is always available).
__attribute__((tls_model("initial-exec"))) thread_local Worker* t_worker = nullptr;
}

// noinline + compiler barrier: see current.hpp.
__attribute__((noinline)) Worker* current_worker() noexcept {
  asm volatile("" ::: "memory");
  return t_worker;
}

__attribute__((noinline)) void set_current_worker(Worker* worker) noexcept {
  asm volatile("" ::: "memory");
  t_worker = worker;
}

Fiber* current_fiber() noexcept {
  Worker* w = current_worker();
  return w != nullptr ? w->current_fiber() : nullptr;
}

}  // namespace weft::detail
