#include "diagnostics/activity.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <vector>

#include "scheduling/current.hpp"
#include "scheduling/scheduler.hpp"
#include "sync/waiter.hpp"
#include "weft/deadlock.hpp"
#include "weft/mutex.hpp"  // WEFT_API declarations of plain_holder_enter/leave

namespace weft::detail {

namespace activity {

namespace {

// See the header. All RMWs and loads are seq_cst: the detector's two loads
// must be ordered against the runtimes' idle counters (also seq_cst RMWs),
// and the watcher registration is a Dekker pair with leave()'s decrement.
std::atomic<std::uint64_t> g_word{0};

std::atomic<std::size_t> g_num_watchers{0};  // seq_cst; see signal_watchers()
std::mutex g_watchers_lock;                   // guards g_watchers
std::vector<Waiter*> g_watchers;

std::mutex g_runtimes_lock;  // guards g_runtimes; held while checking them
std::vector<Scheduler*> g_runtimes;

}  // namespace

void enter() noexcept { g_word.fetch_add(k_active_one + k_epoch_one, std::memory_order_seq_cst); }

void leave() noexcept {
  const std::uint64_t before = g_word.fetch_sub(k_active_one, std::memory_order_seq_cst);
  if (active_of(before) == 1) signal_watchers();
}

void bump_epoch() noexcept { g_word.fetch_add(k_epoch_one, std::memory_order_seq_cst); }

std::uint64_t snapshot() noexcept { return g_word.load(std::memory_order_seq_cst); }

void add_watcher(Waiter* waiter) {
  std::lock_guard<std::mutex> guard(g_watchers_lock);
  g_watchers.push_back(waiter);
  // seq_cst: the watcher checks the idle state after this increment; a
  // thread that makes the process idle afterwards reads the count (seq_cst)
  // after its own change, so one of the two sees the other.
  g_num_watchers.fetch_add(1, std::memory_order_seq_cst);
}

void remove_watcher(Waiter* waiter) noexcept {
  std::lock_guard<std::mutex> guard(g_watchers_lock);
  auto it = std::find(g_watchers.begin(), g_watchers.end(), waiter);
  if (it != g_watchers.end()) {
    g_watchers.erase(it);
    g_num_watchers.fetch_sub(1, std::memory_order_seq_cst);
  }
}

void signal_watchers() noexcept {
  if (g_num_watchers.load(std::memory_order_seq_cst) == 0) return;
  std::lock_guard<std::mutex> guard(g_watchers_lock);
  for (Waiter* w : g_watchers) w->poke();
}

void register_scheduler(Scheduler* s) {
  std::lock_guard<std::mutex> guard(g_runtimes_lock);
  g_runtimes.push_back(s);
}

void unregister_scheduler(Scheduler* s) noexcept {
  std::lock_guard<std::mutex> guard(g_runtimes_lock);
  g_runtimes.erase(std::remove(g_runtimes.begin(), g_runtimes.end(), s), g_runtimes.end());
}

bool all_runtimes_idle() {
  std::lock_guard<std::mutex> guard(g_runtimes_lock);
  for (Scheduler* s : g_runtimes) {
    if (!s->idle_and_empty()) return false;
  }
  return true;
}

Kick kick_sleeping_worker() noexcept {
  std::lock_guard<std::mutex> guard(g_runtimes_lock);
  bool running = false;
  for (Scheduler* s : g_runtimes) {
    if (s->exiting()) continue;
    running = true;
    if (s->kick_sleeping_worker()) return Kick::kicked;
  }
  return running ? Kick::all_busy : Kick::no_runtime;
}

}  // namespace activity

bool on_plain_thread() noexcept { return current_worker() == nullptr; }

void plain_holder_enter() noexcept { activity::enter(); }

void plain_holder_leave() noexcept { activity::leave(); }

}  // namespace weft::detail

namespace weft {

ExternalWaker::ExternalWaker() noexcept { detail::activity::enter(); }

ExternalWaker::~ExternalWaker() {
  if (active_) detail::activity::leave();
}

}  // namespace weft
