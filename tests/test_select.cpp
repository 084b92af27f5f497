// select: random and priority choice, default, send cases, losers leave no
// trace on their channels, closed channels, plain threads, and stress.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "support.hpp"
#include "sync_support.hpp"

using weft_test::Actor;
using weft_test::k_sides;
using weft_test::k_worker_counts;
using weft_test::scaled;
using weft_test::Side;
using weft_test::side_name;
using weft_test::spin_until;
using weft_test::waiting_receivers;
using weft_test::waiting_senders;

namespace {

struct RandomChoiceCounts {
  int first = 0, second = 0, mismatched = 0, wrong_value = 0;
};

// 10,000 selects between two buffered channels that always hold a value.
RandomChoiceCounts random_choice_rounds() {
  weft::Channel<int> a(1, "a"), b(1, "b");
  CHECK(a.try_send(1));
  CHECK(b.try_send(2));
  RandomChoiceCounts c;
  for (int round = 0; round < 10'000; ++round) {
    int handler = -1;
    const std::size_t idx = weft::select(weft::on_recv(a,
                                                       [&](std::optional<int> v) {
                                                         handler = 0;
                                                         c.wrong_value += v != std::optional<int>(1);
                                                       }),
                                         weft::on_recv(b, [&](std::optional<int> v) {
                                           handler = 1;
                                           c.wrong_value += v != std::optional<int>(2);
                                         }));
    c.mismatched += static_cast<int>(idx) != handler;
    if (idx == 0) {
      ++c.first;
      c.wrong_value += !a.try_send(1);
    } else {
      ++c.second;
      c.wrong_value += !b.try_send(2);
    }
    c.wrong_value += a.size() != 1 || b.size() != 1;
  }
  return c;
}

}  // namespace

TEST_CASE("select: chooses uniformly at random between two ready cases" * doctest::timeout(300)) {
  auto check = [](const RandomChoiceCounts& c) {
    CHECK(c.first + c.second == 10'000);
    CHECK(c.first >= 4'000);  // 40-60 %: about 20 standard deviations of slack
    CHECK(c.first <= 6'000);
    CHECK(c.second >= 4'000);
    CHECK(c.second <= 6'000);
    CHECK(c.mismatched == 0);
    CHECK(c.wrong_value == 0);
  };
  SUBCASE("from a plain thread") { check(random_choice_rounds()); }
  SUBCASE("from a fiber") {
    for (std::size_t workers : k_worker_counts) {
      CAPTURE(workers);
      weft::Runtime rt({.workers = workers});
      check(rt.block_on([] { return random_choice_rounds(); }));
    }
  }
}

TEST_CASE("select: priority mode always takes the first ready case") {
  auto body = [] {
    weft::Channel<int> a(1), b(1), c(1);
    int not_first = 0, wrong = 0;
    for (int round = 0; round < 1'000; ++round) {
      // Top each channel up: after the first round only `a` has room (the
      // select takes from `a` alone), so the other sends may find it full.
      CHECK(a.try_send(1));
      (void)b.try_send(2);
      (void)c.try_send(3);
      const std::size_t idx =
          weft::select(weft::priority, weft::on_recv(a, [&](std::optional<int> v) { wrong += v != 1; }),
                       weft::on_recv(b, [&](std::optional<int>) { ++wrong; }),
                       weft::on_recv(c, [&](std::optional<int>) { ++wrong; }));
      not_first += idx != 0;
    }
    // The first case not ready: the second ready one, never the third.
    while (a.try_recv()) {
    }
    int second = 0;
    for (int round = 0; round < 1'000; ++round) {
      (void)b.try_send(2);  // may still be full from the rounds above
      (void)c.try_send(3);  // full after the first round, as above
      const std::size_t idx =
          weft::select(weft::priority, weft::on_recv(a, [&](std::optional<int>) { ++wrong; }),
                       weft::on_recv(b, [&](std::optional<int> v) { wrong += v != 2; }),
                       weft::on_recv(c, [&](std::optional<int>) { ++wrong; }));
      second += idx == 1;
    }
    // A ready case wins over the default, also in priority mode.
    CHECK(a.try_send(1));
    bool default_ran = false;
    const std::size_t with_default =
        weft::select(weft::priority, weft::on_default([&] { default_ran = true; }),
                     weft::on_recv(a, [&](std::optional<int> v) { wrong += v != 1; }));
    return not_first == 0 && second == 1'000 && wrong == 0 && with_default == 1 && !default_ran;
  };
  CHECK(body());
  weft::Runtime rt({.workers = 2});
  CHECK(rt.block_on(body));
}

TEST_CASE("select: the default case runs when nothing is ready, and takes nothing") {
  auto body = [] {
    int failures = 0;
    weft::Channel<int> empty(2), unbuffered, full(1);
    CHECK(full.try_send(5));
    bool recv_ran = false, send_ran = false, default_ran = false;
    const std::size_t idx = weft::select(weft::on_recv(empty, [&](std::optional<int>) { recv_ran = true; }),
                                         weft::on_recv(unbuffered, [&](std::optional<int>) { recv_ran = true; }),
                                         weft::on_send(full, 6, [&](bool) { send_ran = true; }),
                                         weft::on_send(unbuffered, 7, [&](bool) { send_ran = true; }),
                                         weft::on_default([&] { default_ran = true; }));
    failures += idx != 4;
    failures += recv_ran || send_ran || !default_ran;
    // Nothing was sent, taken, or left registered on the channels.
    failures += full.size() != 1 || empty.size() != 0;
    failures += full.try_recv() != std::optional<int>(5);
    failures += waiting_receivers(empty) != 0 || waiting_receivers(unbuffered) != 0;
    failures += waiting_senders(full) != 0 || waiting_senders(unbuffered) != 0;
    failures += unbuffered.try_send(1);      // no leftover receiver takes it
    failures += unbuffered.try_recv().has_value();  // no leftover sender offers 7
    // The default may sit anywhere in the argument list.
    default_ran = false;
    const std::size_t first = weft::select(weft::on_default([&] { default_ran = true; }),
                                           weft::on_recv(empty, [&](std::optional<int>) { recv_ran = true; }));
    failures += first != 0 || !default_ran || recv_ran;
    // A select with only a default case.
    int only = 0;
    failures += weft::select(weft::on_default([&] { ++only; })) != 0 || only != 1;
    // A ready case wins over the default.
    CHECK(empty.try_send(3));
    default_ran = false;
    int got = 0;
    const std::size_t ready = weft::select(weft::on_recv(empty, [&](std::optional<int> v) { got = v.value_or(-1); }),
                                           weft::on_default([&] { default_ran = true; }));
    failures += ready != 0 || got != 3 || default_ran;
    return failures;
  };
  CHECK(body() == 0);
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    CHECK(rt.block_on(body) == 0);
  }
}

TEST_CASE("select: polling with a default case never loses a value" * doctest::timeout(300)) {
  const int n = static_cast<int>(scaled(5'000));
  for (std::size_t workers : k_worker_counts) {
    for (std::size_t capacity : {std::size_t{0}, std::size_t{2}}) {
      CAPTURE(workers);
      CAPTURE(capacity);
      weft::Runtime rt({.workers = workers});
      weft::Channel<int> ch(capacity);
      Actor producer(rt, Side::fiber, [&] {
        for (int i = 1; i <= n; ++i) ch.send(i);
        ch.close();
      });
      long long sum = 0;
      int count = 0, unordered = 0, last = 0, defaults = 0;
      Actor consumer(rt, Side::fiber, [&] {
        bool open = true;
        while (open) {
          weft::select(weft::on_recv(ch,
                                     [&](std::optional<int> v) {
                                       if (!v) {
                                         open = false;
                                         return;
                                       }
                                       unordered += *v != last + 1;
                                       last = *v;
                                       sum += *v;
                                       ++count;
                                     }),
                       weft::on_default([&] {
                         ++defaults;
                         weft::this_fiber::yield();
                       }));
        }
      });
      producer.join();
      consumer.join();
      CHECK(count == n);
      CHECK(sum == static_cast<long long>(n) * (n + 1) / 2);
      CHECK(unordered == 0);
    }
  }
}

TEST_CASE("select: send cases deliver to a buffer, to a parked receiver, and report a closed channel" *
          doctest::timeout(300)) {
  // Room in a buffer.
  {
    weft::Channel<int> out(1);
    int result = -1;
    CHECK(weft::select(weft::on_send(out, 7, [&](bool sent) { result = sent; })) == 0);
    CHECK(result == 1);
    CHECK(out.try_recv() == std::optional<int>(7));
    // Handler with no argument, and no handler at all.
    bool ran = false;
    CHECK(weft::select(weft::on_send(out, 8, [&] { ran = true; })) == 0);
    CHECK(ran);
    CHECK(out.try_recv() == std::optional<int>(8));
    CHECK(weft::select(weft::on_send(out, 9)) == 0);
    CHECK(out.try_recv() == std::optional<int>(9));
  }
  // A move-only value.
  {
    weft::Channel<std::unique_ptr<int>> out(1);
    CHECK(weft::select(weft::on_send(out, std::make_unique<int>(3))) == 0);
    auto v = out.try_recv();
    REQUIRE(v.has_value());
    REQUIRE(*v != nullptr);
    CHECK(**v == 3);
  }
  // A closed channel: the send case is ready and reports false.
  {
    weft::Channel<int> closed(0);
    closed.close();
    int result = -1;
    CHECK(weft::select(weft::on_send(closed, 1, [&](bool sent) { result = sent; })) == 0);
    CHECK(result == 0);
  }
  // A dropping buffer's send case is always ready.
  {
    weft::Channel<int> drop(weft::dropping(1));
    CHECK(drop.try_send(1));
    bool default_ran = false;
    CHECK(weft::select(weft::on_send(drop, 2), weft::on_default([&] { default_ran = true; })) == 0);
    CHECK_FALSE(default_ran);
    CHECK(drop.dropped() == 1);
  }
  // A parked receiver, on a fiber or a plain thread; the select on the other side.
  for (std::size_t workers : k_worker_counts) {
    for (Side recv_side : k_sides) {
      for (Side select_side : k_sides) {
        CAPTURE(workers);
        CAPTURE(side_name(recv_side));
        CAPTURE(side_name(select_side));
        weft::Runtime rt({.workers = workers});
        weft::Channel<int> out(0, "out"), unused(0, "unused");
        std::atomic<int> got{-1}, fired{-1}, sent_flag{-1};
        Actor receiver(rt, recv_side, [&] { got.store(out.recv().value_or(-2)); });
        spin_until([&] { return waiting_receivers(out) == 1; });
        Actor selector(rt, select_side, [&] {
          fired.store(static_cast<int>(
              weft::select(weft::on_recv(unused, [&](std::optional<int>) { sent_flag.store(-5); }),
                           weft::on_send(out, 42, [&](bool sent) { sent_flag.store(sent); }))));
        });
        receiver.join();
        selector.join();
        CHECK(got.load() == 42);
        CHECK(fired.load() == 1);
        CHECK(sent_flag.load() == 1);
        CHECK(waiting_receivers(unused) == 0);
        CHECK(waiting_senders(out) == 0);
      }
    }
  }
}

TEST_CASE("select: a send case that does not commit destroys its value and delivers nothing") {
  auto token = std::make_shared<int>(5);
  weft::Channel<std::shared_ptr<int>> out(0, "out");  // nobody receives: never ready
  weft::Channel<int> in(1, "in");
  CHECK(in.try_send(1));
  int got = 0;
  const std::size_t idx = weft::select(weft::on_send(out, token),
                                       weft::on_recv(in, [&](std::optional<int> v) { got = v.value_or(-1); }));
  CHECK(idx == 1);
  CHECK(got == 1);
  CHECK(token.use_count() == 1);  // the case's copy died with the case
  CHECK_FALSE(out.try_recv().has_value());
  CHECK(waiting_senders(out) == 0);
  // A closed channel: the case commits with false and its value is destroyed.
  out.close();
  int sent = -1;
  CHECK(weft::select(weft::on_send(out, token, [&](bool ok) { sent = ok; })) == 0);
  CHECK(sent == 0);
  CHECK(token.use_count() == 1);
}

TEST_CASE("select: a parked select commits exactly one case and leaves the other channels' wait lists empty" *
          doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side select_side : k_sides) {
      for (Side waker_side : k_sides) {
        for (int waker = 0; waker < 3; ++waker) {
          CAPTURE(workers);
          CAPTURE(side_name(select_side));
          CAPTURE(side_name(waker_side));
          CAPTURE(waker);
          weft::Runtime rt({.workers = workers});
          weft::Channel<int> a(0, "a"), b(0, "b"), c(0, "c");
          std::atomic<int> fired{-1}, value{-1}, handlers{0};
          std::atomic<bool> returned{false};
          Actor selector(rt, select_side, [&] {
            const std::size_t idx = weft::select(weft::on_recv(a,
                                                               [&](std::optional<int> v) {
                                                                 value.store(v.value_or(-2));
                                                                 handlers.fetch_add(1);
                                                               }),
                                                 weft::on_recv(b,
                                                               [&](std::optional<int> v) {
                                                                 value.store(v.value_or(-2));
                                                                 handlers.fetch_add(1);
                                                               }),
                                                 weft::on_send(c, 30, [&](bool sent) {
                                                   value.store(sent ? 30 : -3);
                                                   handlers.fetch_add(1);
                                                 }));
            fired.store(static_cast<int>(idx));
            returned.store(true);
          });
          // Parked on all three channels at once.
          spin_until([&] {
            return waiting_receivers(a) == 1 && waiting_receivers(b) == 1 && waiting_senders(c) == 1;
          });
          CHECK_FALSE(returned.load());
          std::atomic<int> delivered{-1};
          Actor wake(rt, waker_side, [&] {
            if (waker == 0) delivered.store(a.send(10) ? 10 : -1);
            if (waker == 1) delivered.store(b.send(20) ? 20 : -1);
            if (waker == 2) delivered.store(c.recv().value_or(-1));
          });
          wake.join();
          selector.join();
          const int expected = (waker + 1) * 10;
          CHECK(fired.load() == waker);
          CHECK(value.load() == expected);
          CHECK(delivered.load() == expected);
          CHECK(handlers.load() == 1);
          // No registration is left behind on any of the three channels...
          CHECK(waiting_receivers(a) == 0);
          CHECK(waiting_receivers(b) == 0);
          CHECK(waiting_senders(c) == 0);
          CHECK(waiting_senders(a) == 0);
          CHECK(waiting_senders(b) == 0);
          CHECK(waiting_receivers(c) == 0);
          // ... so nothing answers a later non-blocking operation.
          CHECK_FALSE(a.try_send(1));
          CHECK_FALSE(b.try_send(2));
          CHECK_FALSE(c.try_recv().has_value());
        }
      }
    }
  }
}

TEST_CASE("select: a receive case on a closed channel gets nullopt" * doctest::timeout(120)) {
  // Closed before the select: ready at once.
  {
    weft::Channel<int> closed(1), open(1);
    closed.close();
    bool got_nullopt = false;
    const std::size_t idx =
        weft::select(weft::on_recv(open, [&](std::optional<int>) {}),
                     weft::on_recv(closed, [&](std::optional<int> v) { got_nullopt = !v.has_value(); }));
    CHECK(idx == 1);
    CHECK(got_nullopt);
  }
  // A closed channel still delivers what it buffered first.
  {
    weft::Channel<int> ch(2);
    CHECK(ch.try_send(4));
    ch.close();
    std::optional<int> first, second;
    weft::select(weft::on_recv(ch, [&](std::optional<int> v) { first = v; }));
    weft::select(weft::on_recv(ch, [&](std::optional<int> v) { second = v; }));
    CHECK(first == std::optional<int>(4));
    CHECK_FALSE(second.has_value());
  }
  // Closed while the select is parked.
  for (std::size_t workers : k_worker_counts) {
    for (Side side : k_sides) {
      CAPTURE(workers);
      CAPTURE(side_name(side));
      weft::Runtime rt({.workers = workers});
      weft::Channel<int> a(0, "a"), b(0, "b");
      std::atomic<int> fired{-1}, outcome{0};
      Actor selector(rt, side, [&] {
        fired.store(static_cast<int>(
            weft::select(weft::on_recv(a, [&](std::optional<int> v) { outcome.store(v ? 1 : 2); }),
                         weft::on_recv(b, [&](std::optional<int> v) { outcome.store(v ? 3 : 4); }))));
      });
      spin_until([&] { return waiting_receivers(a) == 1 && waiting_receivers(b) == 1; });
      b.close();
      selector.join();
      CHECK(fired.load() == 1);
      CHECK(outcome.load() == 4);
      CHECK(waiting_receivers(a) == 0);
      CHECK_FALSE(a.try_send(1));
    }
  }
}

TEST_CASE("select: from a plain thread, without a runtime" * doctest::timeout(120)) {
  weft::Channel<int> a(0, "a"), b(0, "b");
  const int n = 2'000;
  std::thread producer([&] {
    for (int i = 1; i <= n; ++i) (i % 2 == 0 ? a : b).send(i);
    a.close();
    b.close();
  });
  long long sum = 0;
  int count = 0;
  bool a_open = true, b_open = true;
  while (a_open && b_open) {
    weft::select(weft::on_recv(a,
                               [&](std::optional<int> v) {
                                 if (v) {
                                   sum += *v;
                                   ++count;
                                 } else {
                                   a_open = false;
                                 }
                               }),
                 weft::on_recv(b, [&](std::optional<int> v) {
                   if (v) {
                     sum += *v;
                     ++count;
                   } else {
                     b_open = false;
                   }
                 }));
  }
  producer.join();
  CHECK(count == n);
  CHECK(sum == static_cast<long long>(n) * (n + 1) / 2);
}

TEST_CASE("select: a select parked in a fiber is woken by a plain thread's send" * doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Channel<int> a(0, "a"), b(0, "b");
    std::atomic<bool> select_started{false};
    weft::ExternalWaker waker;  // the main thread wakes the fiber below from outside weft
    auto h = rt.spawn([&] {
      int got = 0;
      select_started.store(true);
      const std::size_t idx = weft::select(weft::on_recv(a, [&](std::optional<int> v) { got = v.value_or(-1); }),
                                           weft::on_recv(b, [&](std::optional<int> v) { got = -v.value_or(1); }));
      return static_cast<int>(idx) * 1000 + got;
    });
    spin_until([&] { return select_started.load(); });
    // Parked on both channels before the send, so the send is what wakes it.
    spin_until([&] { return waiting_receivers(a) == 1 && waiting_receivers(b) == 1; });
    CHECK(a.send(5));
    CHECK(h.join() == 5);
    CHECK(waiting_receivers(b) == 0);
  }
}

TEST_CASE("select: the same channel in two cases commits once" * doctest::timeout(120)) {
  weft::Channel<int> ch(2);
  CHECK(ch.try_send(1));
  int handlers = 0;
  weft::select(weft::on_recv(ch, [&](std::optional<int>) { ++handlers; }),
               weft::on_recv(ch, [&](std::optional<int>) { ++handlers; }));
  CHECK(handlers == 1);
  CHECK(ch.size() == 0);
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Channel<int> u(0, "u");
    std::atomic<int> calls{0}, value{0};
    auto h = rt.spawn([&] {
      weft::select(weft::on_recv(u,
                                 [&](std::optional<int> v) {
                                   calls.fetch_add(1);
                                   value.store(v.value_or(-1));
                                 }),
                   weft::on_recv(u, [&](std::optional<int> v) {
                     calls.fetch_add(1);
                     value.store(v.value_or(-1));
                   }));
    });
    spin_until([&] { return waiting_receivers(u) >= 1; });
    CHECK(u.send(9));
    h.join();
    CHECK(calls.load() == 1);
    CHECK(value.load() == 9);
    CHECK(waiting_receivers(u) == 0);
    CHECK_FALSE(u.try_send(1));
  }
}

TEST_CASE("select: many fibers selecting between two fed channels receive every message exactly once" *
          doctest::timeout(900)) {
  constexpr int k_producers_per_channel = 2;
  constexpr int k_consumer_fibers = 4;
  const std::uint64_t per_producer = scaled(5'000);
  const std::uint64_t total = 2 * k_producers_per_channel * per_producer;
  for (std::size_t workers : k_worker_counts) {
    for (std::size_t capacity : {std::size_t{0}, std::size_t{4}}) {
      for (bool prio : {false, true}) {
        CAPTURE(workers);
        CAPTURE(capacity);
        CAPTURE(prio);
        weft::Runtime rt({.workers = workers});
        weft::Channel<std::uint64_t> chans[2] = {weft::Channel<std::uint64_t>(capacity, "a"),
                                                 weft::Channel<std::uint64_t>(capacity, "b")};
        std::vector<std::atomic<std::uint8_t>> seen(total);
        std::atomic<std::uint64_t> count{0}, sum{0}, bad_ids{0};
        std::atomic<int> producers_left[2] = {k_producers_per_channel, k_producers_per_channel};
        std::vector<Actor> actors;
        for (int c = 0; c < 2; ++c) {
          for (int p = 0; p < k_producers_per_channel; ++p) {
            actors.emplace_back(rt, Side::fiber, [&, c, p] {
              const std::uint64_t base = (static_cast<std::uint64_t>(c) * k_producers_per_channel + p) * per_producer;
              for (std::uint64_t i = 0; i < per_producer; ++i) chans[c].send(base + i);
              if (producers_left[c].fetch_sub(1) == 1) chans[c].close();
            });
          }
        }
        auto consume = [&] {
          bool open[2] = {true, true};
          std::uint64_t my_count = 0, my_sum = 0;
          auto take = [&](int c, std::optional<std::uint64_t> v) {
            if (!v) {
              open[c] = false;
              return;
            }
            if (*v >= total) {
              bad_ids.fetch_add(1);
              return;
            }
            seen[*v].fetch_add(1, std::memory_order_relaxed);
            ++my_count;
            my_sum += *v;
          };
          while (open[0] && open[1]) {
            auto h0 = [&](std::optional<std::uint64_t> v) { take(0, v); };
            auto h1 = [&](std::optional<std::uint64_t> v) { take(1, v); };
            if (prio) {
              weft::select(weft::priority, weft::on_recv(chans[0], h0), weft::on_recv(chans[1], h1));
            } else {
              weft::select(weft::on_recv(chans[0], h0), weft::on_recv(chans[1], h1));
            }
          }
          for (int c = 0; c < 2; ++c) {
            while (open[c]) take(c, chans[c].recv());
          }
          count += my_count;
          sum += my_sum;
        };
        for (int k = 0; k < k_consumer_fibers; ++k) actors.emplace_back(rt, Side::fiber, consume);
        actors.emplace_back(rt, Side::thread, consume);
        for (auto& a : actors) a.join();
        std::uint64_t not_once = 0;
        for (auto& s : seen) not_once += s.load() != 1;
        CHECK(not_once == 0);
        CHECK(bad_ids.load() == 0);
        CHECK(count.load() == total);
        CHECK(sum.load() == total * (total - 1) / 2);
      }
    }
  }
}

TEST_CASE("select: producers sending through select deliver every message exactly once" *
          doctest::timeout(900)) {
  constexpr int k_producers = 4;
  constexpr int k_consumers_per_channel = 2;
  const std::uint64_t per_producer = scaled(5'000);
  const std::uint64_t total = k_producers * per_producer;
  for (std::size_t workers : k_worker_counts) {
    for (std::size_t capacity : {std::size_t{0}, std::size_t{4}}) {
      CAPTURE(workers);
      CAPTURE(capacity);
      weft::Runtime rt({.workers = workers});
      weft::Channel<std::uint64_t> a(capacity, "a"), b(capacity, "b");
      std::vector<std::atomic<std::uint8_t>> seen(total);
      std::atomic<std::uint64_t> count{0}, sum{0}, send_failures{0};
      std::atomic<std::uint64_t> via[2] = {0, 0};
      std::atomic<int> producers_left{k_producers};
      std::vector<Actor> actors;
      for (int p = 0; p < k_producers; ++p) {
        actors.emplace_back(rt, p == 0 ? Side::thread : Side::fiber, [&, p] {
          for (std::uint64_t i = 0; i < per_producer; ++i) {
            const std::uint64_t id = p * per_producer + i;
            const std::size_t idx = weft::select(weft::on_send(a, id, [&](bool ok) { send_failures += !ok; }),
                                                 weft::on_send(b, id, [&](bool ok) { send_failures += !ok; }));
            via[idx].fetch_add(1);
          }
          if (producers_left.fetch_sub(1) == 1) {
            a.close();
            b.close();
          }
        });
      }
      for (weft::Channel<std::uint64_t>* ch : {&a, &b}) {
        for (int k = 0; k < k_consumers_per_channel; ++k) {
          actors.emplace_back(rt, Side::fiber, [&, ch] {
            std::uint64_t my_count = 0, my_sum = 0;
            for (std::uint64_t v : *ch) {
              if (v < total) seen[v].fetch_add(1, std::memory_order_relaxed);
              ++my_count;
              my_sum += v;
            }
            count += my_count;
            sum += my_sum;
          });
        }
      }
      for (auto& x : actors) x.join();
      std::uint64_t not_once = 0;
      for (auto& s : seen) not_once += s.load() != 1;
      CHECK(not_once == 0);
      CHECK(send_failures.load() == 0);
      CHECK(count.load() == total);
      CHECK(sum.load() == total * (total - 1) / 2);
      CHECK(via[0].load() + via[1].load() == total);
      CHECK(via[0].load() > 0);  // both channels were used
      CHECK(via[1].load() > 0);
    }
  }
}
