// Resource exhaustion and misuse: what weft does when a stack cannot be
// mapped, when user code throws at awkward moments, and when a runtime is
// destroyed while fibers are parked, while plain threads are blocked, or from
// inside one of its own fibers.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "death_test.hpp"
#include "diagnostics/sanitizers.hpp"
#include "support.hpp"
#include "sync_support.hpp"

using namespace std::chrono_literals;
using weft_test::CountsDestruction;
using weft_test::k_worker_counts;
using weft_test::spin_until;

namespace {

// A value whose copy throws on demand (its move never does, as Channel
// requires).
struct Flaky {
  int v = 0;
  bool throw_on_copy = false;
  Flaky() = default;
  Flaky(int value, bool t) : v(value), throw_on_copy(t) {}
  Flaky(const Flaky& o) : v(o.v), throw_on_copy(o.throw_on_copy) {
    if (throw_on_copy) throw std::runtime_error("Flaky copy");
  }
  Flaky(Flaky&& o) noexcept = default;
  Flaky& operator=(const Flaky&) = default;
  Flaky& operator=(Flaky&&) noexcept = default;
};

std::size_t vm_size_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmSize:") {
      std::size_t kib = 0;
      status >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

// Lowers the address-space limit to what the process has mapped now plus
// `headroom` bytes, and restores it when destroyed.
class AddressSpaceLimit {
 public:
  explicit AddressSpaceLimit(std::size_t headroom) {
    REQUIRE(::getrlimit(RLIMIT_AS, &saved_) == 0);
    rlimit tight = saved_;
    tight.rlim_cur = vm_size_bytes() + headroom;
    REQUIRE(::setrlimit(RLIMIT_AS, &tight) == 0);
  }
  ~AddressSpaceLimit() { ::setrlimit(RLIMIT_AS, &saved_); }

 private:
  rlimit saved_{};
};

}  // namespace

// The sanitizers reserve terabytes of shadow address space up front, so an
// address-space limit cannot be used under them.
TEST_CASE("misuse: a fiber whose stack cannot be mapped fails with std::bad_alloc; the runtime keeps running" *
          doctest::timeout(120) * doctest::skip(WEFT_ASAN || WEFT_TSAN)) {
  // 1 GiB stacks (the largest allowed), no cache: every fiber maps its own.
  // No fiber runs before the limit, so no worker has a stack to reuse.
  weft::Runtime rt({.workers = 2, .stack_size = std::size_t{1} << 30, .stack_cache = 0});
  std::atomic<int> reported{0};
  auto previous = weft::set_unhandled_exception_handler([&](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::bad_alloc&) {
      reported.fetch_add(1);
    } catch (...) {
    }
  });
  {
    const AddressSpaceLimit limit(256u << 20);  // room for malloc, not for a stack
    for (int i = 0; i < 20; ++i) {
      auto h = rt.spawn([] { return 2; });
      CHECK_THROWS_AS(h.join(), std::bad_alloc);
    }
    for (int i = 0; i < 5; ++i) rt.spawn([] { return 3; }).detach();
    spin_until([&] { return reported.load() == 5; });
  }
  weft::set_unhandled_exception_handler(previous);
  CHECK(reported.load() == 5);
  // The limit is gone: the same runtime runs fibers again.
  std::vector<weft::JoinHandle<int>> hs;
  for (int i = 0; i < 8; ++i) hs.push_back(rt.spawn([i] { return i; }));
  int sum = 0;
  for (auto& h : hs) sum += h.join();
  CHECK(sum == 28);
  CHECK(rt.metrics().fibers_alive == 0);
}

TEST_CASE("misuse: a fiber that throws while holding lock_guard<weft::Mutex> releases it to the parked waiter" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Mutex m;
    std::atomic<bool> holding{false};
    std::atomic<bool> waiter_got_it{false};
    weft::Channel<int> go_on;
    auto thrower = rt.spawn([&] {
      std::lock_guard<weft::Mutex> hold(m);
      holding.store(true);
      (void)go_on.recv();  // parks holding the lock
      throw std::runtime_error("thrown under the lock");
    });
    spin_until([&] { return holding.load() && weft_test::waiting_receivers(go_on) == 1; });
    const std::uint64_t parks_before = rt.metrics().parks;  // the thrower's park is counted
    auto waiter = rt.spawn([&] {
      std::lock_guard<weft::Mutex> hold(m);  // parks until the thrower unwinds
      waiter_got_it.store(true);
    });
    spin_until([&] { return rt.metrics().parks > parks_before; });  // the waiter has parked in lock()
    std::thread plain([&] {  // a plain thread queues on the same mutex
      std::lock_guard<weft::Mutex> hold(m);
    });
    // A plain thread waiting on a Mutex cannot be observed from here; this
    // gives it time to queue behind the waiter.
    std::this_thread::sleep_for(5ms);
    CHECK_FALSE(waiter_got_it.load());
    go_on.send(1);
    CHECK_THROWS_WITH_AS(thrower.join(), "thrown under the lock", std::runtime_error);
    waiter.join();
    plain.join();
    CHECK(waiter_got_it.load());
    CHECK(m.try_lock());
    m.unlock();
  }
}

TEST_CASE("misuse: a throwing copy of a value leaves the channel as it was" * doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    rt.block_on([] {
      const Flaky bad(-1, true);
      // Buffered: the copy is made before the channel is touched.
      weft::Channel<Flaky> buf(2);
      CHECK(buf.send(Flaky(1, false)));
      CHECK_THROWS_AS(buf.send(bad), std::runtime_error);
      CHECK_THROWS_AS((void)buf.try_send(bad), std::runtime_error);
      CHECK_THROWS_AS(buf.send_for(bad, 1ms), std::runtime_error);
      CHECK_THROWS_AS(weft::select(weft::on_send(buf, bad), weft::on_default([] {})), std::runtime_error);
      CHECK(buf.size() == 1);
      CHECK(buf.send(Flaky(2, false)));
      CHECK(buf.recv()->v == 1);
      CHECK(buf.recv()->v == 2);
      CHECK(buf.size() == 0);

      // Unbuffered, with a receiver parked: it stays parked through the
      // failed sends and gets the next good value.
      weft::Channel<Flaky> rendezvous;
      auto receiver = weft::go([&] { return rendezvous.recv()->v; });
      spin_until([&] { return weft_test::waiting_receivers(rendezvous) == 1; });
      CHECK_THROWS_AS(rendezvous.send(bad), std::runtime_error);
      CHECK_THROWS_AS((void)rendezvous.try_send(bad), std::runtime_error);
      CHECK(rendezvous.send(Flaky(7, false)));
      CHECK(receiver.join() == 7);

      // Closing still works, and nothing is left behind.
      buf.close();
      CHECK_FALSE(buf.recv().has_value());
    });
  }
}

TEST_CASE("misuse: destroying a runtime cancels fibers parked on every kind of wait, running their destructors" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    std::atomic<int> destroyed{0};
    std::atomic<int> parked{0};
    // One channel per wait, or the waits would complete each other.
    weft::Channel<int> no_sender(0, "no sender");
    weft::Channel<int> no_receiver(0, "no receiver");
    weft::Channel<int> no_one(0, "no one");
    weft::Mutex m;
    weft::CondVar cv;
    weft::WaitGroup wg;
    wg.add(1);
    weft::Semaphore sem(0);
    std::vector<weft::JoinHandle<void>> handles;
    {
      // The main thread holds m until after the runtime is gone (declared
      // first, released last), so the fiber waiting for m is parked forever.
      std::lock_guard<weft::Mutex> held_by_main(m);
      weft::Runtime rt({.workers = workers});
      auto park = [&](auto wait) {
        handles.push_back(rt.spawn([&, wait] {
          CountsDestruction guard{&destroyed};
          auto owned = std::make_unique<std::vector<int>>(100, 1);  // freed by unwinding (ASan checks)
          parked.fetch_add(1);
          wait();
        }));
      };
      park([&] { (void)no_sender.recv(); });
      park([&] { (void)no_receiver.send(1); });
      park([&] { std::lock_guard<weft::Mutex> hold(m); });
      park([&] { wg.wait(); });
      park([&] { sem.acquire(); });
      park([&] { weft::this_fiber::sleep_for(1h); });
      park([&] {
        weft::select(weft::on_recv(no_one, [](std::optional<int>) {}), weft::after(1h, [] {}));
      });
      park([&] {
        weft::Mutex local;
        std::unique_lock<weft::Mutex> lock(local);
        cv.wait(lock);
      });
      spin_until([&] { return parked.load() == 8; });
      spin_until([&] { return rt.metrics().parks >= 8; });  // each of them parks once, for good
    }
    CHECK(destroyed.load() == 8);
    for (std::size_t i = 0; i < handles.size(); ++i) {
      CAPTURE(i);
      CHECK_THROWS_AS(handles[i].join(), weft::RuntimeStopped);
    }
    // The objects they waited on are intact and usable.
    CHECK(no_sender.try_send(1) == false);  // nobody waits there any more
    CHECK_FALSE(no_receiver.try_recv().has_value());
    CHECK(wg.count() == 1);
    wg.done();
    CHECK(sem.try_acquire() == false);
    CHECK(m.try_lock());
    m.unlock();
    CHECK(weft::Runtime({.workers = 1}).metrics().armed_timers == 0);  // the sleep and select timers were cancelled
  }
}

TEST_CASE("misuse: destroying a runtime while plain threads are blocked in weft calls" * doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Channel<int> jobs(0, "jobs");  // outlives the runtime
    weft::Mutex m;
    std::atomic<int> stage{0};
    std::optional<int> received = 42;
    bool join_threw_stopped = false;
    bool locked_after = false;
    std::thread receiver;
    std::thread joiner;
    std::thread locker;
    {
      weft::Runtime rt({.workers = workers});
      // A fiber parked forever holding m, and one parked forever on jobs.
      auto holder = std::make_shared<weft::JoinHandle<void>>(rt.spawn([&] {
        std::lock_guard<weft::Mutex> hold(m);
        stage.fetch_add(1);
        weft::Channel<int> never;
        (void)never.recv();
      }));
      spin_until([&] { return stage.load() == 1; });
      // Blocked in recv() on a channel: stays blocked after the runtime is
      // gone (channels belong to no runtime) until the channel is closed.
      receiver = std::thread([&] { received = jobs.recv(); });
      // Blocked in join() of the parked fiber: the runtime's destruction
      // cancels the fiber and the join reports RuntimeStopped.
      joiner = std::thread([&, holder] {
        try {
          holder->join();
        } catch (const weft::RuntimeStopped&) {
          join_threw_stopped = true;
        }
      });
      // Blocked in lock() of the mutex the fiber holds: cancellation unwinds
      // the fiber's lock_guard, and the thread gets the mutex.
      locker = std::thread([&] {
        std::lock_guard<weft::Mutex> hold(m);
        locked_after = true;
      });
      // The receiver is seen waiting on its channel; a plain thread blocked
      // in join() or Mutex::lock() cannot be seen, so the other two get time.
      spin_until([&] { return weft_test::waiting_receivers(jobs) == 1; });
      std::this_thread::sleep_for(20ms);
    }
    joiner.join();
    locker.join();
    CHECK(join_threw_stopped);
    CHECK(locked_after);
    std::this_thread::sleep_for(5ms);
    CHECK(received == std::optional<int>(42));  // still blocked: nothing sent, not closed
    jobs.close();
    receiver.join();
    CHECK_FALSE(received.has_value());
  }
}

TEST_CASE("misuse: destroying a runtime from one of its own fibers aborts with a message" * doctest::timeout(60)) {
  const weft_test::Outcome o = weft_test::run_child("destroy-from-fiber");
  CAPTURE(o.output);
  CHECK(weft_test::killed_by(o, SIGABRT));
  CHECK(o.output.find("called from a fiber of the same runtime") != std::string::npos);
  CHECK(o.output.find("survived") == std::string::npos);
}

TEST_CASE("misuse: destroying a runtime from a fiber of another runtime is allowed" * doctest::timeout(60)) {
  weft::Runtime outer({.workers = 2});
  const int v = outer.block_on([] {
    auto inner = std::make_unique<weft::Runtime>(weft::Runtime::Options{.workers = 2});
    auto h = inner->spawn([] { return 5; });
    inner.reset();  // blocks this fiber's worker while the inner runtime drains
    return h.join();
  });
  CHECK(v == 5);
}
