// Runtime::dump(): one line per fiber with its state, name, what it waits
// on (channel recv/send, a mutex and its holder, a join, a sleep, a
// select), how long, and who spawned it; the running fiber; what is only
// counted (queued tasks); deadlock reports in the same format naming a
// mutex's holder; and the dump on a signal (Options::dump_signal).
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "support.hpp"
#include "sync_support.hpp"

using weft_test::deadlock_message;
using weft_test::k_worker_counts;
using weft_test::spin_until;

namespace {

// The dump's line for the fiber named `name` ("" if none).
std::string line_of(const std::string& dump, const std::string& name) {
  const auto at = dump.find(" \"" + name + "\" [");
  if (at == std::string::npos) return {};
  const auto start = dump.rfind('\n', at) + 1;
  return dump.substr(start, dump.find('\n', at) - start);
}

// Polls rt.dump() until the fiber named `name` is listed parked, and
// returns its line.
std::string parked_line(weft::Runtime& rt, const std::string& name) {
  std::string line;
  spin_until([&] {
    line = line_of(rt.dump(), name);
    return line.find("[parked ") != std::string::npos;
  });
  return line;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("dump: a fiber parked on a channel receive or send shows the channel and how long" *
          doctest::timeout(60)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Channel<int> jobs(0, "jobs"), out(0, "out");
    auto r = rt.spawn("receiver", [jobs]() mutable { (void)jobs.recv(); });
    auto s = rt.spawn("sender", [out]() mutable { (void)out.send(1); });
    const std::string rl = parked_line(rt, "receiver");
    CAPTURE(rl);
    CHECK(rl.rfind("fiber ", 0) == 0);
    CHECK(has(rl, "\"receiver\" [parked "));
    CHECK(has(rl, "recv on channel \"jobs\""));
    CHECK(has(rl, "; spawned by a plain thread"));
    const std::string sl = parked_line(rt, "sender");
    CAPTURE(sl);
    CHECK(has(sl, "send on channel \"out\""));
    // How long: at least the time we let pass (a lower bound only).
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    const std::string later = line_of(rt.dump(), "receiver");
    CAPTURE(later);
    CHECK((has(later, " ms] ") || has(later, " s] ")));
    CHECK_FALSE(has(later, "[parked 0 ms]"));
    CHECK_FALSE(has(later, "[parked 1 ms]"));
    jobs.close();
    out.close();
    r.join();
    s.join();
    // Finished fibers are no longer listed (once their workers let go of
    // them, a moment after join() returns).
    spin_until([&] {
      const std::string after = rt.dump();
      return !has(after, "\"receiver\"") && !has(after, "\"sender\"");
    });
  }
}

TEST_CASE("dump: a fiber waiting for a mutex names the fiber holding it" * doctest::timeout(60)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Mutex m;
    weft::Channel<int> gate(0, "gate");
    std::atomic<weft::FiberId> holder_id{0};
    auto holder = rt.spawn("writer", [&, gate]() mutable {
      std::lock_guard<weft::Mutex> g(m);
      holder_id = weft::this_fiber::id();
      (void)gate.recv();
    });
    spin_until([&] { return holder_id.load() != 0; });
    auto waiter = rt.spawn("reader", [&] { std::lock_guard<weft::Mutex> g(m); });
    const std::string wl = parked_line(rt, "reader");
    CAPTURE(wl);
    CHECK(has(wl, "lock of weft::Mutex 0x"));
    CHECK(has(wl, "held by fiber " + std::to_string(holder_id.load()) + " \"writer\""));
    gate.close();
    holder.join();
    waiter.join();
  }
  // Held by a plain thread.
  weft::Runtime rt({.workers = 2});
  weft::Mutex m;
  m.lock();
  auto waiter = rt.spawn("late", [&] { std::lock_guard<weft::Mutex> g(m); });
  const std::string wl = parked_line(rt, "late");
  CAPTURE(wl);
  CHECK(has(wl, "held by a plain thread"));
  m.unlock();
  waiter.join();
}

TEST_CASE("dump: join, sleep and select waits say what they wait for" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  weft::Channel<int> gate(0, "gate"), a(0, "alpha"), b(0, "beta");
  auto target = rt.spawn("target", [gate]() mutable { (void)gate.recv(); });
  auto joiner = rt.spawn("joiner", [&target] { target.join(); });
  auto sleeper = rt.spawn("sleeper", [] { weft::this_fiber::sleep_for(std::chrono::hours(1)); });
  auto selector = rt.spawn("selector", [a, b]() mutable {
    weft::select(weft::on_recv(a, [](std::optional<int>) {}), weft::on_recv(b, [](std::optional<int>) {}));
  });
  const std::string jl = parked_line(rt, "joiner");
  CAPTURE(jl);
  CHECK(has(jl, "join of fiber "));
  CHECK(has(jl, "\"target\""));
  const std::string sl = parked_line(rt, "sleeper");
  CAPTURE(sl);
  CHECK(has(sl, "sleep, "));
  CHECK(has(sl, " to its deadline"));
  CHECK((has(sl, "59.") || has(sl, "60.") || has(sl, "3599 s") || has(sl, "3600 s")));  // about an hour left
  const std::string xl = parked_line(rt, "selector");
  CAPTURE(xl);
  CHECK(has(xl, "select on recv on channel \"alpha\""));
  CHECK(has(xl, "recv on channel \"beta\""));
  gate.close();
  a.close();
  joiner.join();  // joined the target
  selector.join();
  rt.shutdown_for(std::chrono::milliseconds(0));  // cancels the sleeper
  CHECK_THROWS(sleeper.join());
}

TEST_CASE("dump: a named group's owner waits on the group by name; its children carry the prefix" *
          doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  weft::Channel<int> gate(0, "gate");
  auto owner = rt.spawn("owner", [gate] {
    weft::TaskGroup<> g("request-9");
    g.spawn("fetch", [gate]() mutable { (void)gate.recv(); });
    g.wait();
  });
  const std::string ol = parked_line(rt, "owner");
  CAPTURE(ol);
  CHECK(has(ol, "wait for the children of weft::TaskGroup 0x"));
  CHECK(has(ol, " \"request-9\""));
  const std::string cl = parked_line(rt, "request-9/fetch");
  CAPTURE(cl);
  CHECK(has(cl, "recv on channel \"gate\""));
  CHECK(has(cl, "; spawned by fiber "));
  CHECK(has(cl, " \"owner\""));
  gate.close();
  owner.join();
}

TEST_CASE("dump: running fibers show their worker; queued tasks are counted, not listed" *
          doctest::timeout(60)) {
  weft::Runtime rt({.workers = 1});
  std::atomic<bool> release{false};
  std::atomic<bool> spawned{false};
  std::atomic<weft::FiberId> spinner_id{0};
  auto spinner = rt.spawn([&] {
    spinner_id = weft::this_fiber::id();
    // Three tasks queued behind us on the one worker; they cannot start
    // while we spin.
    for (int i = 0; i < 3; ++i) weft::go("queued", [] {}).detach();
    spawned = true;
    while (!release.load()) {
    }
  });
  spin_until([&] { return spawned.load(); });
  const std::string dump = rt.dump();
  CAPTURE(dump);
  // Never parked, unnamed: listed by its worker, id only.
  CHECK(has(dump, "worker 0: running fiber " + std::to_string(spinner_id.load()) + ", 3 queued"));
  CHECK(has(dump, "fiber " + std::to_string(spinner_id.load()) + " [running on worker 0]"));
  CHECK_FALSE(has(dump, "\"queued\""));  // never started: not listed
  release = true;
  spinner.join();

  // A named running fiber is listed with its name and spawner.
  release = false;
  spawned = false;
  auto named = rt.spawn("busy", [&] {
    spawned = true;
    while (!release.load()) {
    }
  });
  spin_until([&] { return spawned.load(); });
  const std::string d2 = rt.dump();
  CAPTURE(d2);
  CHECK(has(line_of(d2, "busy"), "[running on worker 0]; spawned by a plain thread"));
  release = true;
  named.join();
}

TEST_CASE("deadlock: the report uses the dump's lines and names the fiber holding a mutex" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Mutex m;
    std::atomic<weft::FiberId> holder_id{0};
    auto msg = deadlock_message(rt, [&] {
      weft::Channel<int> never(0, "never");
      auto holder = weft::go("holder", [&, never]() mutable {
        std::lock_guard<weft::Mutex> g(m);
        holder_id = weft::this_fiber::id();
        (void)never.recv();  // nobody sends: holds the mutex forever
      });
      while (holder_id.load() == 0) weft::this_fiber::yield();
      weft::this_fiber::set_name("main");
      std::lock_guard<weft::Mutex> g(m);  // parks for good
    });
    REQUIRE(msg.has_value());
    CAPTURE(*msg);
    CHECK(has(*msg, "\"holder\" [parked "));
    CHECK(has(*msg, "recv on channel \"never\""));
    CHECK(has(*msg, "\"main\" [parked "));
    CHECK(has(*msg, "held by fiber " + std::to_string(holder_id.load()) + " \"holder\""));
  }
}

TEST_CASE("dump: Options::dump_signal writes the dump to stderr when the signal arrives" *
          doctest::timeout(60)) {
  CHECK_THROWS_AS(weft::Runtime({.workers = 1, .dump_signal = SIGSEGV}), std::invalid_argument);
  CHECK_THROWS_AS(weft::Runtime({.workers = 1, .dump_signal = SIGKILL}), std::invalid_argument);
  CHECK_THROWS_AS(weft::Runtime({.workers = 1, .dump_signal = -3}), std::invalid_argument);

  std::string captured;
  {
    weft::Runtime rt({.workers = 2, .dump_signal = SIGUSR1});
    weft::Channel<int> jobs(0, "signal-jobs");
    auto r = rt.spawn("signalled", [jobs]() mutable { (void)jobs.recv(); });
    (void)parked_line(rt, "signalled");
    // stderr into a pipe while the dump is written.
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const int saved = ::dup(2);
    ::dup2(fds[1], 2);
    ::raise(SIGUSR1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!has(captured, "signal-jobs") && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, 100) == 1) {
        char buf[4096];
        const ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n > 0) captured.append(buf, static_cast<std::size_t>(n));
      }
    }
    ::dup2(saved, 2);
    ::close(saved);
    ::close(fds[0]);
    ::close(fds[1]);
    jobs.close();
    r.join();
  }
  CAPTURE(captured);
  CHECK(has(captured, "weft: dump on signal " + std::to_string(SIGUSR1)));
  CHECK(has(captured, "weft runtime: 2 workers"));
  CHECK(has(captured, "\"signalled\" [parked "));
  CHECK(has(captured, "recv on channel \"signal-jobs\""));
  // The runtime is gone: the previous disposition (the default) is back.
  struct sigaction now = {};
  ::sigaction(SIGUSR1, nullptr, &now);
  CHECK((now.sa_handler == SIG_DFL));
}
