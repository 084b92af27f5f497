// Storage behind weft::FiberLocal (weft/fiber_local.hpp): a table of slots
// per fiber (Fiber::locals, made on first use, destroyed by the fiber when
// its body has returned) and per plain thread (a thread_local table).
#include "structured/fiber_local.hpp"

#include <atomic>

#include "scheduling/current.hpp"
#include "scheduling/fiber.hpp"
#include "weft/fiber_local.hpp"

namespace weft::detail {

namespace {

// relaxed: indexes need only be unique.
std::atomic<std::size_t> g_next_index{0};

// A plain thread's table; destroyed when the thread exits. Not inlined
// (current.hpp's rule).
__attribute__((noinline)) FiberLocals& thread_locals() {
  static thread_local FiberLocals locals;
  asm volatile("" ::: "memory");
  return locals;
}

}  // namespace

FiberLocals::~FiberLocals() {
  // Newest first, as destructors of locals run.
  for (std::size_t i = slots_.size(); i > 0; --i) {
    FlsSlot& s = slots_[i - 1];
    if (s.value != nullptr) s.destroy(s.value);
  }
}

FlsSlot& FiberLocals::slot(std::size_t index) {
  if (index >= slots_.size()) slots_.resize(index + 1);  // may throw std::bad_alloc
  return slots_[index];
}

std::size_t fls_new_index() noexcept { return g_next_index.fetch_add(1, std::memory_order_relaxed); }

FlsSlot& fls_slot(std::size_t index) {
  Fiber* f = current_fiber();
  if (f == nullptr) return thread_locals().slot(index);
  if (f->locals == nullptr) f->locals = new FiberLocals;
  return f->locals->slot(index);
}

void destroy_fiber_locals(Fiber* f) noexcept {
  // A destructor may use another FiberLocal of the same fiber: it then
  // makes a new table, destroyed in turn.
  while (FiberLocals* locals = f->locals) {
    f->locals = nullptr;
    delete locals;
  }
}

}  // namespace weft::detail
