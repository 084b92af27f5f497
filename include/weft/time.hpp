// Time as channels: weft::timeout (core.async's timeout) and weft::Ticker
// (Go's time.Ticker). Sleeps are in this_fiber.hpp, timed channel
// operations in channel.hpp, the after() select case in select.hpp.
#pragma once

#include "detail/config.hpp"

#include <chrono>
#include <stdexcept>
#include <utility>
#include <variant>

#include "channel.hpp"
#include "detail/deadline.hpp"

namespace weft {

// A channel that is closed once `d` has passed (never before): a receive on
// it parks until then and returns std::nullopt, and a select case on it
// commits then. Nothing is ever sent on it. Zero or negative: already
// closed. Never parks; throws std::bad_alloc.
//
// Its timer is lazy (as Go 1.23's timer channels): nothing is armed until a
// fiber parks on the channel; then a timer in the process's timer heap
// closes it at the deadline, and is cancelled as soon as the last handle to
// the channel is gone. A plain thread that waits on it times its own wait
// (no timer, no other thread woken), and any operation after the deadline
// finds it closed. So a select whose other case is ready at once, or a
// timeout nobody waits on, costs no timer at all.
//
//   weft::select(weft::on_recv(jobs, handle),
//                weft::on_recv(weft::timeout(std::chrono::seconds(1)), give_up));
template <class Rep, class Period>
Channel<std::monostate> timeout(const std::chrono::duration<Rep, Period>& d) {
  Channel<std::monostate> ch(0, "weft::timeout");
  detail::channel_close_at(ch.core("timeout"), detail::deadline_after(d));
  return ch;
}

// As timeout(), closed at a time point (any clock).
template <class Clock, class Duration>
Channel<std::monostate> timeout_at(const std::chrono::time_point<Clock, Duration>& t) {
  Channel<std::monostate> ch(0, "weft::timeout");
  detail::channel_close_at(ch.core("timeout_at"), detail::deadline_at(t));
  return ch;
}

namespace detail {
struct TickerTimer;
WEFT_API TickerTimer* ticker_start(ChannelCore* channel, Nanos period);
WEFT_API void ticker_stop(TickerTimer* timer) noexcept;
}  // namespace detail

// Delivers the time on channel() every `period`, starting one period from
// construction (Go's time.NewTicker). The channel buffers one tick and drops
// ticks that a slow receiver has not taken (dropped() counts them), so the
// ticker never waits for anyone and a receiver never sees a backlog.
// Ticks are aligned to construction time + k * period; when the ticker falls
// behind (a busy runtime), the missed ticks are skipped, not bunched.
//
// stop() (also done by the destructor) disarms the timer at once: no tick is
// sent after it returns. The channel is not closed (as in Go), so a
// receiver waiting on it keeps waiting; select on it with something else.
// A running Ticker counts as an armed timer: deadlock detection never
// reports a deadlock while one runs.
//
// Threading: construction, stop() and destruction by one owner at a time;
// channel() handles may be used from anywhere. Never parks or blocks
// (stop() may spin briefly while a tick is being delivered).
class Ticker {
 public:
  using Tick = std::chrono::steady_clock::time_point;

  // Throws std::invalid_argument for a period <= 0, std::bad_alloc.
  template <class Rep, class Period>
  explicit Ticker(const std::chrono::duration<Rep, Period>& period)
      : channel_(dropping(1), "weft::Ticker") {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(period).count();
    if (ns <= 0) throw std::invalid_argument("weft::Ticker: the period must be positive");
    timer_ = detail::ticker_start(channel_.core("Ticker"), ns);
  }
  ~Ticker() { stop(); }
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;

  // The ticks. Copy the handle to use it elsewhere; it outlives the Ticker.
  Channel<Tick>& channel() noexcept { return channel_; }

  // Stops ticking; idempotent.
  void stop() noexcept {
    if (timer_ != nullptr) detail::ticker_stop(std::exchange(timer_, nullptr));
  }

  bool stopped() const noexcept { return timer_ == nullptr; }

 private:
  Channel<Tick> channel_;
  detail::TickerTimer* timer_ = nullptr;
};

}  // namespace weft
