// weft::Ticker's timer (weft/time.hpp): a periodic Timer that try-sends the
// time on a dropping(1) channel and returns its next deadline.
#include <chrono>

#include "time/timer_heap.hpp"
#include "weft/time.hpp"

namespace weft::detail {

struct TickerTimer : Timer {
  TickerTimer(ChannelCore* c, Nanos p) noexcept : Timer(&fire_tick), channel(c), period(p) { channel_retain(c); }
  ~TickerTimer() { channel_release(channel); }

  static Nanos fire_tick(Timer* t, Nanos now) noexcept {
    auto* self = static_cast<TickerTimer*>(t);
    Ticker::Tick tick{std::chrono::nanoseconds(now)};
    // Never parks: the buffer is dropping(1); a full buffer drops this tick.
    channel_send(self->channel, &tick, k_no_wait);
    // The next multiple of the period after now (Go skips missed ticks too).
    const Nanos behind = now - t->deadline;
    return t->deadline + self->period * (1 + behind / self->period);
  }

  ChannelCore* channel;  // one reference, ours
  const Nanos period;
};

TickerTimer* ticker_start(ChannelCore* channel, Nanos period) {
  auto* t = new TickerTimer(channel, period);
  try {
    timers().arm(t, deadline_after(std::chrono::nanoseconds(period)));
  } catch (...) {
    delete t;
    throw;
  }
  return t;
}

void ticker_stop(TickerTimer* t) noexcept {
  timers().cancel(t);  // waits for a tick being delivered, disarms a re-armed one
  delete t;
}

}  // namespace weft::detail
