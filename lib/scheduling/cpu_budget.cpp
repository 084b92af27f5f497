#include "scheduling/cpu_budget.hpp"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <thread>

namespace weft::detail {

namespace {

constexpr std::string_view k_spaces = " \t\r\n";

std::string_view trim(std::string_view s) noexcept {
  auto first = s.find_first_not_of(k_spaces);
  if (first == std::string_view::npos) return {};
  auto last = s.find_last_not_of(k_spaces);
  return s.substr(first, last - first + 1);
}

// A whole token of decimal digits that fits in 64 bits; no sign, no spaces.
std::optional<std::uint64_t> parse_u64(std::string_view token) noexcept {
  if (token.empty()) return std::nullopt;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
  if (ec != std::errc{} || end != token.data() + token.size()) return std::nullopt;
  return value;
}

// The whole file, or std::nullopt if it cannot be opened or read.
std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return std::nullopt;
  return text;
}

bool exists(const std::string& path) {
  std::ifstream in(path);
  return static_cast<bool>(in);
}

}  // namespace

std::optional<std::size_t> parse_cpu_max(std::string_view text) noexcept {
  text = trim(text);
  auto gap = text.find_first_of(k_spaces);
  if (gap == std::string_view::npos) return std::nullopt;  // one token ("max" alone, or garbage)
  std::string_view quota_text = text.substr(0, gap);
  std::string_view period_text = trim(text.substr(gap));
  if (period_text.find_first_of(k_spaces) != std::string_view::npos) return std::nullopt;  // three tokens
  auto period = parse_u64(period_text);
  if (!period || *period == 0) return std::nullopt;
  if (quota_text == "max") return std::nullopt;
  auto quota = parse_u64(quota_text);
  if (!quota || *quota == 0) return std::nullopt;
  // Rounded up without overflow: a quota near 2^64 must not wrap to a small count.
  std::uint64_t cpus = *quota / *period + (*quota % *period != 0 ? 1 : 0);
  if (cpus > SIZE_MAX) return SIZE_MAX;
  return static_cast<std::size_t>(cpus);
}

std::optional<std::string> parse_cgroup_v2_path(std::string_view proc_self_cgroup) {
  // Lines are "HIERARCHY-ID:CONTROLLERS:PATH"; the v2 hierarchy's is "0::PATH".
  while (!proc_self_cgroup.empty()) {
    auto newline = proc_self_cgroup.find('\n');
    std::string_view line = proc_self_cgroup.substr(0, newline);
    proc_self_cgroup = newline == std::string_view::npos ? std::string_view{} : proc_self_cgroup.substr(newline + 1);
    if (line.starts_with("0::")) {
      std::string_view path = trim(line.substr(3));
      if (path.empty() || path.front() != '/') return std::nullopt;
      return std::string(path);
    }
  }
  return std::nullopt;
}

std::optional<std::size_t> cgroup_cpu_limit(const std::string& mount_root, std::string_view path) {
  // A path outside our view of the tree ("/../x": the process sits above the
  // root of its cgroup namespace) names nothing we can read.
  if (path.empty() || path.front() != '/' || path.find("/..") != std::string_view::npos) return std::nullopt;
  std::optional<std::size_t> tightest;
  std::string level(path);
  while (true) {
    while (level.size() > 1 && level.back() == '/') level.pop_back();
    std::string file = mount_root + (level == "/" ? "" : level) + "/cpu.max";
    if (auto text = read_file(file)) {
      if (auto cpus = parse_cpu_max(*text)) tightest = tightest ? std::min(*tightest, *cpus) : *cpus;
    }
    if (level == "/") break;
    auto slash = level.rfind('/');
    level = slash == 0 ? "/" : level.substr(0, slash);
  }
  return tightest;
}

std::optional<std::size_t> process_cpu_limit() {
  auto self = read_file("/proc/self/cgroup");
  if (!self) return std::nullopt;
  auto path = parse_cgroup_v2_path(*self);
  if (!path) return std::nullopt;
  // The unified (v2) tree: at /sys/fs/cgroup on a v2-only machine, at
  // /sys/fs/cgroup/unified on a hybrid v1/v2 one. cgroup.controllers exists
  // only at the root of a v2 tree.
  for (const char* root : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    if (exists(std::string(root) + "/cgroup.controllers")) return cgroup_cpu_limit(root, *path);
  }
  return std::nullopt;
}

std::optional<std::size_t> affinity_cpu_count() noexcept {
  // The kernel's mask may be larger than cpu_set_t (1024 CPUs); it says so
  // with EINVAL, and we retry with a mask twice the size.
  for (int cpus = 1024; cpus <= (1 << 22); cpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(cpus);
    if (set == nullptr) return std::nullopt;
    std::size_t bytes = CPU_ALLOC_SIZE(cpus);
    int rc = sched_getaffinity(0, bytes, set);
    int err = errno;
    int count = rc == 0 ? CPU_COUNT_S(bytes, set) : 0;
    CPU_FREE(set);
    if (rc == 0) return count > 0 ? std::optional<std::size_t>(static_cast<std::size_t>(count)) : std::nullopt;
    if (err != EINVAL) return std::nullopt;
  }
  return std::nullopt;
}

std::size_t usable_cpu_count() noexcept {
  std::size_t cpus = 0;
  if (auto mask = affinity_cpu_count()) {
    cpus = *mask;
  } else {
    cpus = std::thread::hardware_concurrency();
  }
  try {
    if (auto limit = process_cpu_limit()) cpus = cpus == 0 ? *limit : std::min(cpus, *limit);
  } catch (...) {
    // Out of memory while reading a few short files: apply no quota.
  }
  return cpus == 0 ? 1 : cpus;
}

}  // namespace weft::detail
