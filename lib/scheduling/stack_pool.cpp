#include "scheduling/stack_pool.hpp"

#include "scheduling/stack_arena.hpp"

#include <new>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <system_error>

namespace weft::detail {

namespace {

std::size_t read_max_map_count() noexcept {
  std::ifstream in("/proc/sys/vm/max_map_count");
  std::size_t n = 0;
  if (in >> n && n > 0) return n;
  return 65530;  // the kernel's default
}

// Process-wide count of guarded stacks currently mapped, against the budget.
// relaxed: a counter checked for a soft limit; nothing is published by it.
std::atomic<std::size_t> g_guarded_stacks{0};
std::size_t guarded_budget() noexcept {
  static const std::size_t budget = read_max_map_count() / 4;
  return budget;
}

bool take_guarded_budget() noexcept {
  std::size_t n = g_guarded_stacks.load(std::memory_order_relaxed);
  do {
    if (n >= guarded_budget()) return false;
  } while (!g_guarded_stacks.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
  return true;
}

void return_guarded_budget() noexcept { g_guarded_stacks.fetch_sub(1, std::memory_order_relaxed); }

std::once_flag g_unguarded_notice;

}  // namespace

std::size_t StackPool::page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

std::size_t StackPool::round_to_pages(std::size_t bytes) noexcept {
  return (bytes + page_size() - 1) / page_size() * page_size();
}

// ---- SlabStacks ----

SlabStacks::~SlabStacks() {
  const std::size_t slab_bytes = usable_size_ * k_slab_stacks;
  for (void* slab : slabs_) ::munmap(slab, slab_bytes);
}

Stack SlabStacks::acquire() {
  std::lock_guard<std::mutex> guard(lock_);
  if (free_.empty()) {
    const std::size_t slab_bytes = usable_size_ * k_slab_stacks;
    void* slab = ::mmap(nullptr, slab_bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (slab == MAP_FAILED) throw StackAllocFailed();
    try {
      slabs_.push_back(slab);
    } catch (const std::bad_alloc&) {
      ::munmap(slab, slab_bytes);
      throw StackAllocFailed();
    }
    for (std::size_t i = k_slab_stacks; i-- > 0;) {
      free_.push_back(Stack{static_cast<char*>(slab) + i * usable_size_, usable_size_, false});
    }
    std::call_once(g_unguarded_notice, [] {
      std::fprintf(stderr,
                   "weft: more than %zu fiber stacks are alive; further stacks have no guard page "
                   "(vm.max_map_count limits mappings; an overflow is caught by a canary instead)\n",
                   guarded_budget());
    });
  }
  Stack s = free_.back();
  free_.pop_back();
  *static_cast<std::uint64_t*>(s.lo) = k_stack_canary;
  return s;
}

void SlabStacks::release(Stack stack) noexcept {
  // Give the touched pages back but keep the address range (unmapping part of
  // a slab would split its mapping in two).
  ::madvise(stack.lo, stack.size, MADV_DONTNEED);
  std::lock_guard<std::mutex> guard(lock_);
  free_.push_back(stack);
}

// ---- StackPool ----

StackPool::StackPool(std::size_t usable_size, std::size_t max_cached, SlabStacks& slabs)
    : usable_size_(usable_size),
      max_cached_(max_cached),
      arena_(stack_arenas_enabled() ? &StackArena::for_size(usable_size) : nullptr),
      slabs_(slabs) {
  // At least one place: acquire() takes a batch from the arena into it.
  cache_.reserve(std::max<std::size_t>(max_cached_, 1));
}

StackPool::~StackPool() {
  if (arena_ != nullptr) {
    // Back to the arena, and trimmed now: no idle worker of ours will.
    arena_->release(cache_.data(), cache_.size());
    arena_->trim_all();
    return;
  }
  for (Stack s : cache_) release_uncached(s);
  for (Stack s : retired_) release_uncached(s);
}

Stack StackPool::acquire() {
  if (!cache_.empty()) {
    Stack s = cache_.back();
    cache_.pop_back();
    return s;
  }
  if (arena_ != nullptr) {
    arena_->acquire(cache_, std::max<std::size_t>(max_cached_ / 2, 1));
    Stack s = cache_.back();
    cache_.pop_back();
    return s;
  }
  if (!retired_.empty()) {  // not returned yet: reuse it, no system call
    Stack s = retired_.back();
    retired_.pop_back();
    return s;
  }
  if (take_guarded_budget()) {
    try {
      return map_guarded();
    } catch (const std::system_error&) {
      return_guarded_budget();  // the kernel said no: try a slab instead
    }
  }
  return slabs_.acquire();
}

void StackPool::release(Stack stack) noexcept {
  if (cache_.size() < max_cached_) {
    cache_.push_back(stack);
    return;
  }
  if (arena_ != nullptr) {
    // The newer half stays (its pages are the likelier to be in cache).
    const std::size_t keep = max_cached_ / 2;
    arena_->release(cache_.data(), cache_.size() - keep);
    cache_.erase(cache_.begin(), cache_.end() - static_cast<std::ptrdiff_t>(keep));
    if (max_cached_ == 0) {
      arena_->release(&stack, 1);
    } else {
      cache_.push_back(stack);
    }
    return;
  }
  if (retired_.size() < k_max_retired) {
    try {
      retired_.push_back(stack);
      return;
    } catch (const std::bad_alloc&) {
      // No room to remember it: return it now.
    }
  }
  release_uncached(stack);
}

bool StackPool::trim(std::size_t batch) noexcept {
  if (arena_ != nullptr) return arena_->trim(batch);
  for (std::size_t i = 0; i < batch && !retired_.empty(); ++i) {
    release_uncached(retired_.back());
    retired_.pop_back();
  }
  return !retired_.empty();
}

bool StackPool::has_trim_work() noexcept {
  if (arena_ != nullptr) return arena_->has_dirty();
  return !retired_.empty();
}

void StackPool::release_uncached(Stack stack) noexcept {
  if (stack.guarded) {
    unmap_guarded(stack);
  } else {
    slabs_.release(stack);
  }
}

Stack StackPool::map_guarded() {
  const std::size_t guard = page_size();
  // MAP_NORESERVE: reserve address space only; pages are committed on touch.
  void* base = ::mmap(nullptr, usable_size_ + guard, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (base == MAP_FAILED) {
    throw std::system_error(errno, std::generic_category(), "weft: cannot map a fiber stack");
  }
  if (::mprotect(base, guard, PROT_NONE) != 0) {
    const int err = errno;
    ::munmap(base, usable_size_ + guard);
    throw std::system_error(err, std::generic_category(), "weft: cannot protect a fiber stack's guard page");
  }
  return Stack{static_cast<char*>(base) + guard, usable_size_, true};
}

void StackPool::unmap_guarded(Stack stack) noexcept {
  const std::size_t guard = page_size();
  ::munmap(static_cast<char*>(stack.lo) - guard, stack.size + guard);
  return_guarded_budget();
}

}  // namespace weft::detail
