// Waking a plain thread: once the waker has let the thread go, it must touch
// nothing of that thread's, because the thread may return from its weft call,
// exit, and have its stack and thread-local storage unmapped at once.
// Regression test: the waker used to store the "you may go" flag and then
// write a token into the woken thread's thread-local parker; a thread that
// saw the flag first (its timed wait timed out just then) could be gone by
// that write.
//
// The window is a few instructions wide, so the test widens it through a
// test seam in lib/sync/waiter.hpp: a hook the waker calls right after the store
// that lets the thread go. The hook waits until the woken thread has exited
// and its stack (with its TLS: glibc places the TLS of a thread with a
// caller-provided stack inside that stack) has been unmapped. Any access the
// waker still makes to the thread's memory then faults.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <pthread.h>
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "support.hpp"
#include "sync/waiter.hpp"
#include "weft/detail/channel_core.hpp"

using namespace std::chrono_literals;

namespace {

std::atomic<bool> g_hook_armed{false};
std::atomic<bool> g_thread_gone{false};

void wait_for_thread_gone() noexcept {
  if (!g_hook_armed.exchange(false)) return;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!g_thread_gone.load() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
}

struct Receiver {
  weft::Channel<int>* ch;
  int got = -1;
};

void* receive_once(void* arg) {
  auto* r = static_cast<Receiver*>(arg);
  // Timed: while the waker is held in the hook, this thread's own timeout
  // ends its sleep, it sees that it was let go, and returns.
  if (auto v = r->ch->recv_for(200ms)) r->got = *v;
  return nullptr;
}

}  // namespace

TEST_CASE("thread wake-up: the waker touches nothing of a woken thread that may have exited" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  weft::detail::testing::after_thread_release.store(&wait_for_thread_gone);
  constexpr std::size_t k_stack = 1 << 20;
  for (int round = 0; round < 5; ++round) {
    CAPTURE(round);
    weft::Channel<int> ch;
    Receiver r{&ch};
    void* stack = ::mmap(nullptr, k_stack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    REQUIRE(stack != MAP_FAILED);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, stack, k_stack);
    g_thread_gone.store(false);
    pthread_t thread;
    REQUIRE(pthread_create(&thread, &attr, &receive_once, &r) == 0);
    pthread_attr_destroy(&attr);
    auto sender = rt.spawn([&] {
      while (weft::detail::channel_waiting_receivers(ch.core("test")) == 0) weft::this_fiber::yield();
      g_hook_armed.store(true);
      return ch.send(round);  // wakes the thread, then waits in the hook
    });
    pthread_join(thread, nullptr);
    ::munmap(stack, k_stack);
    g_thread_gone.store(true);
    CHECK(sender.join());
    CHECK(r.got == round);
  }
  weft::detail::testing::after_thread_release.store(nullptr);
}
