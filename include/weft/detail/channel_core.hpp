// The type-erased core of weft::Channel<T>: one non-template implementation
// of buffering, rendezvous, close and select (lib/channels/channel_core.cpp), driven
// by a small table of operations on T. Channel<T> is only a typed handle
// around it, and select can wait on channels of different element types.
//
// Internal: users see it only through Channel<T> and select.
#pragma once

#include "config.hpp"

#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <string>

#include "deadline.hpp"
#include <utility>

namespace weft {

// How a channel's buffer behaves when it is full (see channel.hpp).
enum class BufferPolicy : unsigned char {
  block,        // the sender waits for room (Go, core.async's fixed buffer)
  drop_newest,  // the new value is discarded (core.async's dropping-buffer)
  drop_oldest,  // the oldest buffered value is discarded (sliding-buffer)
};

// A buffer description for a Channel constructor: weft::dropping(n),
// weft::sliding(n), or weft::buffered(n).
struct ChannelBuffer {
  BufferPolicy policy = BufferPolicy::block;
  std::size_t capacity = 0;
};

namespace detail {

// What the core needs to know about T. Every operation is noexcept:
// Channel<T> requires a noexcept move constructor (see channel.hpp).
struct ElemOps {
  std::size_t size;
  std::size_t align;
  // Move-constructs a T at raw storage `dst` from the T at `src`.
  void (*move_to_raw)(void* dst, void* src) noexcept;
  // Emplaces into the std::optional<T> at `dst` from the T at `src`.
  void (*move_to_optional)(void* dst, void* src) noexcept;
  // Moves the T at `src` into a temporary that dies at once (a dropped send).
  void (*discard)(void* src) noexcept;
  // Destroys the T at `obj` (a buffered value being dropped or freed).
  void (*destroy)(void* obj) noexcept;
};

template <class T>
inline constexpr ElemOps elem_ops_for{
    sizeof(T),
    alignof(T),
    [](void* dst, void* src) noexcept { ::new (dst) T(std::move(*static_cast<T*>(src))); },
    [](void* dst, void* src) noexcept { static_cast<std::optional<T>*>(dst)->emplace(std::move(*static_cast<T*>(src))); },
    [](void* src) noexcept { T sink(std::move(*static_cast<T*>(src))); (void)sink; },
    [](void* obj) noexcept { static_cast<T*>(obj)->~T(); },
};

class ChannelCore;

enum class ChannelOpResult : unsigned char {
  done,         // the value was delivered or buffered (send) / received (recv)
  closed,       // the channel is closed (send), or closed and drained (recv)
  would_block,  // nothing could be done before the deadline (try: at once)
};

// Deadlines for channel operations (deadline.hpp's Nanos): k_never blocks
// until done; k_no_wait (or any time already past) never parks.
inline constexpr Nanos k_no_wait = 0;

// Creates a core with one reference. Throws std::invalid_argument for a
// dropping/sliding buffer of capacity 0 or an absurd capacity.
WEFT_API ChannelCore* channel_create(const ElemOps* ops, ChannelBuffer buffer, std::string name);
WEFT_API void channel_retain(ChannelCore* c) noexcept;
WEFT_API void channel_release(ChannelCore* c) noexcept;

// send: `src` points at the caller's T; it is moved from only when the
// result is `done`. recv: `dst` points at an empty std::optional<T>, filled
// only when the result is `done`. They park the calling fiber (or block the
// calling plain thread) until done, closed, or `deadline` (would_block).
WEFT_API ChannelOpResult channel_send(ChannelCore* c, void* src, Nanos deadline);
WEFT_API ChannelOpResult channel_recv(ChannelCore* c, void* dst, Nanos deadline);
WEFT_API void channel_close(ChannelCore* c) noexcept;

// Makes the channel close at `deadline` (weft::timeout), on a channel no
// other thread has a handle to yet, once per channel (std::logic_error for a
// second call). A past deadline closes it at once. Otherwise nothing is
// armed yet: a timer is armed in the process's timer heap when a fiber first
// parks on the channel (cancelled when the last handle goes), a plain thread
// that waits on it wakes itself at the deadline, and every operation on it
// after the deadline finds it closed. Never parks or blocks.
WEFT_API void channel_close_at(ChannelCore* c, Nanos deadline);

WEFT_API bool channel_is_closed(const ChannelCore* c) noexcept;
WEFT_API std::size_t channel_size(const ChannelCore* c) noexcept;
WEFT_API std::size_t channel_capacity(const ChannelCore* c) noexcept;
WEFT_API BufferPolicy channel_policy(const ChannelCore* c) noexcept;
WEFT_API std::uint64_t channel_dropped(const ChannelCore* c) noexcept;
WEFT_API const std::string& channel_name(const ChannelCore* c) noexcept;
// Number of senders and receivers parked on the channel (tests, diagnostics).
WEFT_API std::size_t channel_waiting_senders(const ChannelCore* c) noexcept;
WEFT_API std::size_t channel_waiting_receivers(const ChannelCore* c) noexcept;

// One case of a select, type-erased. For a send case `slot` is the T to
// send; for a receive case an empty std::optional<T>. `ok` is the outcome of
// the case that committed: for send, whether the value was delivered (false:
// the channel was closed); for recv, whether a value arrived (false: closed
// and drained; the optional stays empty).
struct SelectCase {
  ChannelCore* channel;
  void* slot;
  bool is_send;
  bool ok;
};

// Commits exactly one case and returns its index, or returns -1 when
// has_default is set and no case is ready. priority: poll cases in order;
// otherwise in a uniformly random order. Parks the calling fiber (or blocks
// the plain thread) when no case is ready and there is no default, until a
// case commits or `deadline` passes (then returns -2: an after() case);
// with no cases, no default and no deadline it parks until shutdown (Go's
// empty select).
inline constexpr int k_select_default = -1;
inline constexpr int k_select_timed_out = -2;
WEFT_API int select_cases(SelectCase* cases, std::size_t n, bool has_default, bool priority, Nanos deadline);

}  // namespace detail
}  // namespace weft
