// weft::RWMutex (weft/rw_mutex.hpp describes the policy).
//
// Everything is guarded by lock_. Waiters are granted the lock by whoever
// releases it: the granter updates readers_ / writer_ for them and claims
// their waiter (notified), so a woken waiter already holds the lock.
//
// Invariants, whenever lock_ is free:
//   X  writer_ => readers_ == 0
//   R  a reader waits => writer_ or a writer waits (else it would have been
//      admitted), up to waiters whose wait already ended (cancelled, timed
//      out) and who have not yet unlinked themselves
//   W  a writer waits => writer_ or readers_ > 0 (else the oldest writer
//      would have been granted the lock), with the same proviso
// Every transition that may break R or W calls grant_locked before
// releasing lock_: unlock, unlock_shared, and a waiter that leaves the
// queue without the lock. That last one matters: a reader queued behind a
// single writer that then gives up must not be left waiting for nobody.
//
// Grant order (grant_locked): after a writer's unlock, the queued readers
// first (all of them: no reader starvation); otherwise, with no reader
// inside, the oldest writer; otherwise, if no writer waits, the readers.
// New readers queue while a writer waits (writer preference).
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "diagnostics/activity.hpp"
#include "sync/waiter.hpp"
#include "weft/errors.hpp"
#include "weft/mutex.hpp"
#include "weft/rw_mutex.hpp"

namespace weft {

namespace {

void describe_read(const void* ctx, std::string& out) {
  detail::describe_object(out, "read lock of weft::RWMutex", ctx);
}
void describe_write(const void* ctx, std::string& out) {
  detail::describe_object(out, "write lock of weft::RWMutex", ctx);
}

// A plain thread that holds the lock counts as able to act, for deadlock
// detection (as for Mutex: weft/mutex.hpp).
void holder_enter(bool plain) noexcept {
  if (plain) detail::plain_holder_enter();
}

}  // namespace

std::size_t RWMutex::admit_readers_locked(detail::WaitNode*& chain) noexcept {
  std::size_t admitted = 0;
  while (detail::WaitNode* r = detail::claim_first(read_waiters_)) {
    ++readers_;
    ++admitted;
    r->next = chain;
    chain = r;
  }
  return admitted;
}

void RWMutex::grant_locked(bool readers_first, detail::WaitNode*& chain) noexcept {
  if (writer_) return;
  if (readers_first && admit_readers_locked(chain) > 0) return;
  if (readers_ == 0) {
    if (detail::WaitNode* w = detail::claim_first(write_waiters_)) {
      writer_ = true;
      w->next = chain;
      chain = w;
      return;
    }
  }
  // Readers wait only behind a writer; with none waiting, let them in.
  if (write_waiters_.empty()) admit_readers_locked(chain);
}

bool RWMutex::try_lock() noexcept {
  const bool plain = detail::on_plain_thread();
  {
    std::lock_guard<detail::SpinLock> guard(lock_);
    if (writer_ || readers_ != 0 || !write_waiters_.empty()) return false;
    writer_ = true;
    plain_writer_ = plain;
  }
  holder_enter(plain);
  return true;
}

bool RWMutex::try_lock_shared() noexcept {
  const bool plain = detail::on_plain_thread();
  {
    std::lock_guard<detail::SpinLock> guard(lock_);
    if (writer_ || !write_waiters_.empty()) return false;
    ++readers_;
  }
  holder_enter(plain);
  return true;
}

bool RWMutex::lock_until(detail::Nanos deadline) {
  if (try_lock()) return true;
  detail::PlainCall plain_call;
  const bool plain = detail::on_plain_thread();
  detail::Waiter waiter;
  detail::WaitNode node;
  node.waiter = &waiter;
  waiter.set_description(&describe_write, this);
  const bool expired = deadline != detail::k_never && detail::now_ns() >= deadline;
  // Armed before lock_ is taken: no timer is armed under a SpinLock. Throws
  // with nothing queued; ~Waiter disarms it if we do not park.
  if (!expired) waiter.set_deadline(deadline);
  {
    std::lock_guard<detail::SpinLock> guard(lock_);
    if (!writer_ && readers_ == 0 && write_waiters_.empty()) {
      writer_ = true;
      plain_writer_ = plain;
      holder_enter(plain);
      return true;
    }
    if (expired) return false;
    write_waiters_.push_back(&node);
  }
  const detail::Waiter::Outcome outcome = waiter.park();
  if (outcome == detail::Waiter::Outcome::notified) {
    // Granted: writer_ was set for us. The claim's release, paired with
    // park()'s acquire, publishes the previous holders' critical sections.
    // plain_writer_ is read only by the holder's unlock: no lock needed.
    plain_writer_ = plain;
    holder_enter(plain);
    return true;
  }
  // Cancelled or timed out: nobody granted us anything. Leave the queue and
  // let in whoever waited only because of us.
  detail::WaitNode* chain = nullptr;
  {
    std::lock_guard<detail::SpinLock> guard(lock_);
    write_waiters_.remove(&node);
    grant_locked(false, chain);
  }
  detail::unpark_chain(chain);
  if (outcome == detail::Waiter::Outcome::cancelled) detail::throw_cancelled();
  return false;
}

bool RWMutex::lock_shared_until(detail::Nanos deadline) {
  if (try_lock_shared()) return true;
  detail::PlainCall plain_call;
  const bool plain = detail::on_plain_thread();
  detail::Waiter waiter;
  detail::WaitNode node;
  node.waiter = &waiter;
  waiter.set_description(&describe_read, this);
  const bool expired = deadline != detail::k_never && detail::now_ns() >= deadline;
  if (!expired) waiter.set_deadline(deadline);  // before lock_, as in lock_until
  {
    std::lock_guard<detail::SpinLock> guard(lock_);
    if (!writer_ && write_waiters_.empty()) {
      ++readers_;
      holder_enter(plain);
      return true;
    }
    if (expired) return false;
    read_waiters_.push_back(&node);
  }
  const detail::Waiter::Outcome outcome = waiter.park();
  if (outcome == detail::Waiter::Outcome::notified) {
    holder_enter(plain);  // granted: readers_ counts us already
    return true;
  }
  {
    // A reader leaving breaks no invariant (nobody waits for readers that
    // do not hold the lock), so there is nobody to grant to.
    std::lock_guard<detail::SpinLock> guard(lock_);
    read_waiters_.remove(&node);
  }
  if (outcome == detail::Waiter::Outcome::cancelled) detail::throw_cancelled();
  return false;
}

void RWMutex::unlock() {
  detail::PlainCall plain_call;
  detail::WaitNode* chain = nullptr;
  bool plain = false;
  {
    std::lock_guard<detail::SpinLock> guard(lock_);
    if (!writer_) throw std::logic_error("weft::RWMutex::unlock: no writer holds the lock");
    writer_ = false;
    plain = std::exchange(plain_writer_, false);
    grant_locked(true, chain);
  }
  // lock_'s release above was our last access to *this: the waiters we
  // claimed are parked inside a lock call, so they cannot destroy it yet.
  detail::unpark_chain(chain);
  if (plain) detail::plain_holder_leave();
}

void RWMutex::unlock_shared() {
  detail::PlainCall plain_call;
  detail::WaitNode* chain = nullptr;
  {
    std::lock_guard<detail::SpinLock> guard(lock_);
    if (readers_ == 0) throw std::logic_error("weft::RWMutex::unlock_shared: no reader holds the lock");
    --readers_;
    grant_locked(false, chain);
  }
  detail::unpark_chain(chain);
  // A plain thread unlocks what it locked itself, so this matches the
  // holder_enter of its lock_shared.
  if (detail::on_plain_thread()) detail::plain_holder_leave();
}

std::size_t RWMutex::readers() const noexcept {
  std::lock_guard<detail::SpinLock> guard(lock_);
  return readers_;
}

bool RWMutex::locked_exclusive() const noexcept {
  std::lock_guard<detail::SpinLock> guard(lock_);
  return writer_;
}

}  // namespace weft
