// How many CPUs this process may actually use: the calling thread's affinity
// mask and the CPU quota of its cgroup (v2), whichever is smaller. This is
// what weft::default_worker_count() returns; std::thread::hardware_concurrency()
// counts every online CPU, so under `taskset -c 0` or in a container limited
// to 2 CPUs on a 64-core host it would start one worker per host CPU, and the
// extra workers only steal time from each other.
//
// The parsers are pure functions (text in, answer out) so that tests can feed
// them any input; the readers take the file-system root as an argument so
// that tests can point them at a fake cgroup tree.
//
// Contract: every function may be called from any thread at any time; none
// blocks beyond reading a few small files under /proc and /sys. None throws:
// an unreadable or malformed file counts as "no limit known".
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace weft::detail {

// The CPU limit written in a cgroup v2 `cpu.max` file, whose one line is
// "$QUOTA $PERIOD" (microseconds of CPU time allowed per period), or
// "max $PERIOD" for no limit. Returns ceil(QUOTA / PERIOD), so "150000 100000"
// (1.5 CPUs) gives 2 and "50000 100000" gives 1. Returns std::nullopt for
// "max", and for anything that is not two decimal numbers with a positive
// quota and period (empty text, garbage, a zero, a number too big for 64 bits):
// the caller then applies no limit rather than guessing one.
std::optional<std::size_t> parse_cpu_max(std::string_view text) noexcept;

// The cgroup v2 path of the process, from the text of /proc/self/cgroup: the
// PATH of the line "0::PATH" (for example "/user.slice/session-2.scope", or
// "/" inside a container with its own cgroup namespace). std::nullopt when
// there is no such line (a machine with cgroup v1 only).
std::optional<std::string> parse_cgroup_v2_path(std::string_view proc_self_cgroup);

// The tightest cpu.max limit on cgroup `path` (as parse_cgroup_v2_path gives
// it) and on each of its ancestors below the root, read from the cgroup v2
// tree mounted at `mount_root` (for example "/sys/fs/cgroup"): a parent's
// limit caps its children too. Files that are missing or unreadable count as
// no limit; std::nullopt when no level has one.
std::optional<std::size_t> cgroup_cpu_limit(const std::string& mount_root, std::string_view path);

// The same for this process: finds its cgroup through /proc/self/cgroup and
// the v2 tree at /sys/fs/cgroup (or /sys/fs/cgroup/unified on a hybrid
// v1/v2 machine).
std::optional<std::size_t> process_cpu_limit();

// The number of CPUs in the calling thread's affinity mask (sched_getaffinity,
// with a mask grown until the kernel's fits); std::nullopt if it cannot be read.
std::optional<std::size_t> affinity_cpu_count() noexcept;

// min(affinity_cpu_count() or else hardware_concurrency(), process_cpu_limit()),
// and at least 1.
std::size_t usable_cpu_count() noexcept;

}  // namespace weft::detail
