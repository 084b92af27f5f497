// weft::RWMutex's slow paths (weft/rw_mutex.hpp describes the policy).
//
// One word, state_, holds the writer bit, the reader count, k_slow and the
// queue lock k_queue (which guards both wait queues). Who changes it:
//   fast lock            CAS 0 -> k_writer
//   fast unlock          CAS k_writer -> 0
//   fast lock_shared     CAS s -> s + k_reader when no writer, k_slow, k_queue
//   fast unlock_shared   CAS s -> s - k_reader when no k_slow, k_queue
//   queue holders        set k_queue by CAS (lock_bit); release it with one
//                        store of the whole new word (unlock_queue)
// While k_queue is set no fast path can change the word (each needs k_queue
// clear, or the exact values 0 / k_writer), so the holder may decode it,
// decide, and store the result: that store is its last access to *this.
//
// Waiters are granted the lock by whoever releases it: the granter counts
// them in (readers, writer) and claims their Waiter (notified), so a woken
// waiter already holds the lock.
//
// Invariants, whenever k_queue is clear:
//   S  a queue non-empty => k_slow (so every release takes the slow path
//      and grants: no lost wake-up; and newcomers queue behind waiters)
//   X  k_writer => readers == 0
//   R  a reader waits => a writer holds or waits (else it would have been
//      admitted), up to waiters whose wait already ended (cancelled, timed
//      out) and who have not yet unlinked themselves
//   W  a writer waits => a writer or readers hold the lock, with the same
//      proviso
// Every transition that may break R or W grants before releasing k_queue:
// unlock, unlock_shared, and a writer that leaves the queue without the
// lock. That last one matters: readers queued behind a single writer that
// then gives up must not be left waiting for nobody. (A reader leaving
// breaks nothing: nobody waits for a reader that does not hold the lock.)
//
// Grant order (grant_locked): after a writer's unlock, the queued readers
// first (all of them: no reader starvation); otherwise, with no reader
// inside, the oldest writer; otherwise, if no writer waits, the readers.
// New readers queue while a writer waits (writer preference), which S
// enforces on the fast path.
#include <stdexcept>
#include <string>

#include "diagnostics/activity.hpp"
#include "sync/bit_lock.hpp"
#include "sync/waiter.hpp"
#include "weft/errors.hpp"
#include "weft/rw_mutex.hpp"

namespace weft {

namespace {

void describe_read(const void* ctx, std::string& out) {
  detail::describe_object(out, "read lock of weft::RWMutex", ctx);
}
void describe_write(const void* ctx, std::string& out) {
  detail::describe_object(out, "write lock of weft::RWMutex", ctx);
}

}  // namespace

RWMutex::Holders RWMutex::lock_queue() noexcept {
  const std::uint32_t s = detail::lock_bit(state_, k_queue);
  return {s / k_reader, (s & k_writer) != 0};
}

void RWMutex::unlock_queue(const Holders& h) noexcept {
  std::uint32_t next = h.readers * k_reader;
  if (h.writer) next |= k_writer;
  if (!read_waiters_.empty() || !write_waiters_.empty()) next |= k_slow;  // invariant S
  // release: publishes the queues, and (for an unlock) our critical
  // section. We hold k_queue, so nothing else changed the word. Our last
  // access to *this.
  state_.store(next, std::memory_order_release);
}

void RWMutex::admit_readers_locked(Holders& h, detail::WaitNode*& chain, bool& any) noexcept {
  while (detail::WaitNode* r = detail::claim_first(read_waiters_)) {
    ++h.readers;
    any = true;
    r->next = chain;
    chain = r;
  }
}

void RWMutex::grant_locked(Holders& h, bool readers_first, detail::WaitNode*& chain) noexcept {
  if (h.writer) return;
  bool any = false;
  if (readers_first) {
    admit_readers_locked(h, chain, any);
    if (any) return;
  }
  if (h.readers == 0) {
    if (detail::WaitNode* w = detail::claim_first(write_waiters_)) {
      h.writer = true;
      w->next = chain;
      chain = w;
      return;
    }
  }
  // Readers wait only behind a writer; with none waiting, let them in.
  if (write_waiters_.empty()) admit_readers_locked(h, chain, any);
}

bool RWMutex::lock_until(detail::Nanos deadline) {
  if (try_lock()) return true;
  detail::PlainCall plain_call;
  detail::Waiter waiter(ParkReason::mutex);
  detail::WaitNode node;
  node.waiter = &waiter;
  waiter.set_description(&describe_write, this);
  const bool expired = deadline != detail::k_never && detail::now_ns() >= deadline;
  // Armed before taking k_queue: no timer is armed under a lock. Throws
  // with nothing queued; ~Waiter disarms it if we do not park.
  if (!expired) waiter.set_deadline(deadline);
  Holders h = lock_queue();
  if (!h.writer && h.readers == 0 && write_waiters_.empty()) {
    h.writer = true;
    unlock_queue(h);
    acquired_exclusive();
    return true;
  }
  if (expired) {
    unlock_queue(h);
    return false;
  }
  write_waiters_.push_back(&node);
  unlock_queue(h);  // sets k_slow: new readers now queue behind us

  const detail::Waiter::Outcome outcome = waiter.park();
  if (outcome == detail::Waiter::Outcome::notified) {
    // Granted: the writer bit was set for us. The claim's release, paired
    // with park()'s acquire, publishes the previous holders' sections.
    acquired_exclusive();
    return true;
  }
  // Cancelled or timed out: nobody granted us anything. Leave the queue and
  // let in whoever waited only because of us.
  detail::WaitNode* chain = nullptr;
  h = lock_queue();
  write_waiters_.remove(&node);
  grant_locked(h, false, chain);
  unlock_queue(h);
  detail::unpark_chain(chain);  // they are parked in a lock call: *this outlives this
  if (outcome == detail::Waiter::Outcome::cancelled) detail::throw_cancelled();
  return false;
}

bool RWMutex::lock_shared_until(detail::Nanos deadline) {
  if (try_lock_shared()) return true;
  detail::PlainCall plain_call;
  detail::Waiter waiter(ParkReason::mutex);
  detail::WaitNode node;
  node.waiter = &waiter;
  waiter.set_description(&describe_read, this);
  const bool expired = deadline != detail::k_never && detail::now_ns() >= deadline;
  if (!expired) waiter.set_deadline(deadline);  // before k_queue, as in lock_until
  Holders h = lock_queue();
  if (!h.writer && write_waiters_.empty()) {
    ++h.readers;
    unlock_queue(h);
    acquired_shared();
    return true;
  }
  if (expired) {
    unlock_queue(h);
    return false;
  }
  read_waiters_.push_back(&node);
  unlock_queue(h);

  const detail::Waiter::Outcome outcome = waiter.park();
  if (outcome == detail::Waiter::Outcome::notified) {
    acquired_shared();  // granted: the reader count includes us
    return true;
  }
  h = lock_queue();
  read_waiters_.remove(&node);  // nothing to grant: see the top
  unlock_queue(h);
  if (outcome == detail::Waiter::Outcome::cancelled) detail::throw_cancelled();
  return false;
}

void RWMutex::unlock_slow() {
  detail::PlainCall plain_call;
  Holders h = lock_queue();
  if (!h.writer) {
    unlock_queue(h);
    throw std::logic_error("weft::RWMutex::unlock: no writer holds the lock");
  }
  const bool plain = std::exchange(plain_writer_, false);
  h.writer = false;
  detail::WaitNode* chain = nullptr;
  grant_locked(h, true, chain);
  unlock_queue(h);  // our last access to *this
  detail::unpark_chain(chain);  // parked inside a lock call: they cannot have destroyed it
  if (plain) detail::plain_holder_leave();
}

void RWMutex::unlock_shared_slow() {
  detail::PlainCall plain_call;
  Holders h = lock_queue();
  if (h.readers == 0) {
    unlock_queue(h);
    throw std::logic_error("weft::RWMutex::unlock_shared: no reader holds the lock");
  }
  --h.readers;
  detail::WaitNode* chain = nullptr;
  grant_locked(h, false, chain);
  unlock_queue(h);  // our last access to *this
  detail::unpark_chain(chain);
  released_shared();
}

}  // namespace weft
