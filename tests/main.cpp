// The test programs' main: doctest's own, plus a watchdog for hangs.
//
// A hung test used to leave nothing behind: meson kills the program at its
// timeout and prints what it wrote, which for a hang is nothing. The
// watchdog names the test case still running when either limit passes, the
// case's own (its doctest::timeout decorator, a limit doctest would fail it
// for anyway) or the program's (WEFT_TEST_TIMEOUT_S, meson's timeout for
// this program, set by tests/meson.build: the watchdog fires at 95 % of it,
// before meson's kill), prints every thread's backtrace through gdb where
// gdb is installed, and aborts. An abort is a failed test: meson prints
// this output with --print-errorlogs.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <pthread.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

class Watchdog {
 public:
  void start() {
    std::lock_guard<std::mutex> guard(lock_);
    if (thread_.joinable()) return;
    stop_ = false;
    run_deadline_ = Clock::time_point::max();
    if (const char* s = std::getenv("WEFT_TEST_TIMEOUT_S")) {
      const long seconds = std::strtol(s, nullptr, 10);
      if (seconds > 0) {
        run_limit_s_ = seconds;
        run_deadline_ = Clock::now() + std::chrono::milliseconds(seconds * 950);
      }
    }
    thread_ = std::thread([this] { watch(); });
    // The "weft-" prefix marks weft's own threads, which deadlock detection
    // does not count as outside threads that could still call in
    // (lib/diagnostics/outside_threads.hpp). This one never calls in: named
    // otherwise, it would keep every deadlock report back. Not "weft-w...":
    // the idle tests count the workers by that prefix. Named before any test
    // case runs a runtime.
    pthread_setname_np(thread_.native_handle(), "weft-test-wdog");
  }

  void stop() {
    // From the watchdog itself: its abort() runs doctest's crash report,
    // which ends the run (below, it holds no lock).
    if (std::this_thread::get_id() == thread_.get_id()) return;
    {
      std::lock_guard<std::mutex> guard(lock_);
      stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  void case_started(const char* name, double limit_s) {
    std::lock_guard<std::mutex> guard(lock_);
    case_name_ = name;
    case_started_ = Clock::now();
    case_limit_s_ = limit_s;
    case_deadline_ = limit_s > 0 ? case_started_ + std::chrono::milliseconds(static_cast<long long>(limit_s * 1000))
                                 : Clock::time_point::max();
    wake_.notify_all();
  }

  void case_ended() {
    std::lock_guard<std::mutex> guard(lock_);
    case_name_.clear();
    case_deadline_ = Clock::time_point::max();
  }

 private:
  void watch() {
    std::unique_lock<std::mutex> lock(lock_);
    for (;;) {
      if (stop_) return;
      const Clock::time_point deadline = std::min(case_deadline_, run_deadline_);
      if (Clock::now() >= deadline) break;
      if (deadline == Clock::time_point::max()) {
        wake_.wait(lock);
      } else {
        wake_.wait_until(lock, deadline);
      }
    }
    const double in_case_s = std::chrono::duration<double>(Clock::now() - case_started_).count();
    const bool case_limit = case_deadline_ <= run_deadline_;
    std::fprintf(stderr,
                 "\nweft test watchdog: test case \"%s\" still running after %.1f s (%s: %.0f s); "
                 "every thread's backtrace follows, then abort\n",
                 case_name_.empty() ? "(none)" : case_name_.c_str(), in_case_s,
                 case_limit ? "its doctest::timeout" : "95 % of the program's meson timeout",
                 case_limit ? case_limit_s_ : static_cast<double>(run_limit_s_));
    std::fflush(stderr);
    lock.unlock();
    print_backtraces();
    std::abort();
  }

  // gdb attached to this process, its output on our stderr. Yama may only
  // let an ancestor trace us: allow any tracer first.
  static void print_backtraces() {
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    const std::string pid = std::to_string(getpid());
    const pid_t child = fork();
    if (child == 0) {
      dup2(2, 1);
      execlp("gdb", "gdb", "-nx", "-batch", "-p", pid.c_str(), "-ex", "thread apply all bt 40", static_cast<char*>(nullptr));
      std::fprintf(stderr, "weft test watchdog: gdb not found; no backtraces\n");
      _exit(127);
    }
    if (child > 0) waitpid(child, nullptr, 0);
  }

  std::mutex lock_;
  std::condition_variable wake_;
  std::thread thread_;
  bool stop_ = false;
  std::string case_name_;
  Clock::time_point case_started_{};
  double case_limit_s_ = 0;
  Clock::time_point case_deadline_ = Clock::time_point::max();
  long run_limit_s_ = 0;
  Clock::time_point run_deadline_ = Clock::time_point::max();
};

// Never destroyed: a test that leaves through exit() must not meet a
// joinable std::thread in a static destructor.
Watchdog& g_watchdog = *new Watchdog;

// Tells the watchdog which case runs; reports nothing itself.
struct WatchdogListener : doctest::IReporter {
  explicit WatchdogListener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override { g_watchdog.start(); }
  void test_run_end(const doctest::TestRunStats&) override { g_watchdog.stop(); }
  void test_case_start(const doctest::TestCaseData& tc) override { g_watchdog.case_started(tc.m_name, tc.m_timeout); }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override { g_watchdog.case_ended(); }
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

REGISTER_LISTENER("weft_watchdog", 1, WatchdogListener);

}  // namespace
