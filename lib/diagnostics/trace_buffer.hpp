// TraceBuffer: the events of one trace lane (a worker, or the runtime's
// shared lane for every other thread), kept until the runtime shuts down
// and writes them (tracer.hpp).
//
// Storage: 32-byte POD slots in 2 MiB chunks (a singly linked list), each
// its own mapping (one mmap per 65,535 slots). Filling a chunk faults its
// pages in one by one: fresh memory is most of what recording an event
// costs (docs/design/seeing-inside.md measures it). Huge pages were
// measured and rejected: faster when the host has backed the memory
// before, several times slower when not (a VM's first touch), which made a
// lane's 2 MiB fault a stall of milliseconds in the middle of a trace. An
// event is one slot; an event with text (a park's reason, a name) is
// followed by the text's bytes in the next slots (TraceEvent::text bytes,
// at most k_max_text), in the same chunk. Nothing recorded is ever copied or moved
// until the writer reads it.
//
// Memory is bounded: a buffer maps at most k_max_chunks chunks (16 MiB);
// then it stops recording and counts what it drops (written as
// otherData.dropped_events), so a long run keeps its beginning. A chunk
// that cannot be mapped counts as dropped too: tracing never throws into
// the traced code.
//
// Time: trace_ticks(), the TSC on x86-64 (one rdtsc, about a third of a
// vDSO clock_gettime here), CLOCK_MONOTONIC nanoseconds elsewhere; the
// writer converts ticks to nanoseconds (time/park_stamp.hpp's calibration).
//
// Contract: a worker's buffer is written by that worker's thread only, and
// read by the writer after the worker has been joined; the shared buffer is
// written under Tracer's mutex. Nothing here is atomic.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "weft/detail/deadline.hpp"

namespace weft::detail {

enum class TraceKind : std::uint8_t {
  slice,     // a fiber ran: a = fiber id, b = duration (ticks), flag = TraceEnd
  sleep,     // the worker slept: b = duration (ticks)
  blocking,  // a blocking-pool job ran: a = the calling fiber's id, b = duration (ticks)
  spawn,     // a = parent fiber id (0: a plain thread), b = the new task's id (TaskBase::id_)
  steal,     // a = victim worker, b = the stolen task's id (its fiber's id once it runs)
  park,      // a = fiber id, text = what it waits for
  unpark,    // a = fiber id, b = waker fiber id (0: no fiber)
  timer,     // a timer fired on this lane
  wake,      // the worker was woken (it had slept)
  cancel,    // a = fiber id: a cancellation was delivered to it (Cancelled thrown)
  bind,      // a = fiber id, b = the id of a task run inline on that fiber (inline join)
  name,      // a = fiber id, text = its name (once per fiber and lane, and again if renamed)
};

// How a fiber run slice ended (TraceKind::slice's flag).
enum class TraceEnd : std::uint8_t { park, yield, finish, preempt };

// The trace's clock, in ticks (see above). Any thread.
inline std::uint64_t trace_ticks() noexcept {
#if defined(__x86_64__)
  return __builtin_ia32_rdtsc();
#else
  return static_cast<std::uint64_t>(now_ns());
#endif
}

struct TraceEvent {
  std::uint64_t ts = 0;    // trace_ticks() when it happened (a span: when it began)
  std::uint64_t a = 0;
  std::uint64_t b = 0;     // a span's duration in ticks, or a second id (TraceKind says)
  std::uint32_t lane = 0;  // the trace's tid (trace-format: 0.. workers, 1000+ plain, 2000+ blocking)
  TraceKind kind = TraceKind::slice;
  std::uint8_t flag = 0;
  std::uint16_t text = 0;  // bytes of text in the slots that follow (add_text)
};
static_assert(sizeof(TraceEvent) == 32, "two events per cache line");

class TraceBuffer {
 public:
  static constexpr std::size_t k_chunk_bytes = std::size_t{2} << 20;
  static constexpr std::size_t k_max_chunks = 8;                      // 16 MiB per lane
  static constexpr std::size_t k_max_text = 95;                       // three slots
  static constexpr std::uint32_t k_any_lane = 0xFFFFFFFF;             // the shared buffer: each event's own

  explicit TraceBuffer(std::uint32_t lane) noexcept : lane_(lane) {}
  ~TraceBuffer() {
    while (head_ != nullptr) ::munmap(std::exchange(head_, head_->next), k_chunk_bytes);
  }
  TraceBuffer(const TraceBuffer&) = delete;
  TraceBuffer& operator=(const TraceBuffer&) = delete;

  // Appends e (on this buffer's lane, or e.lane for k_any_lane); drops it
  // when the buffer is full or a chunk cannot be mapped. Never throws.
  void add(TraceEvent e) noexcept {
    if (tail_ == nullptr || tail_->used == k_chunk_slots) [[unlikely]] {
      if (!grow()) return;
    }
    if (lane_ != k_any_lane) e.lane = lane_;
    e.text = 0;
    slots(tail_)[tail_->used++] = e;
    ++events_;
  }

  // Appends e with the text s (n bytes) in the slots after it, cut to
  // k_max_text bytes with "..." where it does not fit. The cut falls on a
  // UTF-8 character boundary (never inside a multi-byte sequence), so valid
  // UTF-8 stays valid. Never throws.
  void add_text(TraceEvent e, const char* s, std::size_t n) noexcept {
    char cut[k_max_text];
    if (n > k_max_text) {
      std::size_t keep = k_max_text - 3;
      // s[keep] is the first byte dropped: back off while it continues a
      // sequence (10xxxxxx), so the kept bytes end on a whole character.
      while (keep > 0 && (static_cast<unsigned char>(s[keep]) & 0xC0) == 0x80) --keep;
      std::memcpy(cut, s, keep);
      std::memcpy(cut + keep, "...", 3);
      s = cut;
      n = keep + 3;
    }
    const std::size_t need = slots_for(n);
    if (tail_ == nullptr || k_chunk_slots - tail_->used < need) [[unlikely]] {
      if (!grow()) return;
    }
    if (lane_ != k_any_lane) e.lane = lane_;
    e.text = static_cast<std::uint16_t>(n);
    TraceEvent* at = slots(tail_) + tail_->used;
    at[0] = e;
    std::memcpy(static_cast<void*>(at + 1), s, n);
    tail_->used += need;
    ++events_;
  }

  // f(const TraceEvent&, std::string_view text) for every event, in order.
  template <class F>
  void for_each(F&& f) const {
    for (const Chunk* c = head_; c != nullptr; c = c->next) {
      for (std::size_t i = 0; i < c->used;) {
        const TraceEvent& e = slots(c)[i];
        f(e, std::string_view(reinterpret_cast<const char*>(&e + 1), e.text));
        i += slots_for(e.text);
      }
    }
  }

  std::size_t size() const noexcept { return events_; }
  std::uint64_t dropped() const noexcept { return dropped_; }
  std::uint32_t lane() const noexcept { return lane_; }

  // The slice being run on a worker's lane (owner thread only).
  std::uint64_t slice_start = 0;
  std::uint64_t slice_end = 0;  // when the last slice ended (a chained switch-in's start)
  std::uint64_t slice_fiber = 0;
  bool preempting = false;  // the next yield is a time-slice preemption
  std::uint64_t sleep_start = 0;
  // A park's reason is described into this (owner thread only; reused, so
  // no allocation once it has grown, and no thread_local lookup).
  std::string park_text;
  // Named fibers whose name this lane has recorded: id -> the name's
  // storage when recorded (a rename stores a new copy: recorded again).
  std::unordered_map<std::uint64_t, const char*> named;

 private:
  // A chunk's header takes its first slot; k_chunk_slots slots follow.
  struct Chunk {
    Chunk* next;
    std::size_t used;  // slots in use
  };
  static_assert(sizeof(Chunk) <= sizeof(TraceEvent));
  static constexpr std::size_t k_chunk_slots = k_chunk_bytes / sizeof(TraceEvent) - 1;
  // Slots an event with `text` bytes of text takes: its own and the text's.
  static constexpr std::size_t slots_for(std::size_t text) noexcept {
    return 1 + (text + sizeof(TraceEvent) - 1) / sizeof(TraceEvent);
  }
  static TraceEvent* slots(Chunk* c) noexcept {
    return reinterpret_cast<TraceEvent*>(reinterpret_cast<char*>(c) + sizeof(TraceEvent));
  }
  static const TraceEvent* slots(const Chunk* c) noexcept {
    return reinterpret_cast<const TraceEvent*>(reinterpret_cast<const char*>(c) + sizeof(TraceEvent));
  }

  // Maps the next chunk, or counts the event being added as dropped and
  // returns false.
  [[gnu::cold, gnu::noinline]] bool grow() noexcept {
    if (chunks_ == k_max_chunks) {
      ++dropped_;
      return false;
    }
    void* p = ::mmap(nullptr, k_chunk_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      ++dropped_;
      return false;
    }
    auto* c = static_cast<Chunk*>(p);
    c->next = nullptr;
    c->used = 0;
    (tail_ != nullptr ? tail_->next : head_) = c;
    tail_ = c;
    ++chunks_;
    return true;
  }

  const std::uint32_t lane_;
  Chunk* head_ = nullptr;
  Chunk* tail_ = nullptr;
  std::size_t chunks_ = 0;
  std::size_t events_ = 0;
  std::uint64_t dropped_ = 0;
};

}  // namespace weft::detail
