#include "scheduling/context_switch.hpp"

#include <boost/context/detail/fcontext.hpp>
#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>

#include "diagnostics/sanitizers.hpp"

#if WEFT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if WEFT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace weft::detail {
namespace {

namespace bctx = boost::context::detail;

// What a switch hands to the context it lands in: who switched (so the
// lander can save the switcher's handle) and the target.
struct SwitchRecord {
  ExecContext* from;
  ExecContext* to;
};

// libstdc++'s per-thread exception-handling globals (cxxabi's opaque
// __cxa_eh_globals): the list of caught exceptions and the uncaught count.
struct EhGlobals {
  void* caught;
  unsigned int uncaught;
};

// libstdc++ reaches its own through __tls_get_addr (a shared library's
// thread_local) in __cxa_get_globals, which is also declared
// __attribute__((const)): a compiler may reuse one thread's answer on
// another thread after a switch. The answer is fixed per thread, so each
// thread asks once and keeps it in a variable of ours: one load relative
// to the thread pointer (initial-exec, as in current.cpp).
__attribute__((tls_model("initial-exec"))) constinit thread_local EhGlobals* t_eh_globals = nullptr;

// Read only before a jump, never after one in the same frame (the fiber
// may have moved to another thread): inlined into switch_context and
// exit_to, the first per-thread access of each switch. Neither of them is
// inlined anywhere (their callers are in other files, and weft is built
// without link-time optimisation: current.hpp has the rule). It was a
// call with a compiler barrier: 8 instructions a switch.
[[gnu::always_inline]] inline EhGlobals* eh_globals() noexcept {
  EhGlobals* eh = t_eh_globals;
  if (eh == nullptr) [[unlikely]] eh = t_eh_globals = reinterpret_cast<EhGlobals*>(abi::__cxa_get_globals());
  return eh;
}

// The jump itself: Boost.Context's jump_fcontext, entered so that the
// CPU's return-stack predictor stays in step with the stacks.
//
// jump_fcontext saves the caller's registers and return address on the
// current stack, loads the target's, and leaves with `jmp *%r8` to the
// target's saved return address, never with `ret` (Boost 1.74, x86-64
// SysV; `objdump -d` shows it). A plain call to it pushes an entry on the
// return-stack buffer that no `ret` ever pops. Every return after the
// jump (out of switch_context, park, the channel operation, ...) is then
// predicted from the entry one below the right one, and the whole chain
// of them mispredicts: five from a channel wait back to its caller. (A
// backtrace taken inside the asm below, between the push and the jump,
// would be off: its unwind notes do not follow the stack pointer there.
// Nothing in weft unwinds a switching or suspended fiber.) Here the return
// address goes on the stack with a push and the jump is a `jmp`: no
// entry is pushed, the buffer stays aligned, and when the fibers on both
// sides of a switch park through the same calls (a pingpong) every
// return is predicted. pingpong 156 -> 113 ns a round trip on this VM
// (docs/benchmarks.md, "Issue 17: switches the return predictor can
// follow").
//
// What the stack sees is exactly what a call would leave (jump_fcontext
// cannot tell the difference); the 128 bytes skipped first keep the red
// zone below the stack pointer intact for the compiler. The registers a
// call may change are declared clobbered; jump_fcontext restores the
// callee-saved ones and the x87/SSE control words as it always does.
// Other targets call jump_fcontext as before.
inline bctx::transfer_t jump(bctx::fcontext_t to, void* data) noexcept {
#if defined(__x86_64__)
  void* fctx = to;   // rdi: jump_fcontext's first argument
  void* arg = data;  // rsi: its second
  void* from;        // rax on landing: the switcher's handle
  void* got;         // rdx on landing: the switcher's data
  asm volatile(
      "subq $128, %%rsp\n\t"
      "leaq 1f(%%rip), %%rax\n\t"
      "pushq %%rax\n\t"
      "jmp jump_fcontext@PLT\n\t"
      "1:\n\t"
      "addq $128, %%rsp\n\t"
      : "=a"(from), "=d"(got), "+D"(fctx), "+S"(arg)
      :
      : "rcx", "r8", "r9", "r10", "r11", "memory", "cc",
        "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
        "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
        "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)",
        "mm0", "mm1", "mm2", "mm3", "mm4", "mm5", "mm6", "mm7");
  return bctx::transfer_t{from, got};
#else
  return bctx::jump_fcontext(to, data);
#endif
}

// Runs on the switching side, just before the jump.
inline void before_switch(ExecContext& from, ExecContext& to, bool from_dies) noexcept {
  EhGlobals* eh = eh_globals();
  from.eh_caught = eh->caught;
  from.eh_uncaught = eh->uncaught;
  eh->caught = to.eh_caught;
  eh->uncaught = to.eh_uncaught;
#if WEFT_ASAN
  // A dying context passes no save slot, so ASan frees its fake stack.
  __sanitizer_start_switch_fiber(from_dies ? nullptr : &from.asan_fake_stack, to.stack_lo, to.stack_size);
#else
  (void)from_dies;
#endif
#if WEFT_TSAN
  // Last thing before the jump: TSan attributes what follows to `to`.
  // Flag 0 = synchronize, so the switch itself orders the two contexts.
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
}

// Runs in the context that was just resumed (`self`); `rec` says who switched.
inline void after_switch(bctx::transfer_t t, ExecContext& self) noexcept {
  auto* rec = static_cast<SwitchRecord*>(t.data);
  rec->from->fctx = t.fctx;  // the switcher is now suspended: save its handle
#if WEFT_ASAN
  // Also learns the switcher's stack bounds: how a thread's own stack gets
  // known before anyone switches back to it.
  __sanitizer_finish_switch_fiber(self.asan_fake_stack, &rec->from->stack_lo, &rec->from->stack_size);
#else
  (void)self;
#endif
}

[[noreturn]] void trampoline(bctx::transfer_t t) noexcept {
  auto* rec = static_cast<SwitchRecord*>(t.data);
  ExecContext* self = rec->to;
  after_switch(t, *self);
  self->entry(self->entry_arg);
  std::fputs("weft: a fiber entry returned instead of calling exit_to\n", stderr);
  std::abort();
}

}  // namespace

void make_context(ExecContext& ctx, void* stack_lo, std::size_t size, void (*entry)(void*), void* arg) {
  ctx = ExecContext{};
  ctx.entry = entry;
  ctx.entry_arg = arg;
  ctx.stack_lo = stack_lo;
  ctx.stack_size = size;
  void* stack_top = static_cast<char*>(stack_lo) + size;  // stacks grow down
  ctx.fctx = bctx::make_fcontext(stack_top, size, &trampoline);
#if WEFT_TSAN
  ctx.tsan_fiber = __tsan_create_fiber(0);
#endif
}

void adopt_thread_context(ExecContext& ctx) {
  ctx = ExecContext{};
#if WEFT_TSAN
  ctx.tsan_fiber = __tsan_get_current_fiber();
#endif
}

void switch_context(ExecContext& from, ExecContext& to) {
  SwitchRecord rec{&from, &to};
  before_switch(from, to, false);
  bctx::transfer_t t = jump(to.fctx, &rec);
  after_switch(t, from);
}

void exit_to(ExecContext& from, ExecContext& to) {
  SwitchRecord rec{&from, &to};  // read by `to` before this stack is reused
  before_switch(from, to, true);
  jump(to.fctx, &rec);
  std::fputs("weft: a finished fiber was resumed\n", stderr);
  std::abort();
}

void release_context(ExecContext& ctx) {
#if WEFT_TSAN
  if (ctx.tsan_fiber != nullptr) __tsan_destroy_fiber(ctx.tsan_fiber);
#endif
#if WEFT_ASAN
  // Frames abandoned by the final switch leave redzones poisoned.
  if (ctx.stack_lo != nullptr) __asan_unpoison_memory_region(ctx.stack_lo, ctx.stack_size);
#endif
  ctx = ExecContext{};
}

}  // namespace weft::detail
