#include "weft/detail/task.hpp"

#include <algorithm>
#include <cassert>
#include <mutex>
#include <optional>
#include <variant>

#include "diagnostics/activity.hpp"
#include "structured/cancel_state.hpp"
#include "weft/detail/channel_core.hpp"
#include "weft/detail/group_core.hpp"
#include "diagnostics/deadlock.hpp"
#include "diagnostics/fiber_dump.hpp"
#include "diagnostics/outside_threads.hpp"
#include "scheduling/fiber.hpp"
#include "diagnostics/unhandled.hpp"
#include "sync/wait_visit.hpp"
#include "sync/waiter.hpp"
#include "scheduling/worker.hpp"
#include "weft/errors.hpp"

namespace weft::detail {

namespace {

void describe_join(const void* ctx, std::string& out) {
  // The joiner holds the task (its handle's reference), so the task's own
  // fields are safe to read; its fiber may be finishing, so it is not read.
  // The dump adds the target's name when it lists the target (fiber_dump.hpp).
  const auto* task = static_cast<const TaskBase*>(ctx);
  out += "join of ";
  append_fiber_ref(out, task->id_);
  if (task->fiber_.load(std::memory_order_relaxed) == nullptr) {  // relaxed: a description
    out += " (not started)";
  }
}

}  // namespace

void TaskBase::drop_leftovers() noexcept {
  delete[] name_;  // never started (the fiber takes it over otherwise)
  if (scope_ != nullptr) scope_->release();  // never started
  if (done_channel_ != nullptr) channel_release(done_channel_);
}

void TaskBase::set_name(std::string_view name) {
  if (name.empty()) return;
  char* copy = new char[name.size() + 1];
  name.copy(copy, name.size());
  copy[name.size()] = '\0';
  delete[] std::exchange(name_, copy);
}

void TaskBase::capture_current_exception() noexcept {
  try {
    throw;
  } catch (const FiberCancelled&) {
    cancelled_ = true;
    error_ = std::make_exception_ptr(
        RuntimeStopped("weft: the task was cancelled at shutdown while parked with nothing left to wake it"));
  } catch (const Cancelled&) {
    cancelled_ = true;  // cancelled, not failed: join() rethrows it, nobody reports it
    error_ = std::current_exception();
  } catch (...) {
    error_ = std::current_exception();
  }
}

// Every call in the detached path is a tail call: the spawn path's end
// saves no registers (issue 17; with the rare parts inline it saved three).
void TaskBase::finish() noexcept {
  // acquire: pairs with release_handle()'s acq_rel decrement. At 1 only the
  // runtime's reference is left: the handle was detached or dropped (a
  // group's child and a continuation hold it), so nobody can add a joiner
  // or a continuation, make the done channel or request a cancel any more,
  // and what the handle side wrote under join_lock_ is visible. No lock: a
  // detached task's end costs one locked instruction fewer.
  if (refs_.load(std::memory_order_acquire) != 1) return finish_shared();
  assert(joiner_ == nullptr && continuation_ == nullptr && group_ == nullptr);
  done_.store(true, std::memory_order_release);  // release: as in finish_shared (nobody is left to read it but us)
  // destroy(), with the count it would read again already read.
  if (done_channel_ != nullptr || error_) [[unlikely]] return finish_detached_rare();
  delete this;
}

[[gnu::noinline, gnu::cold]] void TaskBase::finish_detached_rare() noexcept {
  if (done_channel_ != nullptr) channel_close(done_channel_);
  destroy();
}

void TaskBase::finish_shared() noexcept {
  Waiter* joiner = nullptr;
  ChannelCore* done_channel = nullptr;
  Continuation* continuation = nullptr;
  {
    std::lock_guard<SpinLock> guard(join_lock_);
    done_channel = done_channel_;  // closed below: a select on the join wakes
    continuation = std::exchange(continuation_, nullptr);
    // release: publishes the result/error_ to done()'s acquire load.
    done_.store(true, std::memory_order_release);
    joiner = std::exchange(joiner_, nullptr);
    // Claim under the lock (waiter.hpp's lifetime rule): once the joiner can
    // take the lock again, we no longer touch its waiter except to unpark it.
    if (joiner != nullptr && !joiner->try_claim(Waiter::Outcome::notified)) joiner = nullptr;
  }
  if (joiner != nullptr) joiner->unpark();
  if (done_channel != nullptr) channel_close(done_channel);  // the task holds it until it is freed
  if (group_ != nullptr) group_->child_finished(this);  // after done_: the group may collect us at once
  // JoinHandle::then(): it holds the handle's reference, so the task lives
  // on through it whatever release() below does.
  if (continuation != nullptr) continuation->run(this);
  release();
}

bool TaskBase::set_continuation(Continuation* c) noexcept {
  std::lock_guard<SpinLock> guard(join_lock_);
  // relaxed: done_ only changes under join_lock_, which we hold.
  if (done_.load(std::memory_order_relaxed)) return false;
  continuation_ = c;
  return true;
}

bool TaskBase::add_joiner(Waiter& waiter) {
  std::lock_guard<SpinLock> guard(join_lock_);
  // relaxed: done_ only changes under join_lock_, which we hold.
  if (done_.load(std::memory_order_relaxed)) return false;
  // One handle, one joiner at a time (JoinHandle's contract).
  assert(joiner_ == nullptr && "a JoinHandle was joined from two places at once");
  joiner_ = &waiter;
  return true;
}

bool TaskBase::wait_done_until(Nanos deadline) {
  if (done()) return true;
  if (deadline == k_never) return wait_done(), true;
  // A timed join never runs the task inline: it must be able to give up on
  // time. Nor does it arm a timer that has passed.
  if (deadline <= now_ns()) return done();
  return park_until_done(deadline);
}

bool TaskBase::park_until_done(Nanos deadline) {
  PlainCall plain;
  Waiter waiter(ParkReason::join);
  waiter.set_description(&describe_join, this);
  waiter.set_deadline(deadline);  // before the waiter is visible; may throw
  if (!add_joiner(waiter)) return true;
  const Waiter::Outcome outcome = waiter.park();
  if (outcome == Waiter::Outcome::notified) return true;
  {
    // Cancelled or timed out: finish() did not claim us; unregister.
    std::lock_guard<SpinLock> guard(join_lock_);
    if (joiner_ == &waiter) joiner_ = nullptr;
  }
  if (outcome == Waiter::Outcome::cancelled) throw_cancelled();
  return done();
}

void TaskBase::wait_done_or_deadlock(Scheduler& runtime) {
  if (done()) return;
  if (!on_plain_thread()) {
    wait_done();
    return;
  }
  PlainCall plain;
  Waiter waiter(ParkReason::join);
  waiter.set_description(&describe_join, this);
  if (!add_joiner(waiter)) return;
  // Watch for the process going idle, then wait like Waiter::park() does,
  // re-checking for a deadlock at every poke.
  activity::add_watcher(&waiter);
  struct Unwatch {
    Waiter* w;
    ~Unwatch() { activity::remove_watcher(w); }
  } unwatch{&waiter};
  // Blocked like a plain thread in an untimed wait (outside_threads.hpp);
  // counted before we leave, and until we are counted active again.
  outside_threads::blocked_enter();
  struct Unblock {
    ~Unblock() { outside_threads::blocked_leave(); }
  } unblock;
  activity::leave();  // idle while waiting; finish() counts us again
  // While the process is idle but a thread outside weft exists, nothing
  // pokes us when that thread exits: look again after a while, backing off
  // from 1 ms to 100 ms (a few /proc reads a second while a service idles).
  Nanos recheck = k_never;
  Nanos backoff = 1'000'000;
  while (!waiter.wait_released_or_poked_until(recheck)) {
    if (waiter.outcome() != Waiter::Outcome::pending) continue;  // the task finished; its unpark is on the way
    DeadlockCheck check = find_deadlock(runtime);
    if (check.outside_thread) {
      recheck = now_ns() + backoff;
      backoff = std::min<Nanos>(backoff * 2, 100'000'000);
    } else {
      recheck = k_never;
      backoff = 1'000'000;
    }
    std::optional<std::string>& report = check.report;
    if (!report || !waiter.try_claim(Waiter::Outcome::cancelled)) continue;
    activity::enter();  // nobody will unpark us: count ourselves again
    {
      std::lock_guard<SpinLock> guard(join_lock_);
      if (joiner_ == &waiter) joiner_ = nullptr;
    }
    throw Deadlock(*report);
  }
}

void TaskBase::capture_cancelled() noexcept {
  cancelled_ = true;
  // No throw: libstdc++ builds the exception object in place.
  error_ = std::make_exception_ptr(Cancelled{});
}

std::uint64_t TaskBase::running_fiber_id() noexcept {
  std::lock_guard<SpinLock> guard(join_lock_);
  if (done_.load(std::memory_order_relaxed)) return 0;  // relaxed: changes only under join_lock_
  // acquire: pairs with bind_task()'s seq_cst store, made after the Fiber
  // was constructed. Not done: the fiber cannot end before finish() takes
  // join_lock_ after us (as in request_cancel below).
  Fiber* f = fiber_.load(std::memory_order_acquire);
  return f != nullptr ? fiber_id(f) : 0;
}

// request_cancel() against the fiber's start (Worker::start_fiber):
//   cancel: cancel_requested_ = true (seq_cst); read fiber_ (seq_cst)
//   start:  fiber_ = f (seq_cst); read cancel_requested_ (seq_cst)
// One of them sees the other: either the start marks the fiber aborted, or
// we do (both is harmless). A start that finds the handle released
// (handle_released(), acquire) stores without the barrier: the handle's
// cancel, if any, came before its release and is visible to it.
// join_lock_ keeps the fiber alive meanwhile: finish() takes it to set
// done_, and runs on the fiber.
void TaskBase::request_cancel() noexcept {
  Waiter* wake = nullptr;
  CancelState* own = nullptr;
  // abort_fiber reads the fiber's parked_on inside a WaitVisit
  // (wait_visit.hpp), opened outside join_lock_ (its heavy barrier is not
  // paid holding a spin lock) and only for a task that has a fiber.
  std::optional<WaitVisit> visit;
  for (;;) {
    {
      std::lock_guard<SpinLock> guard(join_lock_);
      if (done_.load(std::memory_order_relaxed)) return;  // relaxed: changes only under join_lock_
      cancel_requested_.store(true, std::memory_order_seq_cst);
      Fiber* f = fiber_.load(std::memory_order_seq_cst);
      if (f == nullptr) return;  // not started: its start sees the request (above)
      if (visit) {
        wake = abort_fiber(f, own);
        break;
      }
    }
    visit.emplace();  // then look again: the task may have finished meanwhile
  }
  if (wake != nullptr) wake->unpark();
  if (own != nullptr) {
    own->cancel();
    own->release();
  }
}

void TaskBase::rethrow_error() { std::rethrow_exception(std::exchange(error_, nullptr)); }

void TaskBase::release_handle(bool observed) noexcept {
  observed_ = observed;
  // A task a lone worker queued runs and ends on that worker's thread only
  // (no thief, no other worker; finish() and an inline join run there), and
  // its handle is on that thread too while the fiber that spawned it holds
  // it: nobody else can change refs_ now, so a load and a store will do
  // (relaxed: only this thread reads or writes refs_; finish()'s and
  // bind_task's loads come after on the same thread). At 1 the task is
  // done: release() frees it. Anywhere else (another fiber, a plain thread,
  // another runtime) the decrement below races with finish().
  if (lone_spawn_ && refs_.load(std::memory_order_relaxed) == 2) {
    // current_fiber(), with no call: nothing in this function parks before
    // it (current.hpp).
    const Worker* w = current_worker_at_entry();
    const Fiber* f = w != nullptr ? w->current_fiber() : nullptr;
    if (f != nullptr && fiber_id(f) == spawner_id_) {
      refs_.store(1, std::memory_order_relaxed);
      return;
    }
  }
  release();
}

void TaskBase::close_done_channel() noexcept { channel_close(done_channel_); }

ChannelCore* TaskBase::done_channel() {
  bool close_now = false;
  ChannelCore* c;
  {
    std::lock_guard<SpinLock> guard(join_lock_);
    if (done_channel_ == nullptr) {
      done_channel_ = channel_create(&elem_ops_for<std::monostate>, ChannelBuffer{}, "join");  // may throw
      close_now = done_.load(std::memory_order_relaxed);  // relaxed: changes only under join_lock_
    }
    c = done_channel_;
    channel_retain(c);
  }
  if (close_now) channel_close(c);
  return c;
}

// noinline: inlined into release_handle(), its report and delete made that
// function save registers on its lone-worker path too.
[[gnu::noinline]] void TaskBase::release() noexcept {
  // acquire: the count is 1 only once the other side's acq_rel decrement
  // happened (or on this thread), so its writes are visible; we are then the
  // only holder and need no read-modify-write.
  // acq_rel otherwise: release publishes this side's writes (observed_,
  // error_, the result); acquire lets the last releaser see the other side's.
  if (refs_.load(std::memory_order_acquire) != 1 && refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  destroy();
}

}  // namespace weft::detail
