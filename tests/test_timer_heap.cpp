// TimerHeap (lib/time/timer_heap.hpp), tested directly: the driver hand-off.
// Regression test: a timer taken out of the heap to fire still counted as
// armed while its callback ran, though the heap already published "no
// deadline". A sleeping worker then claimed the driver role, found no
// deadline, released the role, saw the timer still counted and kicked a
// driver again (itself, often), round and round for as long as the batch
// of callbacks ran.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "time/timer_heap.hpp"

namespace {

// A timer whose callback waits until the test lets it finish.
struct HeldTimer : weft::detail::Timer {
  HeldTimer() noexcept : Timer(&fire_held) {}
  std::atomic<bool> running{false};
  std::atomic<bool> release{false};
  static weft::detail::Nanos fire_held(Timer* t, weft::detail::Nanos) noexcept {
    auto* self = static_cast<HeldTimer*>(t);
    self->running.store(true);
    while (!self->release.load()) std::this_thread::yield();
    return weft::detail::k_never;
  }
};

}  // namespace

TEST_CASE("timer heap: a timer whose callback is running is not armed, and there is no driver role to take" *
          doctest::timeout(60)) {
  weft::detail::TimerHeap heap;  // its own heap: no runtime's workers drive it
  HeldTimer timer;
  heap.arm(&timer, weft::detail::now_ns());  // due at once
  CHECK(heap.armed() == 1);
  std::thread firer([&] { heap.fire_due(true); });
  while (!timer.running.load()) std::this_thread::yield();
  // The callback runs: nothing is left in the heap to drive.
  CHECK(heap.earliest() == weft::detail::k_never);
  CHECK(heap.armed() == 0);
  std::atomic<std::uint32_t> word{0};
  CHECK_FALSE(heap.try_claim_driver(&word));
  CHECK(word.load() == 0);  // nobody was kicked
  timer.release.store(true);
  firer.join();
  CHECK(heap.armed() == 0);
  CHECK_FALSE(heap.cancel(&timer));  // fired, idle
}
