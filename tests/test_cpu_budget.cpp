// The default worker count's inputs (lib/scheduling/cpu_budget.hpp): the
// cgroup v2 cpu.max parser, the /proc/self/cgroup parser and the walk up a
// (fake) cgroup tree, fed valid, unlimited, malformed and missing input; and
// default_worker_count() against the calling thread's affinity mask.
#include <doctest/doctest.h>
#include <sched.h>
#include <unistd.h>
#include <weft/weft.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "scheduling/cpu_budget.hpp"

namespace fs = std::filesystem;
using weft::detail::cgroup_cpu_limit;
using weft::detail::parse_cgroup_v2_path;
using weft::detail::parse_cpu_max;

TEST_CASE("cpu.max: a quota gives quota / period CPUs, rounded up, at least 1") {
  CHECK(parse_cpu_max("100000 100000") == 1u);
  CHECK(parse_cpu_max("200000 100000\n") == 2u);
  CHECK(parse_cpu_max("150000 100000") == 2u);     // 1.5 CPUs: round up
  CHECK(parse_cpu_max("200001 100000") == 3u);
  CHECK(parse_cpu_max("50000 100000") == 1u);      // half a CPU still needs one worker
  CHECK(parse_cpu_max("1000 1000000") == 1u);
  CHECK(parse_cpu_max("6400000 100000") == 64u);
  CHECK(parse_cpu_max("  300000   100000  \n") == 3u);  // spaces around and between
  CHECK(parse_cpu_max("300000\t100000") == 3u);
}

TEST_CASE("cpu.max: \"max\" means no limit") {
  CHECK_FALSE(parse_cpu_max("max 100000").has_value());
  CHECK_FALSE(parse_cpu_max("max 100000\n").has_value());
  CHECK_FALSE(parse_cpu_max("max").has_value());
}

TEST_CASE("cpu.max: malformed text is no limit, not a guess") {
  for (const char* text : {"", "\n", "   ", "garbage", "100000", "abc 100000", "100000 abc", "-100000 100000",
                           "100000 -100000", "+100000 100000", "1e5 100000", "100000 100000 100000",
                           "100000,100000", "0x100 100000", "100000 100000x", "MAX 100000", "max max"}) {
    CAPTURE(text);
    CHECK_FALSE(parse_cpu_max(text).has_value());
  }
}

TEST_CASE("cpu.max: a zero quota or period is rejected, not divided by") {
  CHECK_FALSE(parse_cpu_max("0 100000").has_value());
  CHECK_FALSE(parse_cpu_max("100000 0").has_value());
  CHECK_FALSE(parse_cpu_max("0 0").has_value());
  CHECK_FALSE(parse_cpu_max("max 0").has_value());
}

TEST_CASE("cpu.max: huge numbers neither wrap nor overflow") {
  // The largest 64-bit quota: ceil((2^64 - 1) / 1) without wrapping to 0.
  CHECK(parse_cpu_max("18446744073709551615 1") == static_cast<std::size_t>(UINT64_MAX));
  CHECK(parse_cpu_max("18446744073709551615 100000") == static_cast<std::size_t>(UINT64_MAX / 100000 + 1));
  CHECK(parse_cpu_max("1 18446744073709551615") == 1u);
  // One past 2^64 - 1, and far past it: not numbers we can hold.
  CHECK_FALSE(parse_cpu_max("18446744073709551616 100000").has_value());
  CHECK_FALSE(parse_cpu_max("100000 99999999999999999999999999").has_value());
}

TEST_CASE("/proc/self/cgroup: the v2 line's path, on v2-only and hybrid machines") {
  CHECK(parse_cgroup_v2_path("0::/\n") == "/");
  CHECK(parse_cgroup_v2_path("0::/user.slice/user-1000.slice/session-2.scope\n") ==
        "/user.slice/user-1000.slice/session-2.scope");
  CHECK(parse_cgroup_v2_path("12:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/docker/abc\n") ==
        "/docker/abc");
  CHECK(parse_cgroup_v2_path("0::/a b") == "/a b");  // no trailing newline, a space in the name
}

TEST_CASE("/proc/self/cgroup: no v2 line, or a malformed one, is no path") {
  CHECK_FALSE(parse_cgroup_v2_path("").has_value());
  CHECK_FALSE(parse_cgroup_v2_path("4:memory:/x\n1:cpu:/\n").has_value());  // cgroup v1 only
  CHECK_FALSE(parse_cgroup_v2_path("0::\n").has_value());
  CHECK_FALSE(parse_cgroup_v2_path("0::relative\n").has_value());
  CHECK_FALSE(parse_cgroup_v2_path("10::/x\n").has_value());  // hierarchy 10, not 0
}

namespace {

// A throwaway cgroup tree: files written under a fresh temporary directory,
// removed with it.
struct FakeCgroupTree {
  fs::path root;
  FakeCgroupTree() {
    std::string pattern = (fs::temp_directory_path() / "weft-cgroup-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    root = pattern;
  }
  ~FakeCgroupTree() {
    std::error_code ignored;
    fs::remove_all(root, ignored);
  }
  void cpu_max(const std::string& cgroup, const std::string& text) const {
    fs::path dir = root / cgroup.substr(1);
    fs::create_directories(dir);
    std::ofstream(dir / "cpu.max") << text;
  }
  void mkdir(const std::string& cgroup) const { fs::create_directories(root / cgroup.substr(1)); }
};

}  // namespace

TEST_CASE("cgroup tree: the tightest limit on the cgroup and its ancestors wins") {
  FakeCgroupTree tree;
  tree.cpu_max("/a", "400000 100000\n");
  tree.cpu_max("/a/b", "max 100000\n");
  tree.cpu_max("/a/b/c", "250000 100000\n");
  CHECK(cgroup_cpu_limit(tree.root.string(), "/a/b/c") == 3u);  // own 2.5 -> 3, under the parent's 4
  CHECK(cgroup_cpu_limit(tree.root.string(), "/a/b") == 4u);    // unlimited itself, capped by /a
  CHECK(cgroup_cpu_limit(tree.root.string(), "/a/b/") == 4u);   // a trailing slash
  tree.cpu_max("/a", "100000 100000\n");
  CHECK(cgroup_cpu_limit(tree.root.string(), "/a/b/c") == 1u);  // the parent is now tighter
}

TEST_CASE("cgroup tree: missing files, unlimited levels and garbage are no limit") {
  FakeCgroupTree tree;
  tree.mkdir("/x/y");
  CHECK_FALSE(cgroup_cpu_limit(tree.root.string(), "/x/y").has_value());  // no cpu.max anywhere
  CHECK_FALSE(cgroup_cpu_limit(tree.root.string(), "/").has_value());     // the root has none
  CHECK_FALSE(cgroup_cpu_limit(tree.root.string(), "/no/such/group").has_value());
  CHECK_FALSE(cgroup_cpu_limit((tree.root / "no-such-mount").string(), "/x/y").has_value());
  tree.cpu_max("/x", "max 100000\n");
  tree.cpu_max("/x/y", "garbage\n");
  CHECK_FALSE(cgroup_cpu_limit(tree.root.string(), "/x/y").has_value());
  tree.cpu_max("/x/y", "");
  CHECK_FALSE(cgroup_cpu_limit(tree.root.string(), "/x/y").has_value());
  // A path above the namespace's root, or not a path at all.
  CHECK_FALSE(cgroup_cpu_limit(tree.root.string(), "/../x").has_value());
  CHECK_FALSE(cgroup_cpu_limit(tree.root.string(), "").has_value());
  CHECK_FALSE(cgroup_cpu_limit(tree.root.string(), "x/y").has_value());
}

TEST_CASE("default worker count: at least 1 and at most the CPUs in the calling thread's affinity mask") {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  REQUIRE(sched_getaffinity(0, sizeof mask, &mask) == 0);
  std::size_t allowed = static_cast<std::size_t>(CPU_COUNT(&mask));
  std::size_t n = weft::default_worker_count();
  CHECK(n >= 1);
  CHECK(n <= allowed);
  CHECK(weft::detail::affinity_cpu_count() == allowed);
  if (auto limit = weft::detail::process_cpu_limit()) CHECK(n <= *limit);
}

TEST_CASE("default worker count: a thread pinned to one CPU gets 1, and a default Runtime started there has 1 worker" *
          doctest::timeout(60)) {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  REQUIRE(sched_getaffinity(0, sizeof mask, &mask) == 0);
  int first = 0;
  while (!CPU_ISSET(first, &mask)) ++first;
  std::size_t seen = 0;
  std::size_t workers = 0;
  std::size_t other_threads_count = weft::default_worker_count();
  std::thread pinned([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) return;  // this thread only; seen stays 0 and fails
    seen = weft::default_worker_count();
    weft::Runtime rt;
    workers = rt.num_workers();
  });
  pinned.join();
  CHECK(seen == 1);
  CHECK(workers == 1);
  CHECK(weft::default_worker_count() == other_threads_count);  // the main thread's mask is untouched
}
