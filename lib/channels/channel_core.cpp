#include "channels/channel_core.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>

#include "diagnostics/activity.hpp"
#include "time/timer_heap.hpp"
#include "sync/waiter.hpp"
#include "weft/errors.hpp"

namespace weft::detail {

namespace {

constexpr std::size_t k_first_slots = 8;
// A ring that holds the whole capacity in this many bytes or fewer is made
// whole at once: a small channel that fills (a parent gathering ten
// children's results) would otherwise grow once more, a malloc, a copy and
// a free on its way.
constexpr std::size_t k_whole_ring_bytes = 256;

std::size_t stride_of(const ElemOps* ops) { return (ops->size + ops->align - 1) / ops->align * ops->align; }

std::align_val_t buffer_align(const ElemOps* ops) {
  return std::align_val_t(std::max<std::size_t>(ops->align, __STDCPP_DEFAULT_NEW_ALIGNMENT__));
}

void validate(const ElemOps* ops, ChannelBuffer b) {
  if (b.policy != BufferPolicy::block && b.capacity == 0) {
    throw std::invalid_argument(std::string("weft::") +
                                (b.policy == BufferPolicy::drop_newest ? "dropping" : "sliding") +
                                ": a dropping or sliding buffer needs a capacity of at least 1");
  }
  // The ring is a power of two of slots; keep its byte size far from overflow.
  if (b.capacity > (std::size_t{1} << 56) / stride_of(ops)) {
    throw std::invalid_argument("weft::Channel: capacity " + std::to_string(b.capacity) + " is too large");
  }
}

void describe_node(const void* ctx, std::string& out) {
  const auto* node = static_cast<const ChanNode*>(ctx);
  out += node->is_send ? "send on " : "recv on ";
  node->channel->describe(out);
}

}  // namespace

ChannelCore::ChannelCore(const ElemOps* o, ChannelBuffer b, std::string n)
    : ops((validate(o, b), o)), capacity(b.capacity), policy(b.policy), name(std::move(n)), stride_(stride_of(o)) {
  close_timer.core = this;
}

Nanos ChannelCore::CloseTimer::fire_close(Timer* t, Nanos) noexcept {
  // The core is alive: its destructor cancels this timer, which waits for us.
  channel_close(static_cast<CloseTimer*>(t)->core);
  return k_never;
}

ChannelCore::~ChannelCore() {
  // acquire: after channel_release's acq_rel, this sees the exchange that
  // armed the timer, whichever handle's fiber made it.
  if (close_timer.armed.load(std::memory_order_acquire)) timers().cancel(&close_timer);
  for (std::size_t i = 0; i < count; ++i) ops->destroy(slot_at(i));
  if (buf_ != nullptr) ::operator delete(buf_, buffer_align(ops));
}

void ChannelCore::grow() {
  // Start small (a large capacity need not cost memory up front), double
  // as values arrive, never past the power of two that holds `capacity`;
  // a small ring whole at once.
  const std::size_t whole = std::bit_ceil(capacity);
  const std::size_t first = whole * stride_ <= k_whole_ring_bytes ? whole : std::min(k_first_slots, whole);
  const std::size_t next = slots_ == 0 ? first : slots_ * 2;
  auto* fresh = static_cast<unsigned char*>(::operator new(next * stride_, buffer_align(ops)));
  for (std::size_t i = 0; i < count; ++i) {
    void* from = slot_at(i);
    ops->move_to_raw(fresh + i * stride_, from);
    ops->destroy(from);
  }
  if (buf_ != nullptr) ::operator delete(buf_, buffer_align(ops));
  buf_ = fresh;
  slots_ = next;
  head_ = 0;
}

void ChannelCore::push_value(void* src) {
  if (count == slots_) grow();
  ops->move_to_raw(slot_at(count), src);
  ++count;
}

void ChannelCore::pop_value_into(void* dst) noexcept {
  void* front = slot_at(0);
  ops->move_to_optional(dst, front);
  ops->destroy(front);
  head_ = (head_ + 1) & (slots_ - 1);
  --count;
}

// The first parked node of `list` that this call claims (waiter.hpp).
static ChanNode* claim_first_node(WaitList& list) noexcept { return static_cast<ChanNode*>(claim_first(list)); }

ChannelOpResult ChannelCore::send_now(void* src, Waiter** to_wake) {
  if (closed) return ChannelOpResult::closed;
  if (ChanNode* r = claim_first_node(receivers_)) {
    // R: a parked receiver means the buffer is empty; hand over directly.
    ops->move_to_optional(r->slot, src);
    r->ok = true;
    r->fired = true;
    *to_wake = r->waiter;
    return ChannelOpResult::done;
  }
  if (count < capacity) {
    push_value(src);
    return ChannelOpResult::done;
  }
  // A full blocking channel first: every send that parks comes here.
  if (policy == BufferPolicy::block) return past_close_at() ? ChannelOpResult::closed : ChannelOpResult::would_block;
  switch (policy) {
    case BufferPolicy::block:
      break;  // above
    case BufferPolicy::drop_newest:
      ops->discard(src);
      ++dropped;
      return ChannelOpResult::done;
    case BufferPolicy::drop_oldest: {
      void* front = slot_at(0);
      ops->destroy(front);
      head_ = (head_ + 1) & (slots_ - 1);
      --count;
      push_value(src);  // into the slot just freed: no growth
      ++dropped;
      return ChannelOpResult::done;
    }
  }
  return ChannelOpResult::would_block;
}

ChannelOpResult ChannelCore::try_send_locked(void* src, Waiter** to_wake) { return send_now(src, to_wake); }

ChannelOpResult ChannelCore::recv_now(void* dst, Waiter** to_wake) {
  if (count > 0) {
    pop_value_into(dst);
    // S: a parked sender means the buffer was full; its value takes the
    // slot just freed, keeping its order behind the buffered ones.
    if (ChanNode* s = claim_first_node(senders_)) {
      push_value(s->slot);  // count < slots_: no growth, no throw
      s->ok = true;
      s->fired = true;
      *to_wake = s->waiter;
    }
    return ChannelOpResult::done;
  }
  if (ChanNode* s = claim_first_node(senders_)) {
    ops->move_to_optional(dst, s->slot);
    s->ok = true;
    s->fired = true;
    *to_wake = s->waiter;
    return ChannelOpResult::done;
  }
  if (closed) return ChannelOpResult::closed;
  return past_close_at() ? ChannelOpResult::closed : ChannelOpResult::would_block;
}

ChannelOpResult ChannelCore::try_recv_locked(void* dst, Waiter** to_wake) { return recv_now(dst, to_wake); }

WaitNode* ChannelCore::close_locked() noexcept {
  if (closed) return nullptr;
  closed = true;
  WaitNode* chain = nullptr;
  for (WaitList* list : {&receivers_, &senders_}) {
    while (ChanNode* n = claim_first_node(*list)) {
      n->ok = false;
      n->fired = true;
      n->next = chain;  // unlinked, so `next` is free to chain the wake-ups
      chain = n;
    }
  }
  return chain;
}

void ChannelCore::arm_close_timer() {
  // acq_rel: see `armed`. A loser returns at once and may park before the
  // winner has armed the timer; that is safe, because the winner is running
  // until it has (so no deadlock can be reported meanwhile), and the timer
  // closes the channel even if it was armed past close_at. If arming fails
  // (std::bad_alloc, thrown to the winner) the flag is cleared for the next
  // fiber to try; a loser parked meanwhile waits for that, or is reported
  // by deadlock detection instead of hanging.
  if (close_timer.armed.exchange(true, std::memory_order_acq_rel)) return;
  try {
    timers().arm(&close_timer, close_at);
  } catch (...) {
    close_timer.armed.store(false, std::memory_order_release);  // release: undoes our exchange
    throw;
  }
}

void ChannelCore::describe(std::string& out) const {
  out += "channel ";
  if (!name.empty()) {
    out += '"';
    out += name;
    out += "\" (";
    append_address(out, this);
    out += ')';
  } else {
    append_address(out, this);
  }
}

// ---- entry points (weft/detail/channel_core.hpp) ----

ChannelCore* channel_create(const ElemOps* ops, ChannelBuffer buffer, std::string name) {
  return new ChannelCore(ops, buffer, std::move(name));
}

void channel_retain(ChannelCore* c) noexcept {
  // relaxed: a new reference is made from an existing one, which keeps the
  // core alive; nothing is published by the increment.
  c->refs.fetch_add(1, std::memory_order_relaxed);
}

void channel_release(ChannelCore* c) noexcept {
  // acq_rel: the last releaser must see every other handle's writes (made
  // under the lock, but also the lock's own state) before deleting.
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete c;
}

namespace {

template <bool IsSend>
ChannelOpResult channel_op(ChannelCore* c, void* slot, Nanos deadline) {
  // The first thing here: the inlined read (current.hpp). The retry below
  // calls this again only on a plain thread, which never changes thread.
  PlainCall plain{PlainCall::AtEntry{}};
  Waiter* wake = nullptr;
  c->lock.lock();
  ChannelOpResult r;
  try {
    r = IsSend ? c->send_now(slot, &wake) : c->recv_now(slot, &wake);
  } catch (...) {
    c->lock.unlock();
    throw;
  }
  if (r != ChannelOpResult::would_block || deadline == k_no_wait ||
      (deadline != k_never && deadline <= now_ns())) {
    c->lock.unlock();
    if (wake != nullptr) wake->unpark();
    return r;
  }
  // Park: queue a node, release the lock, sleep until someone completes us.
  Waiter waiter(IsSend ? ParkReason::channel_send : ParkReason::channel_recv);
  if ((deadline != k_never || c->close_at != k_never) && waiter.fiber() != nullptr) {
    // A fiber's deadline is a timer, and so is a timeout channel's close;
    // the timer heap is never touched under a channel lock (the lock
    // discipline in channel_core.hpp). Unlock, arm, lock again and retry:
    // the channel may have changed meanwhile.
    c->lock.unlock();
    waiter.set_deadline(deadline);  // may throw: nothing held, nothing queued
    if (c->close_at != k_never) c->arm_close_timer();  // may throw: as above (~Waiter cancels ours)
    c->lock.lock();
    try {
      r = IsSend ? c->try_send_locked(slot, &wake) : c->try_recv_locked(slot, &wake);
    } catch (...) {
      c->lock.unlock();
      throw;
    }
    if (r != ChannelOpResult::would_block || waiter.outcome() != Waiter::Outcome::pending) {
      // Done after all, or the deadline fired meanwhile (~Waiter then
      // consumes the timer's wake-up, after we let go of the lock).
      c->lock.unlock();
      if (wake != nullptr) wake->unpark();
      return r;
    }
  } else {
    // A plain thread times itself, no timer, no allocation: until its own
    // deadline or the channel's close_at, whichever comes first (a fiber
    // gets here only with neither: k_never).
    waiter.set_deadline(std::min(deadline, c->close_at));
  }
  ChanNode node;
  node.waiter = &waiter;
  node.channel = c;
  node.slot = slot;
  node.is_send = IsSend;
  waiter.set_description(&describe_node, &node);
  c->enqueue_locked(&node);
  c->lock.unlock();
  const Waiter::Outcome outcome = waiter.park();
  if (outcome == Waiter::Outcome::cancelled || outcome == Waiter::Outcome::timed_out) {
    // Claimed by shutdown or by our deadline, not by a counterpart: nothing
    // was taken or delivered, and the node may still be queued.
    c->lock.lock();
    c->dequeue_locked(&node);
    c->lock.unlock();
    if (outcome == Waiter::Outcome::cancelled) throw_cancelled();
    // A plain thread's timed wait ends at close_at when that comes first:
    // start over (once: that attempt finds the channel closed, past_close_at),
    // as select_cases does.
    if (waiter.fiber() == nullptr && c->close_at <= deadline) return channel_op<IsSend>(c, slot, deadline);
    return ChannelOpResult::would_block;
  }
  // Completed: the completer unlinked the node and set `ok` before waking us.
  return node.ok ? ChannelOpResult::done : ChannelOpResult::closed;
}

}  // namespace

ChannelOpResult channel_send(ChannelCore* c, void* src, Nanos deadline) { return channel_op<true>(c, src, deadline); }

ChannelOpResult channel_recv(ChannelCore* c, void* dst, Nanos deadline) { return channel_op<false>(c, dst, deadline); }

void channel_close_at(ChannelCore* c, Nanos deadline) {
  if (c->close_at != k_never) throw std::logic_error("weft: a channel has one close time");
  if (deadline <= now_ns()) {
    channel_close(c);  // already due
    return;
  }
  c->close_at = deadline;  // armed when a fiber first parks on it (channel_core.hpp)
}

void channel_close(ChannelCore* c) noexcept {
  PlainCall plain;
  WaitNode* chain;
  {
    std::lock_guard<SpinLock> guard(c->lock);
    chain = c->close_locked();
  }
  unpark_chain(chain);
}

bool channel_is_closed(const ChannelCore* c) noexcept {
  // A timeout channel past its close_at is closed, whether or not its
  // timer has fired (try_*_locked say so too).
  if (c->past_close_at()) return true;
  std::lock_guard<SpinLock> guard(c->lock);
  return c->closed;
}

std::size_t channel_size(const ChannelCore* c) noexcept {
  std::lock_guard<SpinLock> guard(c->lock);
  return c->count;
}

std::size_t channel_capacity(const ChannelCore* c) noexcept { return c->capacity; }

BufferPolicy channel_policy(const ChannelCore* c) noexcept { return c->policy; }

std::uint64_t channel_dropped(const ChannelCore* c) noexcept {
  std::lock_guard<SpinLock> guard(c->lock);
  return c->dropped;
}

const std::string& channel_name(const ChannelCore* c) noexcept { return c->name; }

std::size_t channel_waiting_senders(const ChannelCore* c) noexcept {
  std::lock_guard<SpinLock> guard(c->lock);
  std::size_t n = 0;
  c->senders_.for_each([&](WaitNode*) { ++n; });
  return n;
}

std::size_t channel_waiting_receivers(const ChannelCore* c) noexcept {
  std::lock_guard<SpinLock> guard(c->lock);
  std::size_t n = 0;
  c->receivers_.for_each([&](WaitNode*) { ++n; });
  return n;
}

}  // namespace weft::detail
