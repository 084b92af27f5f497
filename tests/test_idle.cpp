// An idle runtime burns no CPU: workers sleep on a futex, nobody polls.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <chrono>
#include <thread>

#include "support.hpp"
#include "sync_support.hpp"

using namespace std::chrono_literals;

namespace {

int named_worker_threads() { return static_cast<int>(weft_test::worker_thread_dirs().size()); }

}  // namespace

TEST_CASE("idle: the constructor returns with every worker thread running") {
  // Read at once, with no sleep: a worker that had not started yet would
  // not have named itself. Several rounds, since a late start is a race.
  // No other runtime exists in this test, but the joined workers of the
  // last one can stay listed for a moment after they have exited: wait for
  // them to go first.
  for (int round = 0; round < 100; ++round) {
    CAPTURE(round);
    REQUIRE(weft_test::spin_until([] { return named_worker_threads() == 0; }));
    weft::Runtime rt({.workers = 3});
    CHECK(named_worker_threads() == 3);
  }
}

TEST_CASE("idle: a started runtime with nothing to do uses almost no CPU") {
  weft::Runtime rt({.workers = 4});
  std::this_thread::sleep_for(50ms);  // let the workers fall asleep
  auto before = weft_test::process_cpu_time();
  std::this_thread::sleep_for(500ms);
  auto used = weft_test::process_cpu_time() - before;
  MESSAGE("CPU used over 500 ms idle: " << used.count() << " us");
  CHECK(used < 50ms);  // generous: behaviour (no polling), not a speed target
}

TEST_CASE("idle: workers go back to sleep after a burst of work") {
  weft::Runtime rt({.workers = 4});
  std::atomic<unsigned long long> sink{0};
  rt.block_on([&] {
    std::vector<weft::JoinHandle<void>> hs;
    for (int i = 0; i < 400; ++i) hs.push_back(weft::go([&, i] { sink += weft_test::burn(i, 100); }));
    for (auto& h : hs) h.join();
  });
  std::this_thread::sleep_for(50ms);
  auto before = weft_test::process_cpu_time();
  std::this_thread::sleep_for(500ms);
  auto used = weft_test::process_cpu_time() - before;
  MESSAGE("CPU used over 500 ms idle after a burst: " << used.count() << " us");
  CHECK(used < 50ms);
}
