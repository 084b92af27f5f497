// A set of stack slot numbers, kept as a bitmap (stack_arena.hpp): the
// arena's free lists. It takes its highest or its lowest member, so that
// the arena hands out free stacks in address order whatever order they
// came back in (docs/design/stacks.md, "In address order"), and trims from
// the other end. A take skips the empty words between the last one taken
// and the next member: O(1) amortized over a run of takes; one after an
// insert far from the rest may read one word per 64 slots in between (1,600
// words for 100,000 slots, about a microsecond).
//
// Not thread-safe: the arena's lock guards it. Only grow() allocates.
#pragma once

#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace weft::detail {

class SlotSet {
 public:
  // Room for slots [0, n): insert() never allocates below it. May throw
  // std::bad_alloc (then nothing changed).
  void grow(std::size_t n) {
    const std::size_t words = (n + 63) / 64;
    if (words > bits_.size()) bits_.resize(words, 0);
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  // Adds slot `id` (below grow()'s n; not a member).
  void insert(std::size_t id) noexcept {
    const std::size_t w = id / 64;
    assert(w < bits_.size());
    assert((bits_[w] & bit(id)) == 0);
    bits_[w] |= bit(id);
    ++size_;
    if (w < low_) low_ = w;
    if (w + 1 > top_) top_ = w + 1;
  }

  // Removes and returns the highest member. !empty().
  std::size_t take_highest() noexcept {
    assert(!empty());
    while (bits_[top_ - 1] == 0) --top_;  // a member lies below top_: stops
    const std::size_t w = top_ - 1;
    const std::size_t id = w * 64 + (63 - static_cast<std::size_t>(std::countl_zero(bits_[w])));
    take(w, id);
    return id;
  }

  // Removes and returns the lowest member. !empty().
  std::size_t take_lowest() noexcept {
    assert(!empty());
    while (bits_[low_] == 0) ++low_;  // a member lies at or above low_: stops
    const std::size_t w = low_;
    const std::size_t id = w * 64 + static_cast<std::size_t>(std::countr_zero(bits_[w]));
    take(w, id);
    return id;
  }

 private:
  static std::uint64_t bit(std::size_t id) noexcept { return std::uint64_t{1} << (id % 64); }

  void take(std::size_t w, std::size_t id) noexcept {
    bits_[w] &= ~bit(id);
    if (--size_ == 0) {
      low_ = k_none;
      top_ = 0;
    }
  }

  static constexpr std::size_t k_none = SIZE_MAX;

  std::vector<std::uint64_t> bits_;
  std::size_t size_ = 0;
  // Every member lies in words [low_, top_) (an empty set: k_none, 0).
  // Takes move them inward past empty words, inserts outward.
  std::size_t low_ = k_none;
  std::size_t top_ = 0;
};

}  // namespace weft::detail
