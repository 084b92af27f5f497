// weft-soak: a seeded random mix of everything weft does, for a bounded time,
// checking invariants as it goes and at the end.
//
//   weft-soak [--seconds S] [--seed N] [--round-seconds R] [--rounds K] [--workers W]
//             [--only SCENARIO,...]
//
// The run is a sequence of rounds with seeds N, N+1, ...; each round starts a
// fresh Runtime with options drawn from its seed (1-4 workers unless
// --workers, stack size, stack cache, inline join, time slice), runs batches
// of concurrent scenarios (soak_*.cpp) until its time is up, and destroys the
// runtime. After every round:
//   fibers_alive = 0 and armed_timers = 0 (nothing leaked, no timer armed),
//   live channel values = 0: every value object ever put in, copied into or
//   taken out of a channel was destroyed exactly once (soak_channels.cpp),
// and at the end:
//   RSS after the last round ≤ baseline + max(32 MiB, baseline / 4), where the
//   baseline is the RSS after the first round (optimized builds; the
//   sanitizers keep freed memory in quarantine, so there it is only printed).
// Any violation prints the seed of the round (rerun it with --seed S
// --rounds 1) and aborts; so does a watchdog when no scenario completes for
// 120 s (600 s under a sanitizer), which catches hangs and lost wake-ups.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>

#include "diagnostics/sanitizers.hpp"
#include "soak.hpp"

namespace weft_soak {

namespace {
// relaxed: a value for messages; the round that sets it happens-before the
// scenarios it spawns (spawn synchronizes), and the watchdog only prints it.
std::atomic<std::uint64_t> g_seed{0};
constexpr bool k_sanitized = WEFT_ASAN || WEFT_TSAN;
}  // namespace

Stats& stats() noexcept {
  static Stats s;
  return s;
}

std::uint64_t current_seed() noexcept { return g_seed.load(std::memory_order_relaxed); }

void fail(const std::string& what) {
  std::fprintf(stderr, "weft-soak: FAILED (seed %llu): %s\n  rerun: weft-soak --seed %llu --rounds 1\n",
               static_cast<unsigned long long>(current_seed()), what.c_str(),
               static_cast<unsigned long long>(current_seed()));
  std::fflush(stderr);
  std::abort();
}

namespace {

using Clock = std::chrono::steady_clock;

// An assertion inside weft (or any abort) still names the seed to rerun.
// Async-signal-safe: a relaxed atomic load, write(2), and re-raising.
void on_abort(int sig) {
  char buf[96];
  std::uint64_t v = current_seed();
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  const char head[] = "weft-soak: aborted in the round with seed ";
  std::size_t len = 0;
  for (char c : head) {
    if (c != '\0') buf[len++] = c;
  }
  while (n > 0) buf[len++] = digits[--n];
  buf[len++] = '\n';
  (void)!::write(STDERR_FILENO, buf, len);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

struct Args {
  double seconds = 30;
  std::uint64_t seed = 1;
  double round_seconds = 5;
  std::uint64_t rounds = 0;  // 0: as many as fit
  std::size_t workers = 0;   // 0: drawn per round
  std::string only;          // comma-separated scenario names; empty: all
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "weft-soak: %s\nusage: weft-soak [--seconds S] [--seed N] [--round-seconds R] [--rounds K] "
               "[--workers W] [--only NAME,...]\n",
               why);
  std::exit(2);
}

double positive_number(const char* flag, const char* text) {
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(v > 0)) usage((std::string(flag) + " needs a positive number").c_str());
  return v;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + flag).c_str());
    const char* value = argv[++i];
    if (flag == "--seconds") {
      a.seconds = positive_number("--seconds", value);
    } else if (flag == "--seed") {
      a.seed = static_cast<std::uint64_t>(positive_number("--seed", value));
    } else if (flag == "--round-seconds") {
      a.round_seconds = positive_number("--round-seconds", value);
    } else if (flag == "--rounds") {
      a.rounds = static_cast<std::uint64_t>(positive_number("--rounds", value));
    } else if (flag == "--only") {
      a.only = std::string(",") + value + ",";
    } else if (flag == "--workers") {
      a.workers = static_cast<std::size_t>(positive_number("--workers", value));
      if (a.workers > 1024) usage("--workers must be 1 .. 1024");
    } else {
      usage(("unknown flag " + flag).c_str());
    }
  }
  return a;
}

std::size_t rss_kib() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) / 1024;
}

// Aborts with the seed when no scenario completes for `limit`.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit) : limit_(limit), thread_([this] { watch(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> hold(m_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  void watch() {
    std::unique_lock<std::mutex> lock(m_);
    std::uint64_t last = stats().progress.load(std::memory_order_relaxed);
    auto since = Clock::now();
    while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
      const std::uint64_t now = stats().progress.load(std::memory_order_relaxed);
      if (now != last) {
        last = now;
        since = Clock::now();
      } else if (Clock::now() - since > limit_) {
        fail("no scenario completed for " + std::to_string(limit_.count()) + " s (a hang or a lost wake-up)");
      }
    }
  }

  std::chrono::seconds limit_;
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by m_
  std::thread thread_;
};

struct Weighted {
  const char* name;
  Scenario run;
  unsigned weight;
};
constexpr Weighted k_scenarios[] = {
    {"channel_transfer", channel_transfer, 30}, {"select_fan_in", select_fan_in, 12},
    {"mutex_counter", mutex_counter, 14},       {"condvar_queue", condvar_queue, 10},
    {"semaphore_bound", semaphore_bound, 6},    {"spawn_tree", spawn_tree, 16},
    {"timers_and_blocking", timers_and_blocking, 12}, {"cancel_transfer", cancel_transfer, 12},
};

bool chosen(const Weighted& s, const Args& args) {
  return args.only.empty() || args.only.find(std::string(",") + s.name + ",") != std::string::npos;
}

Scenario draw_scenario(Rng& rng, const Args& args) {
  unsigned total = 0;
  for (const auto& s : k_scenarios) total += chosen(s, args) ? s.weight : 0;
  if (total == 0) usage("--only names no scenario");
  unsigned pick = static_cast<unsigned>(rng.below(total));
  for (const auto& s : k_scenarios) {
    if (!chosen(s, args)) continue;
    if (pick < s.weight) return s.run;
    pick -= s.weight;
  }
  return k_scenarios[0].run;
}

weft::Runtime::Options draw_options(Rng& rng, const Args& args) {
  weft::Runtime::Options o;
  o.workers = args.workers != 0 ? args.workers : rng.range(1, 4);
  const std::size_t stacks[] = {64 * 1024, 128 * 1024, 256 * 1024};
  o.stack_size = stacks[rng.below(3)];
  const std::size_t caches[] = {0, 4, 64};
  o.stack_cache = caches[rng.below(3)];
  o.inline_join = rng.chance(70);
  o.time_slice = rng.chance(50) ? std::chrono::milliseconds(1) : std::chrono::milliseconds(10);
  o.max_blocking_threads = rng.chance(20) ? 2 : 128;
  o.blocking_keep_alive = std::chrono::milliseconds(rng.range(1, 100));
  return o;
}

// Polls a counter that settles shortly after the last join (a fiber that
// signalled a WaitGroup is still finishing) until it reaches zero.
template <class Read>
void expect_settles_to_zero(Read read, const char* what) {
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  while (read() != 0) {
    if (Clock::now() > give_up) fail(std::string(what) + " is " + std::to_string(read()) + " after the round");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void run_round(std::uint64_t seed, double seconds, const Args& args) {
  g_seed.store(seed, std::memory_order_relaxed);
  Rng rng(seed);
  const weft::Runtime::Options options = draw_options(rng, args);
  weft::Runtime rt(options);
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  try {
    rt.block_on([&] {
      do {
        const std::size_t batch = rng.range(1, 6);
        std::vector<weft::JoinHandle<void>> running;
        for (std::size_t i = 0; i < batch; ++i) {
          Scenario scenario = draw_scenario(rng, args);
          running.push_back(weft::go([&rt, scenario, sub = rng.next()] {
            Rng mine(sub);
            scenario(rt, mine);
            stats().add(stats().scenarios);
          }));
        }
        for (auto& h : running) h.join();
      } while (Clock::now() < end);
    });
  } catch (const weft::Deadlock& e) {
    fail(std::string("unexpected weft::Deadlock: ") + e.what());
  } catch (const std::exception& e) {
    fail(std::string("unexpected exception: ") + e.what());
  }
  expect_settles_to_zero([&] { return rt.metrics().fibers_alive; }, "fibers_alive");
  expect_settles_to_zero([&] { return rt.metrics().armed_timers; }, "armed_timers");
  expect_settles_to_zero([&] { return rt.metrics().blocking_in_flight; }, "blocking_in_flight");
}

}  // namespace
}  // namespace weft_soak

int main(int argc, char** argv) {
  using namespace weft_soak;
  const Args args = parse(argc, argv);
  ::signal(SIGABRT, &on_abort);
  Watchdog watchdog(std::chrono::seconds(k_sanitized ? 600 : 120));
  const auto start = Clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };

  std::size_t baseline = 0;
  std::size_t peak = 0;
  std::uint64_t rounds = 0;
  std::uint64_t seed = args.seed;
  while ((args.rounds == 0 || rounds < args.rounds) && (rounds == 0 || elapsed() < args.seconds)) {
    const double left = args.seconds - elapsed();
    const double length = args.rounds != 0 ? args.round_seconds : std::max(0.05, std::min(args.round_seconds, left));
    run_round(seed, length, args);
    // The round's runtime is gone: so is every channel and value its
    // scenarios made. (Still in the round's seed for fail().)
    SOAK_CHECK(live_channel_values() == 0, "channel values not destroyed, or destroyed twice, after the round: " +
                                               std::to_string(live_channel_values()) + " alive");
    ::malloc_trim(0);
    const std::size_t rss = rss_kib();
    if (rounds == 0) baseline = rss;
    peak = std::max(peak, rss);
    ++rounds;
    ++seed;
  }
  const std::size_t final_rss = rss_kib();
  auto& s = stats();
  const auto value = [](const std::atomic<std::uint64_t>& c) {
    return static_cast<unsigned long long>(c.load(std::memory_order_relaxed));
  };
  std::printf(
      "weft-soak: %llu rounds (seeds %llu..%llu), %.1f s, %llu scenarios, %llu operations, %llu fibers; "
      "messages accepted %llu = received %llu + dropped %llu; fibers alive 0, timers armed 0, channel values "
      "alive 0 after every round; "
      "rss baseline %zu KiB, peak %zu KiB, end %zu KiB\n",
      static_cast<unsigned long long>(rounds), static_cast<unsigned long long>(args.seed),
      static_cast<unsigned long long>(seed - 1), elapsed(), value(s.scenarios), value(s.ops), value(s.fibers),
      value(s.accepted), value(s.received), value(s.dropped), baseline, peak, final_rss);
  g_seed.store(args.seed, std::memory_order_relaxed);
  // No check of Σ accepted = Σ received + Σ dropped here: every scenario
  // checks that equation for its own channels (soak_channels.cpp) before it
  // adds its counts, so the sum of the checked equations could not fail.
  if (!k_sanitized) {
    const std::size_t slack = std::max<std::size_t>(32 * 1024, baseline / 4);
    SOAK_CHECK(final_rss <= baseline + slack, "RSS did not return to its baseline after the load");
  }
  return 0;
}
