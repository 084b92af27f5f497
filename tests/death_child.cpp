// The subprocess of the death tests (test_stack_overflow.cpp,
// test_misuse.cpp): does one kind of fault or misuse, chosen by argv[1], and
// dies of it (the parent checks how, and what was printed).
//   overflow        a fiber recurses until it overflows its 64 KiB stack
//   big-frame       a fiber's frame is larger than the guard page
//   overflow-many   a fiber overflows while 20,000 others are parked (more
//                   than the mapping budget of the fallback, issue 17)
//   fault-fiber     a fiber writes to a forbidden page (not an overflow)
//   fault-thread    the main thread does, with a runtime running
//   user-handler    the program's own SIGSEGV handler, installed before the
//                   runtime, gets a fault that is not an overflow
//   deep-ok         a fiber uses most of its stack without overflowing
//   destroy-from-fiber  a fiber destroys its own runtime
//   wait-on-loop    a task cannot get a stack, so the scheduler loop
//                   destroys its closure, whose destructor waits
#include <weft/weft.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace {

// Not a tail call, and the frame stays live: the optimizer cannot flatten it.
__attribute__((noinline)) int recurse(int depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  if (depth < 0) return 0;  // never: keeps the compiler from calling it infinite
  return recurse(depth + 1) + frame[0];
}

__attribute__((noinline)) int big_frame() {
  volatile char frame[48 * 1024];  // far more than the stack has left
  frame[0] = 1;
  return frame[0] + frame[sizeof frame - 1];
}

// Built with -fstack-clash-protection: the big frame probes each page it
// allocates, so it hits the guard page instead of jumping over it.
__attribute__((noinline)) int deep_then_big(int depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  if (depth == 0) return big_frame();
  return deep_then_big(depth - 1) + frame[0];
}

__attribute__((noinline)) int use_stack(int depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  if (depth == 0) return frame[0];
  return use_stack(depth - 1) + frame[0];
}

// A fault that is not an overflow: a write to a page nobody may touch (not
// a null pointer, which UBSan would catch before the hardware does).
__attribute__((noinline)) void write_forbidden() {
  void* page = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) std::abort();
  *static_cast<volatile int*>(page) = 1;
}

void user_handler(int) {
  const char msg[] = "user handler ran\n";
  (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
  ::_exit(42);
}

// VmSize of this process, in bytes.
std::size_t vm_size_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmSize:", 0) == 0) return std::stoul(line.substr(7)) * 1024;
  }
  return 0;
}

// A closure whose destructor sends on an unbuffered channel (a weft wait).
struct SendsWhenDestroyed {
  weft::Channel<int> ch;
  bool armed = true;
  SendsWhenDestroyed(weft::Channel<int> c) : ch(std::move(c)) {}
  SendsWhenDestroyed(SendsWhenDestroyed&& o) noexcept : ch(o.ch), armed(std::exchange(o.armed, false)) {}
  ~SendsWhenDestroyed() {
    if (armed) ch.send(1);
  }
  void operator()() const {}
};

weft::Runtime::Options options() {
  weft::Runtime::Options o;
  o.workers = 2;
  o.stack_size = 64 * 1024;
  o.inline_join = false;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string mode = argv[1];
  if (mode == "user-handler") {
    struct sigaction sa {};
    sa.sa_handler = &user_handler;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, nullptr);
  }
  weft::Runtime rt(options());
  if (mode == "overflow") {
    rt.spawn([] { return recurse(0); }).join();
  } else if (mode == "overflow-many") {
    rt.block_on([] {
      constexpr int k_parked = 20'000;
      weft::Channel<int> never;
      weft::WaitGroup started;
      started.add(k_parked);
      for (int i = 0; i < k_parked; ++i) {
        weft::go([&] {
          started.done();
          (void)never.recv();
        }).detach();
      }
      started.wait();
      weft::go([] { return recurse(0); }).join();
    });
  } else if (mode == "big-frame") {
    rt.spawn([] { return deep_then_big(60); }).join();
  } else if (mode == "fault-fiber" || mode == "user-handler") {
    rt.spawn([] { write_forbidden(); }).join();
  } else if (mode == "fault-thread") {
    write_forbidden();
  } else if (mode == "deep-ok") {
    const int v = rt.spawn([] { return use_stack(60); }).join();  // about 40 KiB of 64
    std::printf("deep-ok %d\n", v);
    return 0;
  } else if (mode == "wait-on-loop") {
    // 1 GiB stacks, none cached, and an address-space limit with room for
    // malloc only: the task cannot start, and its closure dies on the loop.
    weft::Runtime big({.workers = 1, .stack_size = std::size_t{1} << 30, .stack_cache = 0});
    weft::set_unhandled_exception_handler([](std::exception_ptr) {});
    rlimit tight{};
    ::getrlimit(RLIMIT_AS, &tight);
    tight.rlim_cur = vm_size_bytes() + (256u << 20);
    ::setrlimit(RLIMIT_AS, &tight);
    weft::Channel<int> ch;
    ::alarm(20);  // if the worker blocked instead, die of SIGALRM, not hang
    // The handle stays attached: the loop drops the closure when the start
    // fails, whoever holds the last reference. (It used to die with the
    // task's last reference, so a handle detached only after the failed
    // start destroyed it on this plain thread, whose send then blocked: a
    // CI run under load ended by SIGALRM.)
    auto handle = big.spawn(SendsWhenDestroyed(ch));
    ::sleep(5);  // the loop aborts meanwhile
    std::_Exit(3);
  } else if (mode == "destroy-from-fiber") {
    auto* own = new weft::Runtime(options());
    own->spawn([own] { delete own; }).join();
  } else {
    return 2;
  }
  std::printf("survived %s\n", mode.c_str());
  return 3;
}
