// Deadlock detection (the rule is in include/weft/deadlock.hpp) and the
// report of what each parked fiber waits on.
//
// Why the check is sound: activity.hpp argues that once active == 0 and
// every runtime is idle at one moment, nothing can become active again
// without bumping the epoch. find_deadlock reads the activity word, checks
// every runtime, and reads the word again; an unchanged word means no worker
// was woken and no plain thread became active between the two reads, so the
// idle state it saw held at the second read (the counters can only have
// fallen in between, and they read zero) and still holds. The count of
// outside threads is read between the two reads for the same reason: a
// blocked plain thread is counted active again before it stops counting as
// blocked, and a thread that enters weft bumps the epoch.
//
// Contract: any plain thread; takes the runtime registry lock and each live
// fiber's wait_lock briefly, inside a WaitVisit (sync/wait_visit.hpp).
#pragma once

#include <optional>
#include <string>

namespace weft::detail {

class Scheduler;

// What find_deadlock saw.
struct DeadlockCheck {
  // The report for weft::Deadlock if the process is deadlocked now, listing
  // the parked fibers of `s`; std::nullopt if anything could still act.
  std::optional<std::string> report;
  // No report only because a thread outside weft exists
  // (outside_threads.hpp): nothing will poke the watcher when that thread
  // exits, so the caller looks again after a while.
  bool outside_thread = false;
};
DeadlockCheck find_deadlock(Scheduler& s);

}  // namespace weft::detail
