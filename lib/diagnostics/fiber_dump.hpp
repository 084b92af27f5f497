// The fiber dump (Runtime::dump) and the per-fiber line that deadlock
// reports share with it:
//
//   fiber 17 "fetch" [parked 3.2 s] recv on channel "jobs" (0x...); spawned by fiber 3 "main"
//   fiber 5 [running on worker 1]; spawned by a plain thread
//
// What is listed (docs/guide/seeing-inside.md says it for users):
//   - every fiber in the live registry (live_fibers.hpp): fibers that have
//     parked at least once and not finished, and named fibers from their
//     start (a name lists its fiber: worker.cpp, bind_task). Each shows its
//     state: parked (with what it waits on and for how long), running on a
//     worker, or runnable (woken or yielded, waiting for a worker);
//   - the fiber each worker runs now, even if it never parked (id only:
//     its other fields are not safe to read from another thread);
//   - not listed: tasks queued that never ran, and fibers that never parked
//     and have no name while they are not running (queued after a yield).
//     The header counts what each worker and shared queue holds instead.
//
// Fiber references in descriptions: a Waiter description that names a
// fiber (a join target, a mutex holder) writes it with append_fiber_ref(),
// a marker that resolve_fiber_refs() turns into `fiber 12 "writer"` (with
// the name when the fiber is listed) or `fiber 12`. Anyone printing a
// Waiter description resolves it first.
//
// Contract: any thread; never parks. Opens a WaitVisit (one heavy barrier:
// sync/wait_visit.hpp), then takes each registry shard's lock and, under
// it, each listed fiber's wait_lock, for the time of a few copies and one
// description.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "weft/detail/deadline.hpp"

namespace weft::detail {

class Scheduler;

// Appends a reference to fiber `id` (see above).
void append_fiber_ref(std::string& out, std::uint64_t id);

// Appends a human duration: "850 us", "15 ms", "3.2 s", "120 s".
void append_duration(std::string& out, Nanos ns);

// One listed fiber, copied out under its locks.
struct FiberEntry {
  enum class State { parked, running, runnable };
  std::uint64_t id = 0;
  std::uint64_t spawner_id = 0;
  bool listed = true;      // in the registry (else: a worker's running fiber seen only by id)
  bool named = false;
  std::string name;
  State state = State::runnable;
  std::size_t worker = 0;  // State::running
  Nanos parked_ns = 0;     // State::parked: for how long
  std::string waits_on;    // State::parked: the Waiter's description, unresolved
};

// The listed fibers of `s`, each worker's running fiber, in registry order.
// parked_only: only the parked ones (a deadlock report).
std::vector<FiberEntry> collect_fibers(Scheduler& s, bool parked_only);

// id -> name of the named entries, for resolve_fiber_refs.
using FiberNames = std::unordered_map<std::uint64_t, std::string>;
FiberNames names_of(const std::vector<FiberEntry>& entries);

// `text` with its fiber references written out (see above).
std::string resolve_fiber_refs(std::string_view text, const FiberNames& names);

// Whether `text` holds a fiber reference's marker bytes.
bool has_fiber_refs(std::string_view text) noexcept;

// Removes the marker bytes from `text` in place ("fiber \x1e12\x1f" becomes
// "fiber 12"): for when resolve_fiber_refs cannot allocate. Never throws.
void strip_fiber_ref_markers(std::string& text) noexcept;

// One line (no newline) for `e`.
std::string format_fiber_line(const FiberEntry& e, const FiberNames& names);

// Runtime::dump().
std::string dump_runtime(Scheduler& s);

}  // namespace weft::detail
