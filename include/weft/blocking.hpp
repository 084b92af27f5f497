// weft::blocking(f): run a blocking call off the worker threads (Tokio's
// spawn_blocking, Go's "the M blocks in a syscall and the P moves on").
//
//   std::string text = weft::blocking([&] { return read_whole_file(path); });
//
// From a fiber: f runs on a plain thread of the runtime's blocking pool and
// the calling fiber parks until f returns; the worker runs other fibers
// meanwhile. The pool creates threads on demand up to
// Runtime::Options::max_blocking_threads (further calls wait in FIFO
// order) and retires threads idle for Options::blocking_keep_alive.
// f is invoked by reference: it may use the caller's locals, which stay
// alive because the caller is parked until it returns.
//
// From a plain thread: f runs inline, on the calling thread.
//
// Returns what f returns; rethrows what f throws. A call in flight counts as
// progress for deadlock detection, and shutdown waits for it to finish (it
// is not cancelled). Throws std::system_error when the pool has no thread
// and cannot start one.
//
// Do not call weft operations that park from inside f on the assumption that
// it is a fiber: it is a plain thread (channel operations and joins then
// block that thread, which is allowed).
#pragma once

#include "detail/config.hpp"

#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

namespace weft {

namespace detail {
WEFT_API void run_blocking(void (*fn)(void* ctx) noexcept, void* ctx);

template <class F, class R>
struct BlockingCall {
  explicit BlockingCall(F* f) noexcept : fn(f) {}
  F* fn;
  std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result{};
  std::exception_ptr error;

  static void run(void* ctx) noexcept {
    auto* self = static_cast<BlockingCall*>(ctx);
    try {
      if constexpr (std::is_void_v<R>) {
        std::invoke(*self->fn);
      } else {
        self->result.emplace(std::invoke(*self->fn));
      }
    } catch (...) {
      self->error = std::current_exception();
    }
  }
};
}  // namespace detail

template <class F>
std::invoke_result_t<F&> blocking(F&& f) {
  using R = std::invoke_result_t<F&>;
  static_assert(!std::is_reference_v<R>, "weft::blocking: f must return a value, not a reference");
  detail::BlockingCall<std::remove_reference_t<F>, R> call(&f);
  detail::run_blocking(&decltype(call)::run, &call);
  if (call.error) std::rethrow_exception(call.error);
  if constexpr (!std::is_void_v<R>) return std::move(*call.result);
}

}  // namespace weft
