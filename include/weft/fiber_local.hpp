// weft::FiberLocal<T>: a value per fiber (Boost.Fiber's fiber_specific_ptr,
// Go's lack of goroutine-local storage made explicit).
//
//   weft::FiberLocal<RequestInfo> current_request;
//   current_request->id = 42;          // this fiber's own RequestInfo
//
// thread_local is the wrong tool in a fiber: a fiber that parks may resume
// on another worker thread, and its thread_local values then are another
// thread's (the guide, "Things that behave differently in fibers"). A
// FiberLocal's value follows the fiber instead.
//
// Each fiber sees its own T, default-constructed on first use and destroyed
// when the fiber ends (on the fiber, before its joiner wakes), newest
// first. A plain thread sees its own T, destroyed when the thread exits. A
// task that a join runs inline (Runtime::Options::inline_join) shares its
// joiner's fiber, so it shares its values too, as it shares this_fiber::id().
// Destroying a FiberLocal does not destroy the values fibers still hold:
// they go when their fibers end.
//
// Threading: get() is for the owning fiber or thread only; different fibers
// may use one FiberLocal concurrently. Never parks; throws std::bad_alloc
// (and whatever T's constructor throws).
#pragma once

#include "detail/config.hpp"

#include <cstddef>
#include <new>

namespace weft {

namespace detail {
// The calling fiber's (or plain thread's) slot `index`: a pointer to the
// value and its deleter. Defined in the library.
struct FlsSlot {
  void* value = nullptr;
  void (*destroy)(void*) noexcept = nullptr;
};
WEFT_API FlsSlot& fls_slot(std::size_t index);
WEFT_API std::size_t fls_new_index() noexcept;
}  // namespace detail

template <class T>
class FiberLocal {
 public:
  FiberLocal() noexcept : index_(detail::fls_new_index()) {}
  FiberLocal(const FiberLocal&) = delete;
  FiberLocal& operator=(const FiberLocal&) = delete;

  // The calling fiber's (or thread's) value, made on first use.
  T& get() {
    detail::FlsSlot& slot = detail::fls_slot(index_);
    if (slot.value == nullptr) {
      slot.value = new T();
      slot.destroy = [](void* p) noexcept { delete static_cast<T*>(p); };
    }
    return *static_cast<T*>(slot.value);
  }
  T& operator*() { return get(); }
  T* operator->() { return &get(); }

 private:
  const std::size_t index_;
};

}  // namespace weft
