// weft::Once: run a function exactly once (Go's sync.Once, std::call_once)
// with waiters that park instead of spinning.
#pragma once

#include "detail/config.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include "detail/spin_lock.hpp"
#include "detail/wait_list.hpp"

namespace weft {

// call(f) runs f the first time it is called and never again once a call
// of f has returned normally. Callers that arrive while f runs park (a
// fiber) or block (a plain thread) until it finishes. If f throws, the
// exception propagates to the caller that ran it, the Once stays not done,
// and one of the parked callers (or a later one) runs its own f (as
// std::call_once does). Usable from fibers of any runtime and plain threads.
//
// Cost: after completion call() is one acquire load and a branch.
// A call of f that parks is fine (others keep waiting); f calling call()
// on the same Once waits for itself, a deadlock the detector reports.
//
// Memory: everything f did happens-before the return of every call() that
// finds it done. A Once may be destroyed once no call is in progress.
class WEFT_API Once {
 public:
  Once() noexcept = default;
  Once(const Once&) = delete;
  Once& operator=(const Once&) = delete;

  // Runs f (no arguments) unless done. Parks / blocks while another call
  // runs its f. Throws what f throws (then not done); weft::Cancelled when
  // the calling fiber's scope is cancelled while it waits for another
  // caller's f (weft::FiberCancelled at shutdown); f then did not run here.
  template <class F>
  void call(F&& f) {
    // acquire: pairs with the release store of k_done after f returned, so
    // f's effects are visible to us.
    if (state_.load(std::memory_order_acquire) == k_done) return;
    static_assert(std::is_invocable_v<F&>, "weft::Once::call: f takes no arguments");
    // The pointer round-trips to invoke<>, which restores its constness.
    call_slow(&invoke<std::remove_reference_t<F>>, const_cast<void*>(static_cast<const void*>(std::addressof(f))));
  }

  // Whether a call of f has returned normally. Never parks; any thread.
  bool done() const noexcept {
    // acquire: as in call(), so a caller that sees true sees f's effects.
    return state_.load(std::memory_order_acquire) == k_done;
  }

 private:
  static constexpr std::uint32_t k_idle = 0;     // f has not run, or every run threw
  static constexpr std::uint32_t k_running = 1;  // a caller is running f
  static constexpr std::uint32_t k_done = 2;     // f returned normally: final

  template <class F>
  static void invoke(void* f) {
    (*static_cast<F*>(f))();
  }
  void call_slow(void (*run)(void*), void* f);

  // Written under lock_; k_done is also read lock-free by call() / done().
  std::atomic<std::uint32_t> state_{k_idle};
  detail::SpinLock lock_;        // guards the transitions and waiters_
  detail::WaitList waiters_;     // callers parked while f runs
};

}  // namespace weft
