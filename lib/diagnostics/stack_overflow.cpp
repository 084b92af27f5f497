// The SIGSEGV handler that names a fiber whose stack overflowed (see
// stack_overflow.hpp). Everything it does after the fault is
// async-signal-safe: reading this thread's worker (a thread-local), one
// relaxed atomic for the fiber id, write(2), sigaction(2) and abort().
#include "diagnostics/stack_overflow.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <mutex>

#include "scheduling/current.hpp"
#include "scheduling/fiber.hpp"

namespace weft::detail {

namespace {

// Written once, before the handler that reads them is installed (sigaction
// orders the writes before any delivery on any thread).
struct sigaction g_previous {};
std::uintptr_t g_page = 4096;
std::once_flag g_installed;

void write_all(const char* s, std::size_t n) noexcept {
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

void write_str(const char* s) noexcept {
  std::size_t n = 0;
  while (s[n] != '\0') ++n;
  write_all(s, n);
}

void write_dec(std::uint64_t v) noexcept {
  char buf[24];
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  write_all(p, static_cast<std::size_t>(buf + sizeof buf - p));
}

std::uintptr_t stack_pointer(const void* uc) noexcept {
  const auto* ctx = static_cast<const ucontext_t*>(uc);
#if defined(__x86_64__)
  return static_cast<std::uintptr_t>(ctx->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
  return static_cast<std::uintptr_t>(ctx->uc_mcontext.sp);
#else
  (void)ctx;
  return ~std::uintptr_t{0};  // unknown: rely on the fault address alone
#endif
}

// The fault is an overflow of the running fiber's stack when it hit the
// guard page just below it, or when the stack pointer itself has left the
// stack downwards (a frame larger than the guard page jumped over it).
bool overflowed(const Fiber* f, const siginfo_t* info, const void* uc) noexcept {
  if (f == nullptr || !f->stack.guarded) return false;  // slab stacks have a canary instead
  const auto lo = reinterpret_cast<std::uintptr_t>(f->stack.lo);
  const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  if (addr < lo && addr >= lo - g_page) return true;
  const std::uintptr_t sp = stack_pointer(uc);
  return sp < lo && addr < lo && lo - sp < (std::uintptr_t{1} << 20);
}

// Not ours: hand the fault to whoever had SIGSEGV before, or let the
// default action kill the process as if weft had never been there.
void pass_on(int sig, siginfo_t* info, void* uc) noexcept {
  const struct sigaction& prev = g_previous;
  if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, uc);
    return;
  }
  if ((prev.sa_flags & SA_SIGINFO) == 0 && prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  // A hardware fault recurs when the instruction is retried on return; one
  // sent by kill() does not, so send it again.
  if (info->si_code <= 0) ::raise(sig);
}

void on_segv(int sig, siginfo_t* info, void* uc) {
  const int saved_errno = errno;
  Fiber* f = current_fiber();
  if (!overflowed(f, info, uc)) {
    pass_on(sig, info, uc);
    errno = saved_errno;
    return;
  }
  write_str("weft: stack overflow in fiber ");
  write_dec(fiber_id(f));
  write_str(" (stack ");
  write_dec(f->stack.size);
  write_str(" bytes): the fiber needs a bigger stack; raise weft::Runtime::Options::stack_size "
            "or move large locals to the heap\n");
  std::abort();
}

}  // namespace

void install_stack_overflow_handler() {
  std::call_once(g_installed, [] {
    g_page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    struct sigaction sa {};
    sa.sa_sigaction = &on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &g_previous);
  });
}

AltSignalStack::AltSignalStack() noexcept {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t size = 64 * 1024;
  // One guard page below, so that a handler that overflowed this stack too
  // faults cleanly instead of writing over a neighbour.
  void* base = ::mmap(nullptr, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return;
  ::mprotect(base, page, PROT_NONE);
  stack_t ss{};
  ss.ss_sp = static_cast<char*>(base) + page;
  ss.ss_size = size;
  ss.ss_flags = 0;
  if (::sigaltstack(&ss, &previous_) != 0) {
    ::munmap(base, size + page);
    return;
  }
  base_ = base;
  size_ = size + page;
}

AltSignalStack::~AltSignalStack() {
  if (base_ == nullptr) return;
  // Give the thread back the alternate stack it had (a sanitizer's, say).
  ::sigaltstack(&previous_, nullptr);
  ::munmap(base_, size_);
}

}  // namespace weft::detail
