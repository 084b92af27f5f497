// Fiber: the control block of a task that has started running. It lives at
// the top of the fiber's own stack, so a started task costs no allocation
// beyond its stack, and a not-yet-started task has neither.
//
// States (asserted by the worker at each transition):
//   running   on exactly one worker, which set Worker::current_ to it
//   parked    switched out; referenced only by the Waiter it parked on
//             (and the worker's registry of live fibers, for shutdown)
//   runnable  in a worker's deque or the injector after a yield or a wake-up
//   finished  switched out for the last time; the stack returns to a pool
//
// park_state is the park/unpark handshake (see waiter.hpp): the fiber parks
// by switching to its worker, and only after the switch, when the context is
// saved, does the worker try running -> parked. An unparker that finds
// `parked` schedules the fiber; one that finds `running` leaves `notified`
// behind, and the worker's CAS then fails and re-queues the fiber itself.
// So a fiber is never resumed before its context has been saved, and a
// wake-up that races with parking is never lost.
#pragma once

#include <atomic>
#include <cstdint>

#include "scheduling/context_switch.hpp"
#include "scheduling/stack_pool.hpp"
#include "weft/detail/spin_lock.hpp"
#include "weft/park_reason.hpp"

namespace weft::detail {

class TaskBase;
class Scheduler;
class Waiter;
class CancelState;
class FiberLocals;

inline constexpr std::uint32_t k_park_running = 0;
inline constexpr std::uint32_t k_park_parked = 1;
inline constexpr std::uint32_t k_park_notified = 2;

// this_fiber::maybe_yield()'s first guess of calls per clock read.
inline constexpr std::uint32_t k_initial_slice_calls = 256;

struct Fiber {
  TaskBase* task = nullptr;
  Scheduler* scheduler = nullptr;
  ExecContext context;
  Stack stack;
  // See the header comment. Written by the owning worker (running->parked,
  // reset to running) and by one unparker per park (exchange to notified).
  std::atomic<std::uint32_t> park_state{k_park_running};
  // The waiter this fiber is parked on, for cancellation and for
  // diagnostics. Written by the fiber (publish_parked_on, clear_parked_on);
  // someone who reaches a waiter through its fiber (not through a wait
  // list) does so inside a WaitVisit and reads and uses it under wait_lock,
  // so the waiter cannot vanish meanwhile (sync/wait_visit.hpp; waiter.hpp's
  // lifetime rule).
  SpinLock wait_lock;
  std::atomic<Waiter*> parked_on{nullptr};
  // The fiber's innermost cancellation scope (cancel_state.hpp), holding a
  // reference, or nullptr (the root: only shutdown cancels it). Written by
  // the fiber itself (CancelScope, TaskGroup) and read by it.
  CancelState* scope = nullptr;
  // References on `scope` taken ahead for the children this fiber spawns
  // (spawn_reference in cancel_state.hpp): one atomic add per batch instead
  // of one per spawn. Given back when the fiber leaves `scope` or ends. The
  // fiber's own.
  std::uint32_t scope_credits = 0;
  // The scope whose members list holds the fiber (with a reference), so
  // that a cancel finds its parked wait: joined lazily, by the fiber's
  // first cancellable park in `scope` (a fiber that never parks never
  // touches the scope's lock). The fiber's own; the links are guarded by
  // that scope's lock.
  CancelState* member_of = nullptr;
  Fiber* scope_prev = nullptr;
  Fiber* scope_next = nullptr;
  // Nesting depth of ShieldCancel (cancel_state.hpp): while non-zero, the
  // fiber's waits are not ended by a cancelled scope. The fiber's own.
  std::uint32_t cancel_shield = 0;
  // JoinHandle::cancel() of this fiber's task (TaskBase::request_cancel):
  // its waits throw weft::Cancelled as if its scope were cancelled. Set
  // once; relaxed reads by the fiber (the claim of its waiter orders the
  // wake-up).
  std::atomic<bool> aborted{false};
  // The scope this fiber made for itself the first time it opened a
  // CancelScope or a TaskGroup (ensure_own_scope), so that cancelling its
  // task reaches them: a child of the scope it was spawned in. Written by
  // the fiber under wait_lock, read by request_cancel() under wait_lock.
  CancelState* own_scope = nullptr;
  // The fiber's FiberLocal values (fiber_local.hpp), made on first use and
  // destroyed by the fiber when its body has returned. The fiber's own.
  FiberLocals* locals = nullptr;
  // The running task's id (TaskBase::id_, given at spawn from the spawning
  // worker's batch: task_ids.hpp), copied in when a task binds to the fiber
  // (bind_task; a reused fiber takes the next task's id). A task joined
  // inline runs on its joiner's fiber and keeps the joiner's id. Written by
  // the worker binding a task (relaxed store: a plain mov), read by anyone
  // (this_fiber::id, the dump, deadlock and overflow reports) relaxed: the id
  // is only a number, and readers that need it consistent with the fiber's
  // other fields reach the fiber through a lock or a queue hand-off.
  std::atomic<std::uint64_t> id{0};
  // Who spawned the running task: the spawner fiber's id, 0 for a plain
  // thread (TaskBase::spawner_id_). Written with `id`; read by the dump
  // under the registry lock (live_fibers.hpp orders it).
  std::uint64_t spawner_id = 0;
  // The fiber's name (NUL-terminated, owned, nullptr: unnamed), taken over
  // from its task at bind time or set by this_fiber::set_name. A named fiber
  // is listed in the live registry from its start (so the dump can show a
  // running named fiber's name), which also keeps it from being reused.
  // Written by the fiber (or its worker at bind) under wait_lock once
  // listed; read by the dump under wait_lock.
  char* name = nullptr;
  // When the current park began (time/park_stamp.hpp), for the dump's
  // "parked 3.2 s". Written by the fiber just before it publishes
  // parked_on; read by a visitor under wait_lock after it read parked_on
  // (sync/wait_visit.hpp says why no park overwrites it meanwhile).
  std::uint64_t park_stamp = 0;
  // this_fiber::maybe_yield(): calls between two clock reads, calibrated to
  // about 50 us of this fiber's loop (time_slice.cpp). Running worker only.
  std::uint32_t slice_calls_per_read = k_initial_slice_calls;
  // Registry of live fibers (LiveFibers): intrusive links and the shard.
  // A fiber is listed from its first park on (only parked fibers are ever
  // looked for there), so one that never parks costs no registry lock.
  // live_listed is written by the worker parking the fiber, before the park
  // is published, and read by the worker finishing it: the queue hand-offs
  // between them order the accesses.
  // What the fiber's current (or last) wait is for: written by the fiber in
  // Waiter::park() before it parks, read by the worker counting the park and
  // by the one counting the resume (park_counts.hpp); the park hand-off
  // orders both reads after the write.
  ParkReason park_reason = ParkReason::other;
  Fiber* live_prev = nullptr;
  Fiber* live_next = nullptr;
  std::uint32_t live_shard = 0;
  bool live_listed = false;
};

// The fiber's id (see Fiber::id). Any thread; a relaxed load.
inline std::uint64_t fiber_id(const Fiber* f) noexcept { return f->id.load(std::memory_order_relaxed); }

// The unparker's side of the park_state handshake (top of this file): makes
// a parked (or parking) fiber runnable again. Called once per park, by
// whoever won the fiber's Waiter (Waiter::unpark); defined in worker.cpp.
void unpark_fiber(Fiber* fiber) noexcept;

}  // namespace weft::detail
