// weft::Channel<T>: Go / core.async channels between fibers and threads.
#pragma once

#include "detail/config.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "detail/channel_core.hpp"

namespace weft {

// A buffer of `capacity` values; a full buffer makes senders wait.
inline ChannelBuffer buffered(std::size_t capacity) noexcept { return {BufferPolicy::block, capacity}; }
// A buffer of `capacity` (>= 1) values that never makes a sender wait: when
// it is full, the value being sent is discarded (core.async's dropping-buffer).
inline ChannelBuffer dropping(std::size_t capacity) noexcept { return {BufferPolicy::drop_newest, capacity}; }
// A buffer of `capacity` (>= 1) values that never makes a sender wait: when
// it is full, the oldest buffered value is discarded to make room
// (core.async's sliding-buffer).
inline ChannelBuffer sliding(std::size_t capacity) noexcept { return {BufferPolicy::drop_oldest, capacity}; }

// How a timed channel operation ended.
enum class OpStatus : unsigned char {
  ok,         // sent / received
  closed,     // the channel is closed (send), or closed and drained (recv)
  timed_out,  // the deadline passed first; nothing was sent or taken
};

// What recv_for / recv_until return: the value when status == ok.
template <class T>
struct RecvResult {
  std::optional<T> value;
  OpStatus status = OpStatus::closed;

  bool ok() const noexcept { return status == OpStatus::ok; }
  bool closed() const noexcept { return status == OpStatus::closed; }
  bool timed_out() const noexcept { return status == OpStatus::timed_out; }
  explicit operator bool() const noexcept { return ok(); }
  T& operator*() & { return *value; }
  T&& operator*() && { return std::move(*value); }
  T* operator->() { return &*value; }
};

// A channel of T values: a cheap, copyable handle to a shared queue, like a
// Go channel value. Copies refer to the same channel; it lives until the last
// handle is gone. Values sent by one sender arrive in the order sent; each
// value is received exactly once, or discarded by a dropping/sliding buffer
// (counted by dropped()), or still buffered.
//
// Capacity 0 (the default) is unbuffered: send() returns only once a receiver
// has taken the value (a rendezvous). Capacity N buffers up to N values.
//
// Blocking: send() and recv() park the calling fiber (its worker runs other
// fibers meanwhile) or, from a plain thread, block the thread. try_send(),
// try_recv(), close() and the observers never park or block (they take a
// short internal spin lock).
//
// Memory: a send happens-before the receive that gets its value (Go's
// rule), so what the sender wrote before send() is visible to the receiver.
// close() happens-before a receive that reports the channel closed.
//
// Threading: every member may be called from any fiber of any runtime and
// from plain threads, concurrently, through the same or different handles.
// A handle object itself is like a shared_ptr: do not assign to one handle
// while another thread uses that same handle object.
//
// T must be an object type with a noexcept move constructor: a value is
// moved while the channel's lock is held, and a move that threw halfway
// through a hand-off could lose it. Wrap other types in std::unique_ptr.
// T's move constructor and destructor must not park or block.
template <class T>
class Channel {
  static_assert(std::is_object_v<T> && !std::is_array_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T>,
                "weft::Channel<T>: T must be a non-const, non-array object type");
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "weft::Channel<T> needs a noexcept move constructor (wrap the type in std::unique_ptr)");
  static_assert(std::is_nothrow_destructible_v<T>, "weft::Channel<T> needs a noexcept destructor");

 public:
  using value_type = T;

  // An unbuffered channel.
  Channel() : Channel(ChannelBuffer{}) {}
  // A channel with a blocking buffer of `capacity` values (0 = unbuffered).
  // `name` appears in deadlock reports. Throws std::bad_alloc.
  explicit Channel(std::size_t capacity, std::string name = {})
      : Channel(buffered(capacity), std::move(name)) {}
  // A channel with the given buffer (buffered, dropping or sliding).
  // Throws std::invalid_argument for dropping(0) or sliding(0), or a
  // capacity too large to ever allocate.
  explicit Channel(ChannelBuffer buffer, std::string name = {})
      : core_(detail::channel_create(&detail::elem_ops_for<T>, buffer, std::move(name))) {}

  Channel(const Channel& other) noexcept : core_(other.core_) {
    if (core_ != nullptr) detail::channel_retain(core_);
  }
  Channel(Channel&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
  Channel& operator=(const Channel& other) noexcept {
    if (other.core_ != nullptr) detail::channel_retain(other.core_);
    reset(other.core_);
    return *this;
  }
  Channel& operator=(Channel&& other) noexcept {
    if (this != &other) reset(std::exchange(other.core_, nullptr));
    return *this;
  }
  ~Channel() { reset(nullptr); }

  // Sends `value`. Returns true once a receiver took it, or the buffer
  // accepted it (a dropping buffer also "accepts" a value it discards; see
  // dropped()); `value` has then been moved from. Returns false, leaving
  // `value` untouched, when the channel is or becomes closed before the value
  // is taken. Parks the calling fiber / blocks the plain thread while an
  // unbuffered channel has no receiver or a blocking buffer is full.
  bool send(T&& value) { return send_impl(&value, true) == detail::ChannelOpResult::done; }
  // Sends a copy of `value` (see send(T&&)).
  bool send(const T& value)
    requires std::is_copy_constructible_v<T>
  {
    T copy(value);
    return send(std::move(copy));
  }

  // Receives the oldest value. Returns std::nullopt once the channel is
  // closed and every buffered value has been received. Parks the calling
  // fiber / blocks the plain thread while nothing is available.
  std::optional<T> recv() {
    std::optional<T> out;
    recv_impl(&out, true);
    return out;
  }

  // Timed send: as send(), but gives up once `timeout` has passed (or at
  // `deadline`, any clock). ok: sent (`value` moved from); closed or
  // timed_out: `value` untouched. A timeout of zero or less never parks
  // (a try_send that tells "closed" from "would wait").
  template <class Rep, class Period>
  OpStatus send_for(T&& value, const std::chrono::duration<Rep, Period>& timeout) {
    return timed_send(&value, detail::deadline_after(timeout));
  }
  template <class Rep, class Period>
  OpStatus send_for(const T& value, const std::chrono::duration<Rep, Period>& timeout)
    requires std::is_copy_constructible_v<T>
  {
    T copy(value);
    return timed_send(&copy, detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  OpStatus send_until(T&& value, const std::chrono::time_point<Clock, Duration>& deadline) {
    return timed_send(&value, detail::deadline_at(deadline));
  }
  template <class Clock, class Duration>
  OpStatus send_until(const T& value, const std::chrono::time_point<Clock, Duration>& deadline)
    requires std::is_copy_constructible_v<T>
  {
    T copy(value);
    return timed_send(&copy, detail::deadline_at(deadline));
  }

  // Timed receive: as recv(), but gives up once `timeout` has passed (or at
  // `deadline`). The result's status says which: ok (value set), closed
  // (closed and drained), timed_out.
  template <class Rep, class Period>
  RecvResult<T> recv_for(const std::chrono::duration<Rep, Period>& timeout) {
    return timed_recv(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  RecvResult<T> recv_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return timed_recv(detail::deadline_at(deadline));
  }

  // Never parks or blocks. True if a waiting receiver took the value or the
  // buffer accepted it (`value` moved from); false if that would need
  // waiting, or the channel is closed (`value` untouched; is_closed() read
  // afterwards tells the two apart: a closed channel never reopens).
  [[nodiscard]] bool try_send(T&& value) { return send_impl(&value, false) == detail::ChannelOpResult::done; }
  [[nodiscard]] bool try_send(const T& value)
    requires std::is_copy_constructible_v<T>
  {
    T copy(value);
    return try_send(std::move(copy));
  }

  // Never parks or blocks. A value if one is buffered or a sender is
  // waiting; std::nullopt otherwise (empty, or closed and drained). To tell
  // those apart, read is_closed() *before* the call: if it was already
  // closed, nullopt means drained for good (a value sent just before a
  // close may still be buffered after it).
  [[nodiscard]] std::optional<T> try_recv() {
    std::optional<T> out;
    recv_impl(&out, false);
    return out;
  }

  // Closes the channel; idempotent. Every parked receiver wakes with
  // std::nullopt, every parked sender with false (its value stays with it).
  // Buffered values can still be received; later sends return false. Never
  // parks or blocks.
  void close() { detail::channel_close(checked("close")); }

  bool is_closed() const { return detail::channel_is_closed(checked("is_closed")); }
  // Values buffered now (a snapshot).
  std::size_t size() const { return detail::channel_size(checked("size")); }
  std::size_t capacity() const { return detail::channel_capacity(checked("capacity")); }
  BufferPolicy policy() const { return detail::channel_policy(checked("policy")); }
  // Values discarded so far by a dropping or sliding buffer.
  std::uint64_t dropped() const { return detail::channel_dropped(checked("dropped")); }
  // The name given at construction ("" if none).
  const std::string& name() const { return detail::channel_name(checked("name")); }

  // True when both handles refer to the same channel.
  friend bool operator==(const Channel& a, const Channel& b) noexcept { return a.core_ == b.core_; }

  // Range-for: receives until the channel is closed and drained.
  //   for (int v : ch) use(v);
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = T*;
    using reference = T&;
    iterator() = default;
    T& operator*() const { return *current_; }
    T* operator->() const { return &*current_; }
    iterator& operator++() {
      // Rebuilt, not assigned: T need not be move-assignable.
      current_.reset();
      if (std::optional<T> next = channel_->recv()) current_.emplace(std::move(*next));
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return !it.current_; }

   private:
    friend class Channel;
    explicit iterator(Channel* channel) : channel_(channel), current_(channel->recv()) {}
    Channel* channel_ = nullptr;
    mutable std::optional<T> current_;
  };
  // Receives the first value (parks like recv()).
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

  // For select (select.hpp).
  detail::ChannelCore* core(const char* op) const { return checked(op); }

 private:
  detail::ChannelOpResult send_impl(T* value, bool block) {
    return detail::channel_send(checked(block ? "send" : "try_send"), value,
                                block ? detail::k_never : detail::k_no_wait);
  }
  detail::ChannelOpResult recv_impl(std::optional<T>* out, bool block) {
    return detail::channel_recv(checked(block ? "recv" : "try_recv"), out,
                                block ? detail::k_never : detail::k_no_wait);
  }
  static OpStatus status_of(detail::ChannelOpResult r) noexcept {
    return r == detail::ChannelOpResult::done     ? OpStatus::ok
           : r == detail::ChannelOpResult::closed ? OpStatus::closed
                                                  : OpStatus::timed_out;
  }
  OpStatus timed_send(T* value, detail::Nanos deadline) {
    return status_of(detail::channel_send(checked("send_for"), value, deadline));
  }
  RecvResult<T> timed_recv(detail::Nanos deadline) {
    RecvResult<T> r;
    r.status = status_of(detail::channel_recv(checked("recv_for"), &r.value, deadline));
    return r;
  }
  detail::ChannelCore* checked(const char* op) const {
    if (core_ == nullptr) {
      throw std::logic_error(std::string("weft::Channel::") + op + ": the handle was moved from");
    }
    return core_;
  }
  void reset(detail::ChannelCore* next) noexcept {
    if (core_ != nullptr) detail::channel_release(core_);
    core_ = next;
  }

  detail::ChannelCore* core_;
};

}  // namespace weft
