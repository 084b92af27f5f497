// Every bad input gets its error; exceptions nobody joins are reported.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <atomic>
#include <algorithm>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "sync_support.hpp"

TEST_CASE("errors: invalid Options throw std::invalid_argument") {
  CHECK_THROWS_AS(weft::Runtime({.workers = 0}), std::invalid_argument);
  CHECK_THROWS_AS(weft::Runtime({.workers = 5000}), std::invalid_argument);
  CHECK_THROWS_AS(weft::Runtime({.workers = 1, .stack_size = 100}), std::invalid_argument);
  CHECK_THROWS_AS(weft::Runtime({.workers = 1, .stack_size = std::size_t{4} << 30}), std::invalid_argument);
  CHECK_NOTHROW(weft::Runtime({.workers = 1, .stack_size = 4096}));
  CHECK(weft::default_worker_count() >= 1);
}

TEST_CASE("errors: joining twice, after detach, or an empty handle throws std::logic_error") {
  weft::Runtime rt({.workers = 2});
  auto h = rt.spawn([] { return 1; });
  CHECK(h.join() == 1);
  CHECK_THROWS_WITH_AS(h.join(), "weft::JoinHandle::join: the task was already joined", std::logic_error);
  auto d = rt.spawn([] { return 2; });
  d.detach();
  CHECK_THROWS_WITH_AS(d.join(), "weft::JoinHandle::join: the handle was detached", std::logic_error);
  CHECK_THROWS_AS(d.detach(), std::logic_error);
  weft::JoinHandle<int> empty;
  CHECK_THROWS_AS(empty.join(), std::logic_error);
  auto m = rt.spawn([] { return 3; });
  auto m2 = std::move(m);
  CHECK_THROWS_WITH_AS(m.join(), "weft::JoinHandle::join: the handle was moved from", std::logic_error);
  CHECK(m2.join() == 3);
}

TEST_CASE("errors: fiber-only calls from a plain thread throw weft::NotInFiber") {
  CHECK_THROWS_AS(weft::go([] {}), weft::NotInFiber);
  CHECK_THROWS_AS(weft::this_fiber::yield(), weft::NotInFiber);
  CHECK_THROWS_AS(weft::this_fiber::worker_index(), weft::NotInFiber);
  CHECK_THROWS_AS(weft::go([] {}), std::logic_error);  // NotInFiber is a logic_error
}

TEST_CASE("errors: go() from a plain thread destroys its callable once, runs it never, and says why") {
  // go() moves the callable into a task before it looks at the thread (one
  // look for the check and the push); on NotInFiber the task is deleted.
  // Nothing leaks (AddressSanitizer's leak check), nothing runs.
  static int alive = 0;
  struct Probe {
    bool* ran;
    Probe(bool* r) : ran(r) { ++alive; }
    Probe(const Probe& o) : ran(o.ran) { ++alive; }
    Probe(Probe&& o) noexcept : ran(o.ran) { ++alive; }
    ~Probe() { --alive; }
    void operator()() const { *ran = true; }
  };
  bool ran = false;
  {
    Probe p(&ran);
    CHECK_THROWS_WITH_AS(weft::go(p), "weft::go called outside a fiber (from a plain thread); use Runtime::spawn",
                         weft::NotInFiber);
    CHECK(alive == 1);  // the copy in the task is gone; the caller's is not
    CHECK_THROWS_AS(weft::go("named", Probe(&ran)), weft::NotInFiber);
    CHECK(alive == 1);
  }
  CHECK(alive == 0);
  CHECK_FALSE(ran);
}

TEST_CASE("errors: block_on or shutdown from a fiber of the same runtime throws std::logic_error") {
  weft::Runtime rt({.workers = 2});
  bool block_on_threw = rt.block_on([&] {
    try {
      rt.block_on([] { return 0; });
    } catch (const std::logic_error&) {
      return true;
    }
    return false;
  });
  CHECK(block_on_threw);
  bool shutdown_threw = rt.block_on([&] {
    try {
      rt.shutdown();
    } catch (const std::logic_error&) {
      return true;
    }
    return false;
  });
  CHECK(shutdown_threw);
}

namespace {
struct Captured {
  std::mutex lock;
  std::vector<std::string> messages;
  void add(std::exception_ptr e) {
    std::lock_guard<std::mutex> g(lock);
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      messages.push_back(ex.what());
    } catch (...) {
      messages.push_back("?");
    }
  }
};
}  // namespace

TEST_CASE("errors: an exception escaping a task nobody joins goes to the handler, once") {
  auto captured = std::make_shared<Captured>();
  auto previous = weft::set_unhandled_exception_handler([captured](std::exception_ptr e) { captured->add(e); });
  {
    weft::Runtime rt({.workers = 2});
    // detached before it fails
    rt.spawn([] { throw std::runtime_error("detached"); }).detach();
    // handle dropped after it failed
    {
      auto h = rt.spawn([] { throw std::runtime_error("dropped"); });
      while (!h.is_finished()) std::this_thread::yield();
    }
    // joined: observed, not reported
    auto j = rt.spawn([] { throw std::runtime_error("joined"); });
    CHECK_THROWS_AS(j.join(), std::runtime_error);
    // a handler that throws is contained
    rt.shutdown();
  }
  weft::set_unhandled_exception_handler(std::move(previous));
  std::lock_guard<std::mutex> g(captured->lock);
  std::sort(captured->messages.begin(), captured->messages.end());
  CHECK(captured->messages == std::vector<std::string>{"detached", "dropped"});
}

TEST_CASE("errors: a throwing handler does not terminate the process" * doctest::timeout(60)) {
  // The handler records what it got, then throws. The worker that called it
  // must survive: it runs the next task, and reports the next failure to the
  // same handler.
  auto captured = std::make_shared<Captured>();
  auto previous = weft::set_unhandled_exception_handler([captured](std::exception_ptr e) {
    captured->add(e);
    throw 1;
  });
  const auto calls = [&] {
    std::lock_guard<std::mutex> g(captured->lock);
    return captured->messages.size();
  };
  int after_first = 0;
  {
    weft::Runtime rt({.workers = 1});
    rt.spawn([] { throw std::runtime_error("x"); }).detach();
    weft_test::spin_until([&] { return calls() == 1; });
    after_first = rt.spawn([] { return 7; }).join();
    rt.spawn([] { throw std::runtime_error("y"); }).detach();
  }  // shutdown runs the second task, so its report is made by now
  weft::set_unhandled_exception_handler(std::move(previous));
  CHECK(after_first == 7);
  std::lock_guard<std::mutex> g(captured->lock);
  CHECK(captured->messages == std::vector<std::string>{"x", "y"});
}
