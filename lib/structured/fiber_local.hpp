// FiberLocals: one fiber's (or plain thread's) FiberLocal values
// (weft/fiber_local.hpp), indexed by the FiberLocal's index. Owned by its
// fiber (or thread); never shared.
#pragma once

#include <cstddef>
#include <vector>

#include "weft/fiber_local.hpp"

namespace weft::detail {

struct Fiber;

class FiberLocals {
 public:
  FiberLocals() = default;
  ~FiberLocals();  // destroys the values, newest slot first
  FiberLocals(const FiberLocals&) = delete;
  FiberLocals& operator=(const FiberLocals&) = delete;
  FlsSlot& slot(std::size_t index);  // grows; throws std::bad_alloc

 private:
  std::vector<FlsSlot> slots_;
};

// On the fiber, when its body has returned: destroys its values.
void destroy_fiber_locals(Fiber* f) noexcept;

}  // namespace weft::detail
