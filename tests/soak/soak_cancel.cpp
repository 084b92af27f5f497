// weft-soak scenario "cancel_transfer": producers and consumers of one
// channel run in TaskGroups whose scopes are cancelled at random moments,
// while they are parked in sends, receives, selects, sleeps and locks,
// or running. The invariant of cancellation (weft/cancel.hpp): a send or
// receive that threw weft::Cancelled did nothing, one that returned did
// its whole job, so every value whose send succeeded is received exactly
// once or found in the channel afterwards; none is received that was not
// sent, and none twice.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <vector>

#include "soak.hpp"

namespace weft_soak {

void cancel_transfer(weft::Runtime& rt, Rng& rng) {
  (void)rt;
  const std::size_t producers = rng.range(1, 4);
  const std::size_t consumers = rng.range(1, 4);
  const std::size_t per_producer = scaled(rng.range(50, 400));
  const std::size_t capacity = rng.below(3) == 0 ? 0 : rng.range(1, 8);
  weft::Channel<std::uint64_t> ch(capacity, "cancel_transfer");
  weft::Channel<std::uint64_t> side(0, "side");  // a second case for selects; nobody uses it
  weft::Mutex m;

  // sent[p][k]: producer p's k-th value was accepted. got[id]: times received.
  std::vector<std::vector<std::uint8_t>> sent(producers, std::vector<std::uint8_t>(per_producer, 0));
  std::vector<std::atomic<std::uint32_t>> got(producers * per_producer);
  std::atomic<std::uint64_t> cancelled_ops{0};
  std::atomic<std::uint64_t> received{0};

  auto id_of = [&](std::size_t p, std::size_t k) { return static_cast<std::uint64_t>(p * per_producer + k); };

  {
    weft::TaskGroup<> producing;
    weft::TaskGroup<> consuming;
    for (std::size_t p = 0; p < producers; ++p) {
      producing.spawn([&, p, seed = rng.next()] {
        Rng r(seed);
        for (std::size_t k = 0; k < per_producer; ++k) {
          const std::uint64_t id = id_of(p, k);
          try {
            bool ok = false;
            switch (r.below(4)) {
              case 0: ok = ch.send(id); break;
              case 1: ok = ch.send_for(id, std::chrono::milliseconds(r.range(1, 5))) == weft::OpStatus::ok; break;
              case 2:
                weft::select(weft::on_send(ch, id, [&](bool s) { ok = s; }),
                             weft::on_recv(side, [](std::optional<std::uint64_t>) {}));
                break;
              default: {
                std::lock_guard<weft::Mutex> guard(m);  // a lock wait in the mix
                ok = ch.send(id);
                break;
              }
            }
            if (ok) sent[p][k] = 1;  // only this fiber writes its row
            if (r.chance(10)) weft::this_fiber::sleep_for(std::chrono::microseconds(r.range(10, 300)));
          } catch (const weft::Cancelled&) {
            cancelled_ops.fetch_add(1, std::memory_order_relaxed);
            throw;
          }
        }
      });
    }
    for (std::size_t c = 0; c < consumers; ++c) {
      consuming.spawn([&, seed = rng.next()] {
        Rng r(seed);
        for (;;) {
          std::optional<std::uint64_t> v;
          try {
            if (r.chance(50)) {
              v = ch.recv();
            } else {
              weft::select(weft::on_recv(ch, [&](std::optional<std::uint64_t> x) { v = x; }),
                           weft::after(std::chrono::milliseconds(r.range(1, 3)), [&] { v = std::nullopt; }));
              if (!v && !ch.is_closed()) continue;
            }
          } catch (const weft::Cancelled&) {
            cancelled_ops.fetch_add(1, std::memory_order_relaxed);
            throw;
          }
          if (!v) return;  // closed and drained
          SOAK_CHECK(*v < got.size(), "a value that was never sent");
          got[*v].fetch_add(1, std::memory_order_relaxed);
          received.fetch_add(1, std::memory_order_relaxed);
          stats().add(stats().ops);
        }
      });
    }
    // Cancel the producers, the consumers, or both, at random moments.
    const unsigned what = static_cast<unsigned>(rng.below(3));
    weft::this_fiber::sleep_for(std::chrono::microseconds(rng.range(0, 2000)));
    if (what != 1) producing.cancel();
    producing.wait();
    ch.close();  // the producers are done: what was sent is in the channel or taken
    weft::this_fiber::sleep_for(std::chrono::microseconds(rng.range(0, 500)));
    if (what != 0) consuming.cancel();
    consuming.wait();
  }
  // Whatever the consumers did not take is still buffered.
  while (auto v = ch.try_recv()) {
    SOAK_CHECK(*v < got.size(), "a value that was never sent");
    got[*v].fetch_add(1, std::memory_order_relaxed);
    received.fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t accepted = 0;
  for (std::size_t p = 0; p < producers; ++p) {
    for (std::size_t k = 0; k < per_producer; ++k) {
      const std::uint32_t n = got[id_of(p, k)].load(std::memory_order_relaxed);
      if (sent[p][k] != 0) {
        ++accepted;
        SOAK_CHECK(n == 1, "an accepted value received " + std::to_string(n) + " times");
      } else {
        SOAK_CHECK(n == 0, "a value whose send failed or was cancelled was received");
      }
    }
  }
  stats().add(stats().accepted, accepted);
  stats().add(stats().received, received.load());
  stats().add(stats().fibers, producers + consumers);
  stats().add(stats().progress);
}

}  // namespace weft_soak
