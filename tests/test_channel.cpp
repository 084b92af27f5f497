// Channels: FIFO order, rendezvous, buffers (blocking, dropping, sliding),
// close, move-only values, range-for, non-blocking calls, handles, and every
// operation from fibers and from plain threads.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
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

TEST_CASE("channel: values from each sender arrive in the order sent" * doctest::timeout(600)) {
  constexpr int k_senders = 3;
  const std::int64_t per_sender = static_cast<std::int64_t>(scaled(4'000));
  for (std::size_t workers : k_worker_counts) {
    for (std::size_t capacity : {std::size_t{0}, std::size_t{1}, std::size_t{16}}) {
      for (Side send_side : k_sides) {
        for (Side recv_side : k_sides) {
          CAPTURE(workers);
          CAPTURE(capacity);
          CAPTURE(side_name(send_side));
          CAPTURE(side_name(recv_side));
          weft::Runtime rt({.workers = workers});
          weft::Channel<std::int64_t> ch(capacity, "fifo");
          std::atomic<int> senders_left{k_senders};
          std::vector<Actor> actors;
          for (int s = 0; s < k_senders; ++s) {
            actors.emplace_back(rt, send_side, [&, s] {
              for (std::int64_t i = 0; i < per_sender; ++i) {
                if (!ch.send(s * per_sender + i)) return;
              }
              if (senders_left.fetch_sub(1) == 1) ch.close();
            });
          }
          std::vector<std::int64_t> next(k_senders, 0);
          std::int64_t received = 0, out_of_order = 0;
          actors.emplace_back(rt, recv_side, [&] {
            while (auto v = ch.recv()) {
              const auto s = static_cast<std::size_t>(*v / per_sender);
              const std::int64_t i = *v % per_sender;
              if (s >= next.size() || i != next[s]) {
                ++out_of_order;
              } else {
                ++next[s];
              }
              ++received;
            }
          });
          for (auto& a : actors) a.join();
          CHECK(out_of_order == 0);
          CHECK(received == k_senders * per_sender);
          for (int s = 0; s < k_senders; ++s) CHECK(next[static_cast<std::size_t>(s)] == per_sender);
        }
      }
    }
  }
}

TEST_CASE("channel: an unbuffered send returns only after a receiver has taken the value" * doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side send_side : k_sides) {
      for (Side recv_side : k_sides) {
        CAPTURE(workers);
        CAPTURE(side_name(send_side));
        CAPTURE(side_name(recv_side));
        weft::Runtime rt({.workers = workers});
        for (int round = 0; round < 20; ++round) {
          CAPTURE(round);
          weft::Channel<int> ch;
          std::atomic<bool> sender_started{false}, receiver_committed{false}, send_returned{false};
          std::atomic<bool> send_ok{false}, returned_before_recv{false}, returned_while_waiting{false};
          std::atomic<int> got{-1};
          Actor sender(rt, send_side, [&] {
            sender_started.store(true);
            const bool ok = ch.send(round + 100);
            // The receiver sets receiver_committed just before it calls recv(),
            // after making sure this send is already waiting.
            if (!receiver_committed.load()) returned_before_recv.store(true);
            send_ok.store(ok);
            send_returned.store(true);
          });
          Actor receiver(rt, recv_side, [&] {
            spin_until([&] { return sender_started.load(); });
            for (int i = 0; i < 100; ++i) weft_test::pause();
            // Either the sender parks on the channel (right) or its send
            // returns with nobody receiving (wrong).
            spin_until([&] { return waiting_senders(ch) == 1 || send_returned.load(); });
            if (send_returned.load()) returned_while_waiting.store(true);
            for (int i = 0; i < 100; ++i) weft_test::pause();
            if (send_returned.load()) returned_while_waiting.store(true);
            receiver_committed.store(true);
            auto v = ch.recv();
            got.store(v.value_or(-1));
          });
          sender.join();
          receiver.join();
          CHECK(send_ok.load());
          CHECK_FALSE(returned_while_waiting.load());
          CHECK_FALSE(returned_before_recv.load());
          CHECK(got.load() == round + 100);
          CHECK(waiting_senders(ch) == 0);
          CHECK(waiting_receivers(ch) == 0);
        }
      }
    }
  }
}

TEST_CASE("channel: a receive waits until a sender provides a value" * doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side recv_side : k_sides) {
      CAPTURE(workers);
      CAPTURE(side_name(recv_side));
      weft::Runtime rt({.workers = workers});
      for (std::size_t capacity : {std::size_t{0}, std::size_t{4}}) {
        CAPTURE(capacity);
        weft::Channel<int> ch(capacity);
        std::atomic<bool> recv_returned{false};
        std::atomic<int> got{-1};
        Actor receiver(rt, recv_side, [&] {
          got.store(ch.recv().value_or(-2));
          recv_returned.store(true);
        });
        spin_until([&] { return waiting_receivers(ch) == 1 || recv_returned.load(); });
        CHECK_FALSE(recv_returned.load());
        CHECK(ch.send(77));
        receiver.join();
        CHECK(got.load() == 77);
        CHECK(ch.size() == 0);
      }
    }
  }
}

TEST_CASE("channel: a buffer of N takes N values without a receiver, then makes senders wait" *
          doctest::timeout(300)) {
  {
    weft::Channel<int> ch(4, "buf");
    CHECK(ch.capacity() == 4);
    CHECK(ch.policy() == weft::BufferPolicy::block);
    for (int i = 0; i < 4; ++i) CHECK(ch.try_send(i));
    CHECK(ch.size() == 4);
    CHECK_FALSE(ch.try_send(99));
    CHECK(ch.size() == 4);
    CHECK(ch.dropped() == 0);
    for (int i = 0; i < 4; ++i) CHECK(ch.try_recv() == std::optional<int>(i));
    CHECK_FALSE(ch.try_recv().has_value());
    CHECK(ch.size() == 0);
  }
  {
    weft::Channel<int> ch(weft::buffered(2));
    CHECK(ch.capacity() == 2);
    CHECK(ch.send(1));
    CHECK(ch.send(2));  // from a plain thread: does not block while there is room
    CHECK(ch.size() == 2);
    CHECK_FALSE(ch.try_send(3));
  }
  for (std::size_t workers : k_worker_counts) {
    for (Side send_side : k_sides) {
      CAPTURE(workers);
      CAPTURE(side_name(send_side));
      weft::Runtime rt({.workers = workers});
      weft::Channel<int> ch(4);
      std::atomic<int> sent{0};
      std::atomic<bool> fifth_returned{false};
      Actor sender(rt, send_side, [&] {
        for (int i = 0; i < 4; ++i) {
          ch.send(i);
          sent.fetch_add(1);
        }
        ch.send(4);  // the buffer is full: waits for room
        fifth_returned.store(true);
      });
      spin_until([&] { return sent.load() == 4 && (waiting_senders(ch) == 1 || fifth_returned.load()); });
      CHECK_FALSE(fifth_returned.load());
      CHECK(ch.size() == 4);
      CHECK(ch.recv() == std::optional<int>(0));
      sender.join();
      CHECK(fifth_returned.load());
      CHECK(ch.size() == 4);
      for (int i = 1; i <= 4; ++i) CHECK(ch.recv() == std::optional<int>(i));
      CHECK(ch.size() == 0);
    }
  }
}

TEST_CASE("channel: dropping(N) keeps the first N values and counts the rest as dropped") {
  weft::Channel<int> ch(weft::dropping(3), "drop");
  CHECK(ch.policy() == weft::BufferPolicy::drop_newest);
  CHECK(ch.capacity() == 3);
  for (int i = 0; i < 10; ++i) CHECK(ch.send(i));  // never waits, always "accepted"
  CHECK(ch.size() == 3);
  CHECK(ch.dropped() == 7);
  CHECK(ch.try_send(10));  // a full dropping buffer still does not need waiting
  CHECK(ch.dropped() == 8);
  for (int i = 0; i < 3; ++i) CHECK(ch.recv() == std::optional<int>(i));
  CHECK_FALSE(ch.try_recv().has_value());
  // Room again: the next values are kept.
  CHECK(ch.send(20));
  CHECK(ch.try_recv() == std::optional<int>(20));
  CHECK(ch.dropped() == 8);
  // A discarded value is consumed (moved from), like an accepted one.
  weft::Channel<std::unique_ptr<int>> up(weft::dropping(1));
  auto first = std::make_unique<int>(1);
  auto second = std::make_unique<int>(2);
  CHECK(up.send(std::move(first)));
  CHECK(up.send(std::move(second)));
  CHECK(first == nullptr);
  CHECK(second == nullptr);
  CHECK(up.dropped() == 1);
  auto kept = up.recv();
  REQUIRE(kept.has_value());
  REQUIRE(*kept != nullptr);
  CHECK(**kept == 1);
}

TEST_CASE("channel: sliding(N) keeps the last N values and counts the rest as dropped") {
  weft::Channel<int> ch(weft::sliding(3), "slide");
  CHECK(ch.policy() == weft::BufferPolicy::drop_oldest);
  CHECK(ch.capacity() == 3);
  for (int i = 0; i < 10; ++i) CHECK(ch.send(i));
  CHECK(ch.size() == 3);
  CHECK(ch.dropped() == 7);
  CHECK(ch.try_send(10));
  CHECK(ch.dropped() == 8);
  for (int i = 8; i <= 10; ++i) CHECK(ch.recv() == std::optional<int>(i));
  CHECK_FALSE(ch.try_recv().has_value());
  weft::Channel<std::unique_ptr<int>> up(weft::sliding(1));
  CHECK(up.send(std::make_unique<int>(1)));
  CHECK(up.send(std::make_unique<int>(2)));
  CHECK(up.dropped() == 1);
  auto kept = up.recv();
  REQUIRE(kept.has_value());
  REQUIRE(*kept != nullptr);
  CHECK(**kept == 2);
}

TEST_CASE("channel: dropping and sliding buffers account for every value under concurrent senders" *
          doctest::timeout(300)) {
  constexpr int k_senders = 4;
  const int per_sender = static_cast<int>(scaled(5'000));
  for (std::size_t workers : k_worker_counts) {
    for (weft::ChannelBuffer buffer : {weft::dropping(8), weft::sliding(8)}) {
      CAPTURE(workers);
      CAPTURE(static_cast<int>(buffer.policy));
      weft::Runtime rt({.workers = workers});
      weft::Channel<int> ch(buffer);
      std::atomic<int> senders_left{k_senders};
      std::atomic<int> refused{0};
      std::vector<Actor> actors;
      for (int s = 0; s < k_senders; ++s) {
        actors.emplace_back(rt, s == 0 ? Side::thread : Side::fiber, [&, s] {
          for (int i = 0; i < per_sender; ++i) {
            if (!ch.send(s * per_sender + i)) refused.fetch_add(1);
            if (i % 64 == 0) weft_test::pause();
          }
          if (senders_left.fetch_sub(1) == 1) ch.close();
        });
      }
      std::vector<int> last(k_senders, -1);
      long long received = 0, out_of_order = 0;
      actors.emplace_back(rt, Side::fiber, [&] {
        for (int v : ch) {
          const auto s = static_cast<std::size_t>(v / per_sender);
          if (v % per_sender <= last[s]) ++out_of_order;  // still FIFO per sender, with gaps
          last[s] = v % per_sender;
          ++received;
          weft_test::pause();  // a slow receiver, so the buffer fills and discards
        }
      });
      for (auto& a : actors) a.join();
      CHECK(refused.load() == 0);
      CHECK(out_of_order == 0);
      CHECK(received + static_cast<long long>(ch.dropped()) == static_cast<long long>(k_senders) * per_sender);
      CHECK(ch.size() == 0);
    }
  }
}

TEST_CASE("channel: dropping(0) and sliding(0) throw std::invalid_argument") {
  CHECK_THROWS_AS(weft::Channel<int>(weft::dropping(0)), std::invalid_argument);
  CHECK_THROWS_AS(weft::Channel<int>(weft::sliding(0)), std::invalid_argument);
  CHECK_THROWS_AS(weft::Channel<int>(weft::dropping(0), "named"), std::invalid_argument);
  CHECK_NOTHROW(weft::Channel<int>(weft::buffered(0)));  // unbuffered
  CHECK_NOTHROW(weft::Channel<int>(weft::dropping(1)));
  CHECK_NOTHROW(weft::Channel<int>(weft::sliding(1)));
}

TEST_CASE("channel: close wakes every parked receiver with nullopt and every parked sender with false" *
          doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (std::size_t send_capacity : {std::size_t{0}, std::size_t{1}}) {
      CAPTURE(workers);
      CAPTURE(send_capacity);
      weft::Runtime rt({.workers = workers});
      // Receivers park on an empty channel; senders on one with no room
      // (unbuffered with no receiver, or a full buffer of 1).
      weft::Channel<int> rx(0, "rx");
      weft::Channel<std::unique_ptr<int>> tx(send_capacity, "tx");
      if (send_capacity == 1) REQUIRE(tx.try_send(std::make_unique<int>(-1)));
      constexpr int k_each = 4;  // per channel: 2 fibers and 2 plain threads
      std::atomic<int> receivers_nullopt{0}, receivers_value{0};
      std::atomic<int> senders_false{0}, senders_true{0}, values_kept{0};
      std::vector<Actor> actors;
      for (int k = 0; k < k_each; ++k) {
        const Side side = k % 2 == 0 ? Side::fiber : Side::thread;
        actors.emplace_back(rt, side, [&] {
          if (rx.recv().has_value()) {
            receivers_value.fetch_add(1);
          } else {
            receivers_nullopt.fetch_add(1);
          }
        });
        actors.emplace_back(rt, side, [&, k] {
          auto p = std::make_unique<int>(100 + k);
          if (tx.send(std::move(p))) {
            senders_true.fetch_add(1);
          } else {
            senders_false.fetch_add(1);
            if (p != nullptr && *p == 100 + k) values_kept.fetch_add(1);  // still ours
          }
        });
      }
      spin_until([&] {
        return waiting_receivers(rx) == static_cast<std::size_t>(k_each) &&
               waiting_senders(tx) == static_cast<std::size_t>(k_each);
      });
      CHECK(receivers_nullopt.load() + receivers_value.load() == 0);
      CHECK(senders_false.load() + senders_true.load() == 0);
      rx.close();
      tx.close();
      for (auto& a : actors) a.join();
      CHECK(receivers_nullopt.load() == k_each);
      CHECK(receivers_value.load() == 0);
      CHECK(senders_false.load() == k_each);
      CHECK(senders_true.load() == 0);
      CHECK(values_kept.load() == k_each);
      CHECK(waiting_receivers(rx) == 0);
      CHECK(waiting_senders(tx) == 0);
      // What was buffered before close is still there, then the end.
      if (send_capacity == 1) {
        auto v = tx.recv();
        REQUIRE(v.has_value());
        REQUIRE(*v != nullptr);
        CHECK(**v == -1);
      }
      CHECK_FALSE(tx.recv().has_value());
      CHECK_FALSE(rx.recv().has_value());
    }
  }
}

TEST_CASE("channel: send on a closed channel returns false and leaves the value untouched") {
  for (weft::ChannelBuffer buffer :
       {weft::buffered(0), weft::buffered(4), weft::dropping(2), weft::sliding(2)}) {
    CAPTURE(static_cast<int>(buffer.policy));
    CAPTURE(buffer.capacity);
    weft::Channel<std::unique_ptr<int>> ch(buffer);
    ch.close();
    CHECK(ch.is_closed());
    auto p = std::make_unique<int>(5);
    CHECK_FALSE(ch.send(std::move(p)));
    REQUIRE(p != nullptr);
    CHECK(*p == 5);
    CHECK_FALSE(ch.try_send(std::move(p)));
    REQUIRE(p != nullptr);
    CHECK(*p == 5);
    CHECK(ch.size() == 0);
    CHECK(ch.dropped() == 0);
    CHECK_FALSE(ch.recv().has_value());
  }
  // ... from a fiber too.
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Channel<std::unique_ptr<int>> ch(1);
    ch.close();
    bool kept = rt.block_on([&] {
      auto p = std::make_unique<int>(6);
      const bool sent = ch.send(std::move(p));
      const bool try_sent = ch.try_send(std::move(p));
      return !sent && !try_sent && p != nullptr && *p == 6;
    });
    CHECK(kept);
  }
}

TEST_CASE("channel: buffered values stay receivable after close, then recv gives nullopt") {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    for (Side side : k_sides) {
      CAPTURE(side_name(side));
      weft::Channel<int> ch(8);
      for (int i = 1; i <= 5; ++i) REQUIRE(ch.send(i));
      ch.close();
      CHECK(ch.is_closed());
      CHECK(ch.size() == 5);
      CHECK_FALSE(ch.send(6));
      std::vector<int> got;
      int nullopts = 0;
      Actor reader(rt, side, [&] {
        for (int i = 0; i < 5; ++i) got.push_back(ch.recv().value_or(-1));
        nullopts += !ch.recv().has_value();
        nullopts += !ch.recv().has_value();
        nullopts += !ch.try_recv().has_value();
      });
      reader.join();
      CHECK(got == std::vector<int>{1, 2, 3, 4, 5});
      CHECK(nullopts == 3);
      CHECK(ch.size() == 0);
    }
  }
}

TEST_CASE("channel: close is idempotent, also when called concurrently" * doctest::timeout(120)) {
  weft::Channel<int> ch(2);
  CHECK_FALSE(ch.is_closed());
  ch.close();
  CHECK(ch.is_closed());
  CHECK_NOTHROW(ch.close());
  CHECK(ch.is_closed());
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    for (int round = 0; round < 50; ++round) {
      weft::Channel<int> c(0);
      std::atomic<int> nullopts{0};
      std::vector<Actor> actors;
      for (int r = 0; r < 3; ++r) {
        actors.emplace_back(rt, Side::fiber, [&] { nullopts += !c.recv().has_value(); });
      }
      for (int k = 0; k < 4; ++k) {
        actors.emplace_back(rt, k % 2 == 0 ? Side::fiber : Side::thread, [&] { c.close(); });
      }
      for (auto& a : actors) a.join();
      CHECK(nullopts.load() == 3);
      CHECK(c.is_closed());
    }
  }
}

TEST_CASE("channel: move-only values pass through unbuffered and buffered channels" * doctest::timeout(300)) {
  const int n = static_cast<int>(scaled(10'000));
  for (std::size_t workers : k_worker_counts) {
    for (std::size_t capacity : {std::size_t{0}, std::size_t{8}}) {
      CAPTURE(workers);
      CAPTURE(capacity);
      weft::Runtime rt({.workers = workers});
      weft::Channel<std::unique_ptr<int>> ch(capacity);
      long long sum = 0, count = 0, nulls = 0;
      Actor producer(rt, Side::fiber, [&] {
        for (int i = 1; i <= n; ++i) ch.send(std::make_unique<int>(i));
        ch.close();
      });
      Actor consumer(rt, Side::fiber, [&] {
        while (auto p = ch.recv()) {
          if (*p == nullptr) {
            ++nulls;
          } else {
            sum += **p;
          }
          ++count;
        }
      });
      producer.join();
      consumer.join();
      CHECK(nulls == 0);
      CHECK(count == n);
      CHECK(sum == static_cast<long long>(n) * (n + 1) / 2);
    }
  }
}

TEST_CASE("channel: range-for receives every value until the channel is closed" * doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side side : k_sides) {
      CAPTURE(workers);
      CAPTURE(side_name(side));
      weft::Runtime rt({.workers = workers});
      weft::Channel<int> ch(3);
      Actor producer(rt, side, [&] {
        for (int i = 1; i <= 1000; ++i) ch.send(i);
        ch.close();
      });
      long long sum = 0;
      int count = 0, last = 0, unordered = 0;
      Actor consumer(rt, side == Side::fiber ? Side::thread : Side::fiber, [&] {
        for (int v : ch) {
          unordered += v != last + 1;
          last = v;
          sum += v;
          ++count;
        }
      });
      producer.join();
      consumer.join();
      CHECK(count == 1000);
      CHECK(sum == 500500);
      CHECK(unordered == 0);
    }
  }
  // Move-only values by reference through the iterator.
  weft::Channel<std::unique_ptr<int>> up(4);
  for (int i = 1; i <= 4; ++i) up.send(std::make_unique<int>(i));
  up.close();
  int total = 0;
  for (auto& p : up) total += p ? *p : 1000;
  CHECK(total == 10);
  // A closed, empty channel: the loop body never runs.
  int iterations = 0;
  for (auto& p : up) {
    (void)p;
    ++iterations;
  }
  CHECK(iterations == 0);
}

TEST_CASE("channel: try_send and try_recv never block" * doctest::timeout(120)) {
  // Plain thread, no runtime.
  {
    weft::Channel<std::unique_ptr<int>> ch;  // unbuffered, nobody receiving
    auto p = std::make_unique<int>(3);
    CHECK_FALSE(ch.try_send(std::move(p)));
    REQUIRE(p != nullptr);
    CHECK(*p == 3);
    CHECK_FALSE(ch.try_recv().has_value());
    CHECK_FALSE(ch.is_closed());
    CHECK(waiting_senders(ch) == 0);
    CHECK(waiting_receivers(ch) == 0);
  }
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    // In a fiber on a single worker: blocking here would hang the runtime.
    bool ok = rt.block_on([] {
      weft::Channel<int> unbuffered;
      weft::Channel<int> full(1);
      bool r = full.try_send(1);
      for (int i = 0; i < 1000; ++i) {
        r = r && !unbuffered.try_send(i) && !unbuffered.try_recv().has_value() && !full.try_send(i);
      }
      return r && full.try_recv() == std::optional<int>(1) && !full.try_recv().has_value();
    });
    CHECK(ok);
    // try_send hands over to a parked receiver, try_recv takes from a parked sender.
    for (Side side : k_sides) {
      CAPTURE(side_name(side));
      weft::Channel<int> ch;
      std::atomic<int> got{-1};
      Actor receiver(rt, side, [&] { got.store(ch.recv().value_or(-2)); });
      spin_until([&] { return waiting_receivers(ch) == 1; });
      CHECK(ch.try_send(11));
      receiver.join();
      CHECK(got.load() == 11);
      std::atomic<bool> sent{false};
      Actor sender(rt, side, [&] { sent.store(ch.send(12)); });
      spin_until([&] { return waiting_senders(ch) == 1; });
      CHECK(ch.try_recv() == std::optional<int>(12));
      sender.join();
      CHECK(sent.load());
      CHECK_FALSE(ch.try_recv().has_value());
    }
  }
}

TEST_CASE("channel: copies of a handle are the same channel; a moved-from handle throws std::logic_error") {
  weft::Channel<int> a(2, "shared");
  weft::Channel<int> b = a;
  CHECK(a == b);
  CHECK(b.name() == "shared");
  CHECK(b.send(1));
  CHECK(a.size() == 1);
  CHECK(a.recv() == std::optional<int>(1));
  weft::Channel<int> other(2);
  CHECK_FALSE(a == other);
  other = a;  // copy assignment: now the same channel
  CHECK(other == a);
  b.close();
  CHECK(a.is_closed());
  CHECK(other.is_closed());

  // The channel lives as long as any handle does.
  weft::Channel<int> survivor;
  {
    weft::Channel<int> original(3, "scoped");
    original.send(42);
    survivor = original;
  }
  CHECK(survivor.name() == "scoped");
  CHECK(survivor.recv() == std::optional<int>(42));

  // A moved-from handle.
  weft::Channel<int> src(1, "moving");
  weft::Channel<int> dst = std::move(src);
  CHECK(dst.name() == "moving");
  CHECK(dst.send(5));
  CHECK_THROWS_AS(src.send(1), std::logic_error);
  CHECK_THROWS_AS((void)src.try_send(1), std::logic_error);
  CHECK_THROWS_AS(src.recv(), std::logic_error);
  CHECK_THROWS_AS((void)src.try_recv(), std::logic_error);
  CHECK_THROWS_AS(src.close(), std::logic_error);
  CHECK_THROWS_AS(src.is_closed(), std::logic_error);
  CHECK_THROWS_AS(src.size(), std::logic_error);
  CHECK_THROWS_AS(src.capacity(), std::logic_error);
  CHECK_THROWS_AS(src.dropped(), std::logic_error);
  CHECK_THROWS_AS(src.name(), std::logic_error);
  CHECK_THROWS_AS(src.begin(), std::logic_error);
  weft::Channel<int> moved_assigned(1);
  moved_assigned = std::move(dst);
  CHECK_THROWS_AS(dst.recv(), std::logic_error);
  CHECK(moved_assigned.recv() == std::optional<int>(5));
  // Assigning to a moved-from handle makes it usable again.
  src = moved_assigned;
  CHECK(src == moved_assigned);
  CHECK(src.try_send(8));
  CHECK(moved_assigned.try_recv() == std::optional<int>(8));
  // Self-assignment keeps the channel.
  auto& self = src;
  src = self;
  CHECK(src.name() == "moving");
}

TEST_CASE("channel: name() returns the name given at construction") {
  CHECK(weft::Channel<int>(0, "jobs").name() == "jobs");
  CHECK(weft::Channel<int>(weft::sliding(2), "slide").name() == "slide");
  CHECK(weft::Channel<int>(weft::dropping(2), "drop").name() == "drop");
  CHECK(weft::Channel<int>().name().empty());
  CHECK(weft::Channel<int>(5).name().empty());
  weft::Channel<int> d;
  CHECK(d.capacity() == 0);
  CHECK(d.policy() == weft::BufferPolicy::block);
}

TEST_CASE("channel: plain threads and fibers exchange values in both directions" * doctest::timeout(600)) {
  const long long per_producer = static_cast<long long>(scaled(5'000));
  constexpr int k_threads = 2, k_fibers = 3;
  for (std::size_t workers : k_worker_counts) {
    for (std::size_t capacity : {std::size_t{0}, std::size_t{8}}) {
      CAPTURE(workers);
      CAPTURE(capacity);
      weft::Runtime rt({.workers = workers});
      // Threads -> fibers on one channel, fibers -> threads on another.
      weft::Channel<long long> to_fibers(capacity), to_threads(capacity);
      std::atomic<int> thread_producers{k_threads}, fiber_producers{k_fibers};
      std::atomic<long long> fiber_sum{0}, fiber_count{0}, thread_sum{0}, thread_count{0};
      std::vector<Actor> actors;
      for (int t = 0; t < k_threads; ++t) {
        actors.emplace_back(rt, Side::thread, [&, t] {
          for (long long i = 0; i < per_producer; ++i) to_fibers.send(t * per_producer + i + 1);
          if (thread_producers.fetch_sub(1) == 1) to_fibers.close();
        });
        actors.emplace_back(rt, Side::thread, [&] {
          long long s = 0, c = 0;
          while (auto v = to_threads.recv()) {
            s += *v;
            ++c;
          }
          thread_sum += s;
          thread_count += c;
        });
      }
      for (int f = 0; f < k_fibers; ++f) {
        actors.emplace_back(rt, Side::fiber, [&, f] {
          for (long long i = 0; i < per_producer; ++i) to_threads.send(f * per_producer + i + 1);
          if (fiber_producers.fetch_sub(1) == 1) to_threads.close();
        });
        actors.emplace_back(rt, Side::fiber, [&] {
          long long s = 0, c = 0;
          while (auto v = to_fibers.recv()) {
            s += *v;
            ++c;
          }
          fiber_sum += s;
          fiber_count += c;
        });
      }
      for (auto& a : actors) a.join();
      auto triangle = [](long long n) { return n * (n + 1) / 2; };
      CHECK(fiber_count.load() == k_threads * per_producer);
      CHECK(fiber_sum.load() == triangle(k_threads * per_producer));
      CHECK(thread_count.load() == k_fibers * per_producer);
      CHECK(thread_sum.load() == triangle(k_fibers * per_producer));
    }
  }
}

TEST_CASE("channel: plain threads alone, with no runtime, send and receive" * doctest::timeout(300)) {
  const long long n = static_cast<long long>(scaled(20'000));
  for (std::size_t capacity : {std::size_t{0}, std::size_t{1}, std::size_t{64}}) {
    CAPTURE(capacity);
    weft::Channel<long long> ch(capacity);
    long long sum = 0, count = 0;
    std::thread consumer([&] {
      for (long long v : ch) {
        sum += v;
        ++count;
      }
    });
    std::thread producer([&] {
      for (long long i = 1; i <= n; ++i) ch.send(i);
      ch.close();
    });
    producer.join();
    consumer.join();
    CHECK(count == n);
    CHECK(sum == n * (n + 1) / 2);
  }
}

TEST_CASE("channel: what the sender wrote before send() and close() is visible to the receiver" *
          doctest::timeout(300)) {
  // Plain (non-atomic) data travels beside the channel, by pointer; only the
  // channel orders it. ThreadSanitizer builds check the ordering directly.
  const int n = static_cast<int>(scaled(5'000));
  for (std::size_t workers : k_worker_counts) {
    for (std::size_t capacity : {std::size_t{0}, std::size_t{4}}) {
      for (Side send_side : k_sides) {
        CAPTURE(workers);
        CAPTURE(capacity);
        CAPTURE(side_name(send_side));
        weft::Runtime rt({.workers = workers});
        weft::Channel<std::vector<int>*> ch(capacity);
        int written_before_close = 0;  // plain: ordered by close()
        long long sum = 0;
        int bad = 0, count = 0, seen_after_close = 0;
        Actor producer(rt, send_side, [&] {
          for (int i = 1; i <= n; ++i) ch.send(new std::vector<int>(16, i));
          written_before_close = 42;
          ch.close();
        });
        Actor consumer(rt, send_side == Side::fiber ? Side::thread : Side::fiber, [&] {
          for (std::vector<int>* v : ch) {
            for (int x : *v) bad += x != (*v)[0];
            bad += v->size() != 16;
            sum += (*v)[0];
            ++count;
            delete v;
          }
          seen_after_close = written_before_close;
        });
        producer.join();
        consumer.join();
        CHECK(bad == 0);
        CHECK(count == n);
        CHECK(sum == static_cast<long long>(n) * (n + 1) / 2);
        CHECK(seen_after_close == 42);
      }
    }
  }
}

TEST_CASE("channel: 100,000 fibers parked on their own channels all finish once each gets a value" *
          doctest::timeout(900)) {
  // 10,000 in sanitizer builds; 1,000 under TSan (see k_thread_sanitizer).
  const std::size_t n = scaled(100'000) / (weft_test::k_thread_sanitizer ? 10 : 1);
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers, .stack_size = 64 * 1024});
    std::vector<weft::Channel<std::uint64_t>> chans(n);
    std::atomic<std::uint64_t> sum{0};
    std::atomic<std::size_t> finished{0};
    std::size_t finished_before_sends = 0, parked_before_sends = 0;
    rt.block_on([&] {
      std::vector<weft::JoinHandle<void>> handles;
      handles.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        handles.push_back(weft::go([&, i] {
          auto v = chans[i].recv();
          if (v) sum.fetch_add(*v, std::memory_order_relaxed);
          finished.fetch_add(1, std::memory_order_relaxed);
        }));
      }
      // Wait until every fiber is parked in its recv().
      std::size_t parked = 0;
      while (parked != n) {
        weft::this_fiber::yield();
        parked = 0;
        for (auto& ch : chans) parked += waiting_receivers(ch);
      }
      parked_before_sends = parked;
      finished_before_sends = finished.load();
      for (std::size_t i = 0; i < n; ++i) chans[i].send(i + 1);
      for (auto& h : handles) h.join();
    });
    CHECK(parked_before_sends == n);
    CHECK(finished_before_sends == 0);
    CHECK(finished.load() == n);
    CHECK(sum.load() == static_cast<std::uint64_t>(n) * (n + 1) / 2);
  }
}
