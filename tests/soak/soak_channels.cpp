// Soak scenarios for channels and select: nothing accepted is lost or
// delivered twice, dropping/sliding buffers account for every discard, and
// one sender's values arrive in the order sent.
//
// A value is (producer << 32 | seq). A producer sends seq 0, 1, 2, ... and
// stops at the first send that reports the channel closed, so the values it
// got accepted are exactly seq < accepted[producer]. After every party has
// finished:
//   received ids ⊆ accepted ids, each received at most once,
//   blocking buffers:  |received| = Σ accepted, dropped() = 0,
//   dropping/sliding:  |received| + dropped() = Σ accepted,
//   per consumer and producer, the seqs it saw are strictly increasing.
// Values are counted objects (Value below): once a round's runtime is gone,
// every one ever constructed has been destroyed exactly once, whether it was
// received, dropped, left in a closed channel or copied into a select case
// that lost (soak_main.cpp checks live_channel_values() == 0).
#include <algorithm>
#include <optional>
#include <vector>

#include "soak.hpp"

namespace weft_soak {
namespace {

using namespace std::chrono_literals;

// relaxed: a count read only after every party of the round has been joined
// and the runtime destroyed (joins and thread exits synchronize).
std::atomic<std::int64_t> g_live_values{0};

// A channel value: the id (producer << 32 | seq) of a message, and one count
// in g_live_values for as long as the object lives, copies and moved-from
// objects included. A value the channel code forgot to destroy stays counted;
// one destroyed twice takes the count below zero.
class Value {
 public:
  Value(std::uint64_t id = 0) noexcept : id_(id) { born(); }  // NOLINT: implicit, like the integer it wraps
  Value(const Value& other) noexcept : id_(other.id_) { born(); }
  Value(Value&& other) noexcept : id_(other.id_) { born(); }
  Value& operator=(const Value&) noexcept = default;
  Value& operator=(Value&&) noexcept = default;
  ~Value() { g_live_values.fetch_sub(1, std::memory_order_relaxed); }
  operator std::uint64_t() const noexcept { return id_; }  // NOLINT: reads as the id

 private:
  static void born() noexcept { g_live_values.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t id_;
};

struct Kind {
  weft::ChannelBuffer buffer;
  bool lossy;
  const char* name;
};

Kind draw_kind(Rng& rng) {
  switch (rng.below(4)) {
    case 0: return {weft::buffered(0), false, "unbuffered"};
    case 1: return {weft::buffered(rng.range(1, 16)), false, "buffered"};
    case 2: return {weft::dropping(rng.range(1, 8)), true, "dropping"};
    default: return {weft::sliding(rng.range(1, 8)), true, "sliding"};
  }
}

// Sends v with a randomly chosen operation until it is accepted (true) or the
// channel is closed (false). `noise` never carries a value.
bool send_one(weft::Channel<Value>& ch, weft::Channel<Value>& noise, Value v, Rng& rng) {
  auto& s = stats();
  for (;;) {
    s.add(s.ops);
    switch (rng.below(4)) {
      case 0:
        return ch.send(v);
      case 1:
        if (ch.try_send(v)) return true;
        if (ch.is_closed()) return false;
        pause();
        break;
      case 2: {
        const weft::OpStatus st = ch.send_for(v, std::chrono::microseconds(rng.below(300)));
        if (st != weft::OpStatus::timed_out) return st == weft::OpStatus::ok;
        break;
      }
      default: {
        int outcome = -1;
        weft::select(weft::on_send(ch, v, [&](bool sent) { outcome = sent ? 1 : 0; }),
                     weft::on_recv(noise, [&](std::optional<Value>) { outcome = 2; }),
                     weft::after(std::chrono::microseconds(rng.below(200)), [&] { outcome = 3; }));
        SOAK_CHECK(outcome != 2, "select committed a receive on a channel nobody sends on");
        SOAK_CHECK(outcome != -1, "select returned without running a handler");
        if (outcome != 3) return outcome == 1;
        break;
      }
    }
  }
}

// Receives one value with a randomly chosen operation; nullopt once the
// channel is closed and drained.
std::optional<Value> recv_one(weft::Channel<Value>& ch, weft::Channel<Value>& noise, Rng& rng) {
  auto& s = stats();
  for (;;) {
    s.add(s.ops);
    switch (rng.below(4)) {
      case 0:
        return ch.recv();
      case 1: {
        const bool was_closed = ch.is_closed();
        std::optional<Value> v = ch.try_recv();
        if (v || was_closed) return v;
        pause();
        break;
      }
      case 2: {
        weft::RecvResult<Value> r = ch.recv_for(std::chrono::microseconds(rng.below(300)));
        if (!r.timed_out()) return r.value;
        break;
      }
      default: {
        int outcome = -1;
        std::optional<Value> got;
        weft::select(weft::on_recv(ch,
                                   [&](std::optional<Value> v) {
                                     got = v;
                                     outcome = 1;
                                   }),
                     weft::on_recv(noise, [&](std::optional<Value>) { outcome = 2; }),
                     weft::after(std::chrono::microseconds(rng.below(200)), [&] { outcome = 3; }));
        SOAK_CHECK(outcome != 2, "select committed a receive on a channel nobody sends on");
        SOAK_CHECK(outcome != -1, "select returned without running a handler");
        if (outcome == 1) return got;
        break;
      }
    }
  }
}

// Checks the receipts of every consumer against what the producers had
// accepted; returns the number of values received.
std::uint64_t check_receipts(const std::vector<std::vector<Value>>& receipts, const std::vector<std::uint32_t>& accepted,
                             const char* where) {
  std::vector<std::vector<std::uint8_t>> seen(accepted.size());
  for (std::size_t p = 0; p < accepted.size(); ++p) seen[p].assign(accepted[p], 0);
  std::uint64_t total = 0;
  for (const auto& mine : receipts) {
    std::vector<std::int64_t> last(accepted.size(), -1);
    for (Value v : mine) {
      const std::size_t p = v >> 32;
      const std::uint32_t seq = static_cast<std::uint32_t>(v);
      SOAK_CHECK(p < accepted.size(), std::string(where) + ": received a value from no producer");
      SOAK_CHECK(seq < accepted[p], std::string(where) + ": received a value that was never accepted");
      SOAK_CHECK(seen[p][seq] == 0, std::string(where) + ": a value was delivered twice");
      SOAK_CHECK(static_cast<std::int64_t>(seq) > last[p], std::string(where) + ": one sender's values arrived out of order");
      seen[p][seq] = 1;
      last[p] = seq;
      ++total;
    }
  }
  return total;
}

}  // namespace

std::int64_t live_channel_values() noexcept { return g_live_values.load(std::memory_order_relaxed); }

void channel_transfer(weft::Runtime&, Rng& rng) {
  const Kind kind = draw_kind(rng);
  weft::Channel<Value> ch(kind.buffer, "soak");
  weft::Channel<Value> noise(0, "soak-noise");
  const std::size_t producers = rng.range(1, 4);
  const std::size_t consumers = rng.range(1, 4);
  const std::uint32_t per_producer = static_cast<std::uint32_t>(scaled(rng.range(200, 3000)));
  const bool racing_close = rng.chance(40);

  std::vector<std::uint32_t> accepted(producers, 0);
  std::vector<std::vector<Value>> receipts(consumers);
  Crew senders;
  Crew receivers;
  for (std::size_t p = 0; p < producers; ++p) {
    senders.start(rng.chance(15), [&, p, seed = rng.next()] {
      Rng mine(seed);
      std::uint32_t seq = 0;
      while (seq < per_producer && send_one(ch, noise, (Value{p} << 32) | seq, mine)) ++seq;
      accepted[p] = seq;
    });
  }
  for (std::size_t c = 0; c < consumers; ++c) {
    receivers.start(rng.chance(15), [&, c, seed = rng.next()] {
      Rng mine(seed);
      if (mine.chance(10)) {  // range-for until closed and drained
        for (Value v : ch) receipts[c].push_back(v);
        return;
      }
      while (std::optional<Value> v = recv_one(ch, noise, mine)) receipts[c].push_back(*v);
    });
  }
  if (racing_close) {
    weft::this_fiber::sleep_for(std::chrono::microseconds(rng.below(3000)));
    ch.close();
    senders.wait_all();
  } else {
    senders.wait_all();
    ch.close();
  }
  receivers.wait_all();

  SOAK_CHECK(ch.size() == 0, "values left buffered after every receiver saw the channel closed");
  std::uint64_t sent = 0;
  for (std::uint32_t a : accepted) sent += a;
  const std::uint64_t got = check_receipts(receipts, accepted, kind.name);
  const std::uint64_t dropped = ch.dropped();
  if (kind.lossy) {
    SOAK_CHECK(got + dropped == sent, std::string(kind.name) + ": received + dropped != accepted (a value was lost)");
  } else {
    SOAK_CHECK(dropped == 0, std::string(kind.name) + ": a blocking channel dropped values");
    SOAK_CHECK(got == sent, std::string(kind.name) + ": an accepted value was never received");
  }
  if (!racing_close) {
    for (std::uint32_t a : accepted) SOAK_CHECK(a == per_producer, "a send failed before the channel was closed");
  }
  auto& s = stats();
  s.add(s.accepted, sent);
  s.add(s.received, got);
  s.add(s.dropped, dropped);
  s.add(s.progress);
}

// Fan-in: one consumer selects over three channels of random kinds, each fed
// and then closed by its own producer. Fan-out: one producer offers each value
// to two channels at once in a select; exactly one consumer must get it.
void select_fan_in(weft::Runtime&, Rng& rng) {
  auto& s = stats();
  constexpr std::size_t k = 3;
  const std::uint32_t n = static_cast<std::uint32_t>(scaled(rng.range(200, 2000)));
  std::vector<Kind> kinds;
  std::vector<weft::Channel<Value>> inputs;
  for (std::size_t i = 0; i < k; ++i) {
    kinds.push_back(draw_kind(rng));
    inputs.emplace_back(kinds.back().buffer);
  }
  std::vector<std::uint32_t> accepted(k, 0);
  Crew crew;
  weft::Channel<Value> noise;
  for (std::size_t i = 0; i < k; ++i) {
    crew.start(rng.chance(15), [&, i, seed = rng.next()] {
      Rng mine(seed);
      std::uint32_t seq = 0;
      while (seq < n && send_one(inputs[i], noise, (Value{i} << 32) | seq, mine)) ++seq;
      accepted[i] = seq;
      inputs[i].close();
    });
  }
  // The consumer: a closed input is replaced by a channel that never becomes
  // ready, so that it stops winning the select.
  std::vector<weft::Channel<Value>> slots = inputs;
  std::vector<std::vector<Value>> receipts(1);
  std::size_t open = k;
  const bool use_priority = rng.chance(30);
  while (open > 0) {
    s.add(s.ops);
    std::optional<std::size_t> closed_slot;
    auto on = [&](std::size_t i) {
      return weft::on_recv(slots[i], [&, i](std::optional<Value> v) {
        if (v) {
          receipts[0].push_back(*v);
        } else {
          closed_slot = i;
        }
      });
    };
    bool timed_out = false;
    if (use_priority) {
      weft::select(weft::priority, on(0), on(1), on(2), weft::after(1ms, [&] { timed_out = true; }));
    } else if (rng.chance(20)) {
      bool idle = false;
      weft::select(on(0), on(1), on(2), weft::on_default([&] { idle = true; }));
      if (idle) pause();
    } else {
      weft::select(on(0), on(1), on(2), weft::after(1ms, [&] { timed_out = true; }));
    }
    if (closed_slot) {
      slots[*closed_slot] = weft::Channel<Value>();
      --open;
    }
  }
  crew.wait_all();
  std::uint64_t sent = 0;
  std::uint64_t dropped = 0;
  for (std::size_t i = 0; i < k; ++i) {
    sent += accepted[i];
    dropped += inputs[i].dropped();
    SOAK_CHECK(accepted[i] == n, "fan-in: a send failed before its producer closed the channel");
    if (!kinds[i].lossy) SOAK_CHECK(inputs[i].dropped() == 0, "fan-in: a blocking channel dropped values");
  }
  const std::uint64_t got = check_receipts(receipts, accepted, "fan-in");
  SOAK_CHECK(got + dropped == sent, "fan-in: received + dropped != accepted");

  // Fan-out through a two-way send select.
  weft::Channel<Value> left(rng.below(3));
  weft::Channel<Value> right(rng.below(3));
  std::vector<std::vector<Value>> out_receipts(2);
  Crew readers;
  readers.start(rng.chance(15), [&] { for (Value v : left) out_receipts[0].push_back(v); });
  readers.start(rng.chance(15), [&] { for (Value v : right) out_receipts[1].push_back(v); });
  for (std::uint32_t seq = 0; seq < n; ++seq) {
    s.add(s.ops);
    int committed = 0;
    const std::size_t index = weft::select(weft::on_send(left, Value{seq}, [&](bool ok) { committed += ok ? 1 : 100; }),
                                           weft::on_send(right, Value{seq}, [&](bool ok) { committed += ok ? 1 : 100; }));
    SOAK_CHECK(committed == 1 && index < 2, "fan-out: a send select did not commit exactly one case");
  }
  left.close();
  right.close();
  readers.wait_all();
  std::vector<std::uint32_t> all{n};
  const std::uint64_t out_got = check_receipts(out_receipts, all, "fan-out");
  SOAK_CHECK(out_got == n, "fan-out: a value offered to two channels was lost");
  s.add(s.accepted, sent + n);
  s.add(s.received, got + out_got);
  s.add(s.dropped, dropped);
  s.add(s.progress);
}

}  // namespace weft_soak
