// Stack overflow: a fiber that overflows its stack is reported by name and
// size and the process aborts; every other fault keeps its usual behaviour.
// Each case runs death_child in a subprocess.
#include <doctest/doctest.h>

#include <signal.h>

#include <cstdlib>

#include <string>

#include "death_test.hpp"
#include "diagnostics/sanitizers.hpp"

using weft_test::killed_by;
using weft_test::Outcome;
using weft_test::run_child;

namespace {

constexpr const char* k_report = "weft: stack overflow in fiber ";

}  // namespace

TEST_CASE("stack overflow: names the fiber and the stack size, hints at stack_size, and aborts" *
          doctest::timeout(60)) {
  for (const char* mode : {"overflow", "big-frame"}) {
    CAPTURE(mode);
    const Outcome o = run_child(mode);
    CAPTURE(o.output);
    CHECK(killed_by(o, SIGABRT));
    CHECK(o.output.find(k_report) != std::string::npos);
    CHECK(o.output.find("(stack 65536 bytes)") != std::string::npos);
    CHECK(o.output.find("Options::stack_size") != std::string::npos);
    CHECK(o.output.find("survived") == std::string::npos);
  }
}

// Issue 17: every stack has a guard page, however many fibers are alive (the
// fallback for kernels without MADV_GUARD_INSTALL, forced by
// WEFT_STACK_GUARDS=mapped, runs out of mappings past a quarter of
// vm.max_map_count and catches an overflow by a canary only when the fiber
// switches out, which a recursing fiber never does). Not under TSan, which
// counts every fiber as a thread and stops at 8128.
TEST_CASE("stack overflow: reported with 20,000 other fibers parked" * doctest::timeout(120) *
          doctest::skip(WEFT_TSAN || std::getenv("WEFT_STACK_GUARDS") != nullptr)) {
  const Outcome o = run_child("overflow-many");
  CAPTURE(o.output);
  CHECK(killed_by(o, SIGABRT));
  CHECK(o.output.find(k_report) != std::string::npos);
  CHECK(o.output.find("(stack 65536 bytes)") != std::string::npos);
  CHECK(o.output.find("no guard page") == std::string::npos);
}

TEST_CASE("stack overflow: a fiber that uses most of its stack runs normally" * doctest::timeout(60)) {
  const Outcome o = run_child("deep-ok");
  CAPTURE(o.output);
  CHECK(WIFEXITED(o.status));
  CHECK(WEXITSTATUS(o.status) == 0);
  CHECK(o.output.find("deep-ok") != std::string::npos);
  CHECK(o.output.find(k_report) == std::string::npos);
}

TEST_CASE("stack overflow: other faults keep their normal crash behaviour" * doctest::timeout(60)) {
  for (const char* mode : {"fault-fiber", "fault-thread"}) {
    CAPTURE(mode);
    const Outcome o = run_child(mode);
    CAPTURE(o.output);
    CHECK(o.output.find(k_report) == std::string::npos);
    CHECK(o.output.find("survived") == std::string::npos);
    if (WEFT_ASAN) {
      // AddressSanitizer's handler was there first: it reports the SEGV.
      CHECK(o.output.find("SEGV") != std::string::npos);
      CHECK(!(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0));
    } else if (WEFT_TSAN) {
      CHECK(!(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0));
    } else {
      CHECK(killed_by(o, SIGSEGV));
    }
  }
}

TEST_CASE("stack overflow: a SIGSEGV handler the program installed first still gets other faults" *
          doctest::timeout(60)) {
  const Outcome o = run_child("user-handler");
  CAPTURE(o.output);
  CHECK(WIFEXITED(o.status));
  CHECK(WEXITSTATUS(o.status) == 42);
  CHECK(o.output.find("user handler ran") != std::string::npos);
  CHECK(o.output.find(k_report) == std::string::npos);
}
