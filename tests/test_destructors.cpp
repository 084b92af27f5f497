// Where a task's user code ends: the destructors of its closure, its result
// and its exception, and the unhandled-exception handler, run on a fiber (the
// task's own, or its joiner's), never on a worker's scheduler loop, so they
// may use every weft wait. Regression test: the last reference to a detached
// task used to be dropped by the scheduler loop after the fiber had gone, so
// a result's destructor that sent on a channel blocked the worker thread
// itself and the runtime stopped.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>

#include "death_test.hpp"
#include "diagnostics/sanitizers.hpp"
#include "support.hpp"

using namespace std::chrono_literals;

namespace {

// A result whose destructor waits: it sends on an unbuffered channel, which
// parks until the receiver takes the value.
struct SendsWhenDestroyed {
  weft::Channel<int>* ch = nullptr;
  std::atomic<int>* in_fiber = nullptr;
  SendsWhenDestroyed(weft::Channel<int>* c, std::atomic<int>* f) : ch(c), in_fiber(f) {}
  SendsWhenDestroyed(SendsWhenDestroyed&& o) noexcept : ch(std::exchange(o.ch, nullptr)), in_fiber(o.in_fiber) {}
  ~SendsWhenDestroyed() {
    if (ch == nullptr) return;
    if (weft::this_fiber::in_fiber()) in_fiber->fetch_add(1);
    ch->send(1);
  }
};

struct ThrowsWithWaitingDestructor : std::runtime_error {
  std::atomic<int>* in_fiber;
  explicit ThrowsWithWaitingDestructor(std::atomic<int>* f) : std::runtime_error("boom"), in_fiber(f) {}
  ThrowsWithWaitingDestructor(const ThrowsWithWaitingDestructor&) = default;
  ~ThrowsWithWaitingDestructor() override {
    if (in_fiber == nullptr) return;
    if (weft::this_fiber::in_fiber()) in_fiber->fetch_add(1);
    weft::this_fiber::yield();  // any weft call that needs a fiber
  }
};

}  // namespace

TEST_CASE("destructors: a detached task's result is destroyed on a fiber, where it may park" *
          doctest::timeout(60)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    constexpr int n = 50;
    std::atomic<int> in_fiber{0};
    const int received = rt.block_on([&] {
      weft::Channel<int> ch;
      // The receiver is its own fiber: a task that has already finished when
      // detach() is called has its result destroyed by the detaching fiber
      // (here the spawner), whose send must then find the receiver waiting.
      // (Receiving on the spawner itself left that send with no partner: the
      // root parked for good, block_on reported the deadlock, and shutdown
      // cancelled the send inside the destructor: std::terminate, 5 % of runs.)
      auto receiver = weft::go([&] {
        int got = 0;
        for (int i = 0; i < n; ++i) {
          if (ch.recv_for(5s).ok()) ++got;
        }
        return got;
      });
      for (int i = 0; i < n; ++i) {
        weft::go([&] { return SendsWhenDestroyed(&ch, &in_fiber); }).detach();
      }
      return receiver.join();
    });
    CHECK(received == n);
    CHECK(in_fiber.load() == n);
  }
}

TEST_CASE("destructors: an unobserved exception is reported and destroyed on a fiber" * doctest::timeout(60)) {
  static std::atomic<int> reported_in_fiber{0};
  reported_in_fiber = 0;
  auto previous = weft::set_unhandled_exception_handler([](std::exception_ptr) {
    if (weft::this_fiber::in_fiber()) reported_in_fiber.fetch_add(1);
  });
  std::atomic<int> destroyed_in_fiber{0};
  {
    weft::Runtime rt({.workers = 2});
    rt.block_on([&] {
      weft::WaitGroup wg;
      for (int i = 0; i < 20; ++i) {
        wg.add(1);
        weft::go([&] {
          struct Done {
            weft::WaitGroup* wg;
            ~Done() { wg->done(); }
          } done{&wg};
          throw ThrowsWithWaitingDestructor(&destroyed_in_fiber);
        }).detach();
      }
      wg.wait();
    });
  }
  weft::set_unhandled_exception_handler(previous);
  CHECK(reported_in_fiber.load() == 20);
  CHECK(destroyed_in_fiber.load() >= 20);  // the thrown object; copies made by the runtime count too
}

// The one place user code still runs on a scheduler loop: the closure of a
// task that could not get a stack (the stack could not be mapped) is
// destroyed there, at the failed start. A weft wait in that destructor would
// block the worker; instead it stops the program with a message that says
// why. Regression: the closure used to die with the task's last reference,
// so when the spawner detached the handle only after the failed start, the
// destructor ran on the spawner's plain thread and its send blocked there
// (the child now keeps its handle: exit 3 after 5 s before the fix).
// (Sanitizer builds reserve their shadow memory up front, so an
// address-space limit cannot be used under them.)
TEST_CASE("destructors: a weft wait on a scheduler loop stops the program with a message" *
          doctest::timeout(60) * doctest::skip(WEFT_ASAN || WEFT_TSAN)) {
  const weft_test::Outcome o = weft_test::run_child("wait-on-loop");
  CAPTURE(o.output);
  CHECK(weft_test::killed_by(o, SIGABRT));
  CHECK(o.output.find("outside any fiber") != std::string::npos);
}
