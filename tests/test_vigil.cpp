// The sleepers' vigil (lib/scheduling/idle_workers.hpp): a worker's push
// onto its own deque reads the idle counters without a barrier, so its
// notification can miss a worker falling asleep at that moment; such a
// sleeper looks at the queues again once, and takes the work. Internal: the
// race lasts as long as a store sits in a store buffer, so the test makes
// the producer's notification miss on purpose (a phantom searcher) and
// widens the vigil so that the push surely lands inside it.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "scheduling/current.hpp"
#include "scheduling/idle_workers.hpp"
#include "scheduling/scheduler.hpp"
#include "scheduling/worker.hpp"

using namespace std::chrono_literals;

namespace {

// Spins (blocking this worker thread, as a CPU-bound fiber would) until
// `done` or the time limit; true if done.
bool spin_until(const std::atomic<bool>& done, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done.load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() > until) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("vigil: a child whose spawn notified nobody is taken by the sleeping worker while its parent spins" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    weft::detail::Worker* here = weft::detail::current_worker();
    weft::detail::Scheduler& s = here->scheduler();
    weft::detail::IdleWorkers& idle = s.idle();
    weft::detail::Worker& other = s.worker(here->index() == 0 ? 1 : 0);
    idle.set_vigil_ns_for_tests(std::chrono::nanoseconds(300ms).count());

    // Make the other worker start a sleep now, under the long vigil: a
    // spawn wakes it (it sleeps, nobody searches), it finds nothing or the
    // no-op, and sleeps again.
    const std::uint64_t sleeps_before = other.sleeps();
    weft::go([] {}).join();
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (other.sleeps() == sleeps_before || idle.num_awake() != 1) {
      REQUIRE(std::chrono::steady_clock::now() < until);
    }
    const std::uint64_t vigils_before = other.vigil_wakeups();

    // A phantom searcher: the spawn below sees someone searching and
    // wakes nobody, as a push whose read of the counters passed its store.
    REQUIRE(idle.try_begin_search());
    std::atomic<bool> ran{false};
    std::atomic<std::size_t> ran_on{99};
    auto child = weft::go([&] {
      ran_on.store(weft::this_fiber::worker_index(), std::memory_order_relaxed);
      ran.store(true, std::memory_order_release);
    });
    // This worker stays busy: only the sleeper can run the child.
    const bool taken = spin_until(ran, 5s);
    idle.end_search();
    idle.set_vigil_ns_for_tests(weft::detail::IdleWorkers::k_vigil_ns);
    child.join();  // runs it here if the vigil failed
    CHECK(taken);
    CHECK(ran_on.load() == other.index());
    CHECK(other.vigil_wakeups() == vigils_before + 1);
  });
}

TEST_CASE("vigil: a sleep beside a busy worker ends by itself only when work is queued" * doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    weft::detail::Worker* here = weft::detail::current_worker();
    weft::detail::Worker& other = here->scheduler().worker(here->index() == 0 ? 1 : 0);
    const std::uint64_t vigils_before = other.vigil_wakeups();
    const std::uint64_t wakeups_before = other.wakeups();
    // Busy for 50 vigils with nothing queued: the other worker looks once
    // and sleeps on; nothing wakes it.
    std::this_thread::sleep_for(5ms);
    CHECK(other.vigil_wakeups() == vigils_before);
    CHECK(other.wakeups() <= wakeups_before + 1);  // at most the sleep it was entering
  });
}
