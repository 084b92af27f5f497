// TraceBuffer: the events of one trace lane (a worker, or the runtime's
// shared lane for every other thread), kept until the runtime shuts down
// and writes them (tracer.hpp).
//
// Storage: fixed-size POD events appended to a singly linked list of
// chunks (k_chunk_events each). Appending writes one 64-byte slot; a new
// chunk is allocated once every k_chunk_events events, and nothing already
// recorded is ever copied or moved. The memory is bounded: once a buffer
// holds its cap of events it stops recording and counts what it drops
// (written as otherData.dropped_events), so a long run keeps its beginning
// and its size stays bounded. A chunk that cannot be allocated counts as
// dropped too: tracing never throws into the traced code.
//
// Contract: a worker's buffer is written by that worker's thread only, and
// read by the writer after the worker has been joined; the shared buffer is
// written under Tracer's mutex. Nothing here is atomic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <unordered_map>
#include <utility>

#include "weft/detail/deadline.hpp"

namespace weft::detail {

enum class TraceKind : std::uint8_t {
  slice,     // a fiber ran: a = fiber id, dur, flag = TraceEnd
  sleep,     // the worker slept: dur
  blocking,  // a blocking-pool job ran: a = the calling fiber's id, dur
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

struct TraceEvent {
  Nanos ts = 0;            // now_ns() when it happened (the writer subtracts the runtime's start)
  std::uint64_t a = 0;
  std::uint32_t lane = 0;  // the trace's tid (trace-format: 0.. workers, 1000+ plain, 2000+ blocking)
  TraceKind kind = TraceKind::slice;
  std::uint8_t flag = 0;
  static constexpr std::size_t k_text = 40;
  union {
    struct {
      Nanos dur;
      std::uint64_t b;
    } span;
    char text[k_text];  // park's reason or a name, NUL-terminated, truncated with "..."
  } u{};

  // Copies s (n bytes) into text, truncating with "..." where it does not
  // fit. The cut falls on a UTF-8 character boundary (never inside a
  // multi-byte sequence), so valid UTF-8 stays valid.
  void set_text(const char* s, std::size_t n) noexcept {
    if (n < k_text) {
      std::memcpy(u.text, s, n);
      u.text[n] = '\0';
      return;
    }
    std::size_t keep = k_text - 4;
    // s[keep] is the first byte dropped: back off while it continues a
    // sequence (10xxxxxx), so the kept bytes end on a whole character.
    while (keep > 0 && (static_cast<unsigned char>(s[keep]) & 0xC0) == 0x80) --keep;
    std::memcpy(u.text, s, keep);
    std::memcpy(u.text + keep, "...", 4);
  }
};
static_assert(sizeof(TraceEvent) == 64, "one cache line per event");

class TraceBuffer {
 public:
  static constexpr std::size_t k_chunk_events = 1024;  // 64 KiB per chunk

  TraceBuffer(std::uint32_t lane, std::size_t max_events) noexcept : lane_(lane), max_events_(max_events) {}
  ~TraceBuffer() {
    while (head_ != nullptr) delete std::exchange(head_, head_->next);
  }
  TraceBuffer(const TraceBuffer&) = delete;
  TraceBuffer& operator=(const TraceBuffer&) = delete;

  static constexpr std::uint32_t k_any_lane = 0xFFFFFFFF;  // the shared buffer: each event's own

  // Appends e (on this buffer's lane, or e.lane for k_any_lane); drops it when
  // the buffer is full or a chunk cannot be allocated. Never throws.
  void add(TraceEvent e) noexcept {
    if (used_ == k_chunk_events || tail_ == nullptr) {
      if (total_ >= max_events_) {
        ++dropped_;
        return;
      }
      Chunk* c = new (std::nothrow) Chunk;
      if (c == nullptr) {
        ++dropped_;
        return;
      }
      (tail_ != nullptr ? tail_->next : head_) = c;
      tail_ = c;
      used_ = 0;
    }
    if (lane_ != k_any_lane) e.lane = lane_;
    tail_->events[used_++] = e;
    ++total_;
  }

  template <class F>
  void for_each(F&& f) const {
    for (const Chunk* c = head_; c != nullptr; c = c->next) {
      const std::size_t n = c == tail_ ? used_ : k_chunk_events;
      for (std::size_t i = 0; i < n; ++i) f(c->events[i]);
    }
  }

  std::size_t size() const noexcept { return total_; }
  std::uint64_t dropped() const noexcept { return dropped_; }
  std::uint32_t lane() const noexcept { return lane_; }

  // The slice being run on a worker's lane (owner thread only).
  Nanos slice_start = 0;
  std::uint64_t slice_fiber = 0;
  bool preempting = false;  // the next yield is a time-slice preemption
  Nanos sleep_start = 0;
  // Named fibers whose name this lane has recorded: id -> the name's
  // storage when recorded (a rename stores a new copy: recorded again).
  std::unordered_map<std::uint64_t, const char*> named;

 private:
  struct Chunk {
    TraceEvent events[k_chunk_events];
    Chunk* next = nullptr;
  };
  const std::uint32_t lane_;
  const std::size_t max_events_;
  Chunk* head_ = nullptr;
  Chunk* tail_ = nullptr;
  std::size_t used_ = 0;  // events in tail_
  std::size_t total_ = 0;
  std::uint64_t dropped_ = 0;
};

}  // namespace weft::detail
