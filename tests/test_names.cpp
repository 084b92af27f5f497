// Fiber names and ids: names given at spawn (Runtime::spawn, go,
// TaskGroup::spawn), group prefixes, this_fiber::set_name, ids given at
// spawn (unique across workers and plain threads), and who spawned whom.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"
#include "sync_support.hpp"

using weft_test::k_worker_counts;
using weft_test::scaled;
using weft_test::spin_until;

TEST_CASE("names: a name given at spawn is the fiber's name; unnamed fibers have none" * doctest::timeout(60)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    CHECK(rt.spawn("fetch", [] { return weft::this_fiber::name(); }).join() == "fetch");
    CHECK(rt.spawn([] { return weft::this_fiber::name(); }).join() == "");
    CHECK(rt.spawn(std::string("owned-") + "string", [] { return weft::this_fiber::name(); }).join() ==
          "owned-string");
    // go() from a fiber, and the name outlives the caller's buffer (copied).
    auto inner = rt.block_on([] {
      std::string buf = "child";
      auto h = weft::go(buf, [] { return weft::this_fiber::name(); });
      buf = "overwritten";
      return h.join();
    });
    CHECK(inner == "child");
    CHECK(weft::this_fiber::name().empty());  // a plain thread
  }
}

TEST_CASE("names: a named TaskGroup prefixes its children, numbering unnamed ones" * doctest::timeout(60)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    std::mutex lock;
    std::multiset<std::string> seen;
    auto record = [&] {
      std::lock_guard<std::mutex> g(lock);
      seen.insert(weft::this_fiber::name());
    };
    {
      weft::TaskGroup<> g(rt, "request-17");
      g.spawn("fetch", record);  // child 1
      g.spawn(record);           // child 2
      g.spawn("parse", record);  // child 3
      g.spawn(record);           // child 4
      g.wait();
    }
    CHECK(seen == std::multiset<std::string>{"request-17/fetch", "request-17/2", "request-17/parse", "request-17/4"});
    seen.clear();
    // In a fiber, nested: an unnamed group passes children's own names on.
    rt.block_on([&] {
      weft::TaskGroup<> outer("outer");
      outer.spawn("inner", [&] {
        weft::TaskGroup<> unnamed;
        unnamed.spawn("leaf", record);
        unnamed.spawn(record);
        unnamed.wait();
        record();
      });
      outer.wait();
    });
    CHECK(seen == std::multiset<std::string>{"leaf", "", "outer/inner"});
  }
}

TEST_CASE("names: this_fiber::set_name renames the calling fiber; a plain thread gets NotInFiber" *
          doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  auto names = rt.block_on([] {
    std::vector<std::string> out;
    out.push_back(weft::this_fiber::name());
    weft::this_fiber::set_name("worker-a");
    out.push_back(weft::this_fiber::name());
    weft::this_fiber::yield();  // survives a switch
    out.push_back(weft::this_fiber::name());
    weft::this_fiber::set_name("worker-b");
    weft::this_fiber::sleep_for(std::chrono::milliseconds(1));  // and a park
    out.push_back(weft::this_fiber::name());
    weft::this_fiber::set_name("");
    out.push_back(weft::this_fiber::name());
    return out;
  });
  CHECK(names == std::vector<std::string>{"", "worker-a", "worker-a", "worker-b", ""});
  CHECK_THROWS_AS(weft::this_fiber::set_name("x"), weft::NotInFiber);
  // set_name shows in the dump.
  weft::Channel<int> gate(0, "gate");
  auto h = rt.spawn([gate]() mutable {
    weft::this_fiber::set_name("renamed");
    (void)gate.recv();
  });
  spin_until([&] { return rt.dump().find("\"renamed\" [parked") != std::string::npos; });
  gate.close();
  h.join();
}

TEST_CASE("ids: every task's id is unique and non-zero, across workers and plain threads" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    const std::size_t per = scaled(2000);
    std::mutex lock;
    std::vector<weft::FiberId> ids;
    auto record = [&] {
      const weft::FiberId id = weft::this_fiber::id();
      std::lock_guard<std::mutex> g(lock);
      ids.push_back(id);
    };
    // Spawners: two plain threads, and fibers on every worker (each taking
    // ids from its worker's batch; more than one batch in all).
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&] {
        std::vector<weft::JoinHandle<void>> hs;
        for (std::size_t i = 0; i < per; ++i) hs.push_back(rt.spawn(record));
        for (auto& h : hs) h.join();
      });
    }
    rt.block_on([&] {
      weft::TaskGroup<> g;
      for (std::size_t s = 0; s < 4; ++s) {
        g.spawn([&] {
          weft::TaskGroup<> inner;
          for (std::size_t i = 0; i < per; ++i) inner.spawn(record);
          inner.wait();
        });
      }
      g.wait();
    });
    for (auto& t : threads) t.join();
    REQUIRE(ids.size() == 6 * per);
    CHECK(std::count(ids.begin(), ids.end(), weft::FiberId{0}) == 0);
    std::sort(ids.begin(), ids.end());
    CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
  }
}

TEST_CASE("ids: a reused fiber takes the next task's id; a task joined inline shares its joiner's" *
          doctest::timeout(60)) {
  weft::Runtime rt({.workers = 1});
  rt.block_on([] {
    const weft::FiberId me = weft::this_fiber::id();
    CHECK(me != 0);
    // Queued next on this worker and joined at once: run inline, on our fiber.
    CHECK(weft::go([] { return weft::this_fiber::id(); }).join() == me);
    // Detached tasks finishing one after another on one worker run on a
    // reused fiber, each with its own id.
    std::vector<weft::FiberId> ids(64);
    weft::WaitGroup wg;
    wg.add(static_cast<int>(ids.size()));
    for (auto& slot : ids) {
      weft::go([&slot, &wg] {
        slot = weft::this_fiber::id();
        wg.done();
      }).detach();
    }
    wg.wait();
    std::sort(ids.begin(), ids.end());
    CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
    CHECK(std::count(ids.begin(), ids.end(), me) == 0);
  });
}

TEST_CASE("ids: the dump names each fiber's spawner, or a plain thread" * doctest::timeout(60)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Channel<weft::FiberId> ids(2);
    weft::Channel<int> gate(0, "gate");
    auto parent = rt.spawn("parent", [ids, gate]() mutable {
      ids.send(weft::this_fiber::id());
      auto child = weft::go("child", [ids, gate]() mutable {
        ids.send(weft::this_fiber::id());
        (void)gate.recv();
      });
      child.join();
    });
    const weft::FiberId parent_id = *ids.recv();
    const weft::FiberId child_id = *ids.recv();
    const std::string child_line = "fiber " + std::to_string(child_id) + " \"child\" [parked";
    const std::string spawned_by_parent = "spawned by fiber " + std::to_string(parent_id) + " \"parent\"";
    std::string dump;
    spin_until([&] {
      dump = rt.dump();
      return dump.find(child_line) != std::string::npos &&
             dump.find("fiber " + std::to_string(parent_id) + " \"parent\" [parked") != std::string::npos;
    });
    CAPTURE(dump);
    // One line each: the child's names its parent; the parent's a plain thread.
    std::string child_text = dump.substr(dump.find(child_line));
    child_text = child_text.substr(0, child_text.find('\n'));
    CHECK(child_text.find(spawned_by_parent) != std::string::npos);
    std::string parent_text = dump.substr(dump.find("fiber " + std::to_string(parent_id) + " \"parent\" ["));
    parent_text = parent_text.substr(0, parent_text.find('\n'));
    CHECK(parent_text.find("spawned by a plain thread") != std::string::npos);
    CHECK(parent_text.find("join of fiber " + std::to_string(child_id) + " \"child\"") != std::string::npos);
    gate.close();
    parent.join();
  }
}
