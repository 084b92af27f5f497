// An idle runtime burns no CPU: workers sleep on a futex, nobody polls.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <chrono>
#include <thread>

#include "support.hpp"

using namespace std::chrono_literals;

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
