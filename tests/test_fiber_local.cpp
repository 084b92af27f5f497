// weft::FiberLocal<T> (fiber_local.hpp): a value per fiber that follows it
// across workers, unlike thread_local.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <atomic>
#include <vector>

#include "support.hpp"

namespace {

std::atomic<int> g_made{0};
std::atomic<int> g_destroyed{0};

struct Counted {
  int value = 0;
  Counted() { g_made.fetch_add(1); }
  ~Counted() { g_destroyed.fetch_add(1); }
};

weft::FiberLocal<Counted> g_local;

}  // namespace

TEST_CASE("fiber local: each fiber has its own value, kept across parks and migrations, destroyed at its end" *
          doctest::timeout(120)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    CAPTURE(workers);
    g_made = 0;
    g_destroyed = 0;
    weft::Runtime rt({.workers = workers});
    const int n = static_cast<int>(weft_test::scaled(200));
    std::atomic<int> wrong{0};
    std::atomic<int> migrated{0};
    rt.block_on([&] {
      weft::TaskGroup<> g;
      for (int i = 0; i < n; ++i) {
        g.spawn([&, i] {
          g_local->value = i;
          const std::size_t first_worker = weft::this_fiber::worker_index();
          for (int k = 0; k < 20; ++k) {
            weft::this_fiber::sleep_for(std::chrono::microseconds(50));  // parks; may resume elsewhere
            if (weft::this_fiber::worker_index() != first_worker) migrated.fetch_add(1);
            if (g_local->value != i) wrong.fetch_add(1);
          }
        });
      }
      g.wait();
    });
    CHECK(wrong.load() == 0);
    CHECK(g_made.load() == n);
    CHECK(g_destroyed.load() == n);  // each fiber's value went with it
    MESSAGE(workers << " workers: " << migrated.load() << " resumptions on another worker");
  }
}

TEST_CASE("fiber local: a plain thread has its own value too" * doctest::timeout(60)) {
  g_local->value = -1;
  weft::Runtime rt({.workers = 1});
  const int in_fiber = rt.block_on([] { return g_local->value; });
  CHECK(in_fiber == 0);            // a fresh value in the fiber
  CHECK(g_local->value == -1);     // the thread's own, untouched
}
