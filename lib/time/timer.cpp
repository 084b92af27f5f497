// weft::Timer's one-shot timer (weft/timer.hpp): a Timer of the process's
// heap that try-sends the time on a buffered(1) channel, once.
//
// The channel's buffer is empty whenever the timer is armed: it starts
// empty, and Timer::reset() discards an unreceived value before re-arming.
// So the firing's send, which never parks, always finds room (unless the
// user closed the channel): a firing is never lost. The send happens in the
// heap's callback, outside every lock; the heap's cancel() waits for a
// running callback, so stop() returning false means the value is already
// in the channel (or was received), and true means it never will be.
#include <chrono>

#include "time/timer_heap.hpp"
#include "weft/timer.hpp"

namespace weft::detail {

struct OneShotTimer : Timer {
  explicit OneShotTimer(ChannelCore* c) noexcept : Timer(&fire_once), channel(c) { channel_retain(c); }
  ~OneShotTimer() { channel_release(channel); }

  static Nanos fire_once(Timer* t, Nanos now) noexcept {
    auto* self = static_cast<OneShotTimer*>(t);
    weft::Timer::Tick tick{std::chrono::nanoseconds(now)};
    channel_send(self->channel, &tick, k_no_wait);  // never parks; finds room (see top)
    return k_never;  // one-shot
  }

  ChannelCore* channel;  // one reference, ours
};

OneShotTimer* one_shot_create(ChannelCore* channel) { return new OneShotTimer(channel); }

void one_shot_arm(OneShotTimer* t, Nanos deadline) { timers().arm(t, deadline); }

bool one_shot_stop(OneShotTimer* t) noexcept { return timers().cancel(t); }

void one_shot_destroy(OneShotTimer* t) noexcept {
  timers().cancel(t);  // waits for a firing in progress
  delete t;
}

}  // namespace weft::detail
