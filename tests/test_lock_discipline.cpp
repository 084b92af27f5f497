// Lock discipline (lib/channels/channel_core.hpp, detail/spin_lock.hpp): no weft
// SpinLock is held while a fiber switches out, a thread blocks, or a timer
// is armed. Builds with assertions count the SpinLocks each thread holds and
// assert at those three places, so every test checks the discipline; this
// one drives the paths that used to break it: timed channel operations and
// selects from fibers armed their deadline timers (a heap insert that may
// allocate, a futex wake, the first start of the fallback timer thread)
// while holding the channel locks. Before the fix each case below stopped
// at the assertion. In builds without assertions it checks the results.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <chrono>

#include "support.hpp"

using namespace std::chrono_literals;

TEST_CASE("lock discipline: timed channel operations and selects arm their timers outside channel locks" *
          doctest::timeout(120)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    rt.block_on([] {
      weft::Channel<int> a, b;
      // Nothing arrives: each wait times out.
      CHECK(a.recv_for(1ms).timed_out());
      CHECK(a.send_for(1, 1ms) == weft::OpStatus::timed_out);
      bool timed_out = false;
      weft::select(weft::on_recv(a, [](std::optional<int>) {}), weft::on_recv(b, [](std::optional<int>) {}),
                   weft::after(1ms, [&] { timed_out = true; }));
      CHECK(timed_out);
      // A counterpart arrives while the wait is armed: each completes.
      for (int i = 0; i < 200; ++i) {
        auto sender = weft::go([&, i] {
          if (i % 2 == 0) weft::this_fiber::yield();
          a.send(i);
        });
        auto got = a.recv_for(5s);
        REQUIRE(got.ok());
        CHECK(*got == i);
        sender.join();
        int selected = -1;
        auto other = weft::go([&, i] { b.send(i); });
        weft::select(weft::on_recv(a, [](std::optional<int>) {}),
                     weft::on_recv(b, [&](std::optional<int> v) { selected = v.value_or(-1); }),
                     weft::after(5s, [] {}));
        CHECK(selected == i);
        other.join();
      }
    });
  }
}
