// CPU-bound processes that spin beside a measurement: the contended timers
// workload (time_workloads.cpp) measures how late sleepers wake when every
// core also has a process that never sleeps, as on a loaded machine.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <vector>

namespace bench {

// `count` child processes, each spinning in a tight loop, alive from the
// constructor (which returns once every one has started running) to the
// destructor (which SIGKILLs and reaps each). The children are forked, not
// exec'd, and touch nothing but a volatile counter, so forking from a
// process with other threads is safe.
//
// They must never outlive the measurement. Unwinding (a workload throws)
// runs the destructor; for the ways out that skip it (std::exit from a
// wrong answer, an abort, a signal) each child has asked the kernel to
// SIGKILL it when its parent thread dies (PR_SET_PDEATHSIG). That is the
// thread that constructed the CpuHogs, so construct it on a thread that
// outlives it (weft-bench's main thread), never on a worker.
class CpuHogs {
 public:
  // Throws std::system_error if a process cannot be started (those already
  // started are stopped first).
  explicit CpuHogs(std::size_t count);
  ~CpuHogs();
  CpuHogs(const CpuHogs&) = delete;
  CpuHogs& operator=(const CpuHogs&) = delete;

  std::size_t size() const noexcept { return pids_.size(); }

 private:
  void stop() noexcept;
  std::vector<pid_t> pids_;
};

}  // namespace bench
