// Stale wake-ups: a timed wait that ends without parking (what it waited for
// turned up just after it armed its deadline) must not leave its timer's
// wake-up behind for the fiber's next, unrelated wait. Found by weft-soak:
// the next channel receive returned "closed" on an open channel, and the next
// join returned before the task had finished.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <atomic>
#include <chrono>

#include "support.hpp"

using weft_test::scaled;

namespace {

// The deadline lands within a few microseconds, so that its timer often fires
// while the wait is returning without having parked.
std::chrono::nanoseconds tiny(std::size_t i) { return std::chrono::nanoseconds(200 + (i % 16) * 250); }

// After each timed wait, a receive that has to park: a stale wake-up would
// end it at once, with nullopt, though the channel is open.
void expect_next_wait_is_real(weft::Channel<std::size_t>& ch, std::size_t i) {
  auto sender = weft::go([&ch, i] {
    weft::this_fiber::yield();
    ch.send(i);
  });
  const std::optional<std::size_t> got = ch.recv();
  REQUIRE(got.has_value());
  CHECK(*got == i);
  sender.join();
}

}  // namespace

TEST_CASE("wake-ups: timed waits that return without parking leave nothing for the next wait" *
          doctest::timeout(300)) {
  for (std::size_t workers : {2, 4}) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    const std::size_t rounds = scaled(20000);
    rt.block_on([&] {
      weft::Channel<std::size_t> ch;
      weft::Mutex m;
      for (std::size_t i = 0; i < rounds; ++i) {
        switch (i % 3) {
          case 0: {  // try_lock_for on a mutex that is free once the deadline is armed
            auto holder = weft::go([&] {
              m.lock();
              weft::this_fiber::yield();
              m.unlock();
            });
            while (!m.try_lock_for(tiny(i))) {
            }
            m.unlock();
            holder.join();
            break;
          }
          case 1: {  // join_for of a task that finishes as the join starts
            auto child = weft::go([] {});
            while (!child.join_for(tiny(i))) {
            }
            child.join();
            break;
          }
          default: {  // WaitGroup::wait_for as the count reaches zero
            weft::WaitGroup wg;
            wg.add(1);
            auto doner = weft::go([&] { wg.done(); });
            while (!wg.wait_for(tiny(i))) {
            }
            doner.join();
            break;
          }
        }
        expect_next_wait_is_real(ch, i);
      }
    });
  }
}
