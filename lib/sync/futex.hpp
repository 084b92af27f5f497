// Thin wrappers over the Linux futex system call: wait while a 32-bit word
// holds an expected value, and wake threads waiting on it.
//
// Contract: any thread may call them. futex_wait blocks the calling OS thread
// (it is called only by plain threads and by idle workers, never by a fiber
// that could park instead). Spurious returns are allowed; callers loop.
#pragma once

#include <atomic>
#include <cstdint>

#include "weft/detail/deadline.hpp"

namespace weft::detail {

// Blocks while word == expected, until futex_wake or a spurious wake-up.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept;

// As futex_wait, but returns no later than `deadline` (steady clock,
// absolute; k_never waits without a timeout). Returns at once if it passed.
void futex_wait_until(std::atomic<std::uint32_t>& word, std::uint32_t expected, Nanos deadline) noexcept;

// Wakes up to `count` threads blocked in futex_wait on `word`.
void futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept;

// As futex_wake, on the futex word that was at `address`, for a waker whose
// last access to that word let its owner go: the word (and the memory
// around it) may be gone by now. The kernel only compares addresses; an
// address that is unmapped fails harmlessly (EFAULT), and one reused for
// another futex word wakes its waiters spuriously, which every futex
// waiter must absorb anyway.
void futex_wake_at(const void* address, int count) noexcept;

}  // namespace weft::detail
