// weft::this_fiber: what a fiber can ask about, and do to, itself.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft {

// A fiber's identity: unique for the life of the process, never 0.
using FiberId = std::uint64_t;

namespace this_fiber {

// True when called from a fiber (of any weft runtime). Never blocks.
bool in_fiber() noexcept;

// Gives the worker to other runnable fibers: the calling fiber goes to the
// back of its runtime's shared queue and runs again after them. Returns at
// once when nothing else is runnable. Throws weft::NotInFiber from a plain
// thread.
void yield();

// The calling fiber's id; 0 from a plain thread. Never blocks.
FiberId id() noexcept;

// Index (0 .. workers-1) of the worker running the calling fiber right now.
// It may change after any call that parks or yields. Throws weft::NotInFiber
// from a plain thread.
std::size_t worker_index();

}  // namespace this_fiber
}  // namespace weft
