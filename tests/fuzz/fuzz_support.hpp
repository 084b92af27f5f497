// What channel_fuzz.cpp builds on: failure reports with the operation trace,
// a value type whose every fate is recorded, and a select over a list of
// cases chosen at run time.
//
// Everything here runs on one weft worker (the fuzzer's runtime has one) or
// on the plain thread blocked in block_on, never on two threads at once, so
// the globals need no locks.
#pragma once

#include <array>
#include <chrono>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <weft/channel.hpp>
#include <weft/select.hpp>

#include "channel_model.hpp"

namespace weft_fuzz {

using Id = Model::Id;

// ---- the trace, and failing with it ----

// One line per operation of the current input, printed on failure.
inline std::vector<std::string>& trace_lines() {
  static std::vector<std::string> lines;
  return lines;
}

inline std::string format(const char* fmt, va_list args) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, args);
  return buf;
}

__attribute__((format(printf, 1, 2))) inline void trace(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  trace_lines().push_back(format(fmt, args));
  va_end(args);
}

// Prints the trace and what went wrong, then aborts (libFuzzer saves the
// input as a crash).
[[noreturn]] __attribute__((format(printf, 1, 2))) inline void fail(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  const std::string what = format(fmt, args);
  va_end(args);
  std::fprintf(stderr, "\n=== weft channel fuzz: operation trace (%zu lines)\n", trace_lines().size());
  for (const std::string& line : trace_lines()) std::fprintf(stderr, "  %s\n", line.c_str());
  std::fprintf(stderr, "=== weft channel fuzz: MISMATCH: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// FUZZ_EXPECT(cond, fmt, ...): fails with a message of its own.
#define FUZZ_EXPECT(cond, ...)                  \
  do {                                          \
    if (!(cond)) ::weft_fuzz::fail(__VA_ARGS__); \
  } while (0)

// ---- values: every id has exactly one observed fate ----

struct Ledger {
  std::vector<Fate> fates;  // observed, by id
  long live = 0;            // Tokens that hold a value

  void reset() {
    fates.clear();
    live = 0;
  }
  void note(Id id, Fate f) {
    FUZZ_EXPECT(id >= 0 && static_cast<std::size_t>(id) < fates.size(), "value v%lld out of nowhere",
                static_cast<long long>(id));
    FUZZ_EXPECT(fates[id] == Fate::pending, "value v%lld has two fates (%d, then %d)", static_cast<long long>(id),
                static_cast<int>(fates[id]), static_cast<int>(f));
    fates[id] = f;
  }
};

inline Ledger& ledger() {
  static Ledger l;
  return l;
}

// The channels' element type. A Token holds one value id, or -1 once moved
// from or taken. Its destructor records "destroyed" for a value nobody took:
// a dropping/sliding buffer's discard, a select case that did not send,
// values left in a channel that is freed.
struct Token {
  Id id = -1;

  explicit Token(Id v) noexcept : id(v) { ++ledger().live; }
  Token(Token&& other) noexcept : id(std::exchange(other.id, -1)) {}
  Token(const Token&) = delete;
  Token& operator=(const Token&) = delete;
  // Channel<T>::iterator assigns std::optional<T> (so T needs this, though
  // channel.hpp asks only for a noexcept move constructor).
  Token& operator=(Token&& other) noexcept {
    if (this != &other) {
      drop();
      id = std::exchange(other.id, -1);
    }
    return *this;
  }
  ~Token() { drop(); }

  // The holder consumes the value (-1 if there was none).
  Id take() noexcept {
    if (id >= 0) --ledger().live;
    return std::exchange(id, -1);
  }

 private:
  void drop() noexcept {
    if (id >= 0) {
      --ledger().live;
      ledger().note(std::exchange(id, -1), Fate::destroyed);
    }
  }
};

using Chan = weft::Channel<Token>;

// ---- select over run-time cases ----

// What besides the channel cases a select has.
enum class Extra : unsigned char {
  none,         // blocks until a case commits
  on_default,   // on_default
  after_zero,   // after(0): a default by another name
  after_short,  // after(k_short_wait): parks, then times out unless a case is ready now
  after_long,   // after(1 h): for parked helpers; never fires
};

inline constexpr std::size_t k_max_cases = 3;
inline constexpr std::chrono::microseconds k_short_wait{100};
inline constexpr std::chrono::hours k_long_wait{1};

// One select call: the cases in, what happened out.
struct SelectRun {
  std::vector<Chan>* chans = nullptr;
  std::vector<Model::Case> cases;  // 1 .. k_max_cases; send cases carry fresh ids
  Extra extra = Extra::none;
  bool extra_first = false;  // the extra case's argument position: first or last
  bool priority = true;

  int handlers_run = 0;
  int fired = -2;  // case index; -1: the extra case
  bool ok = false;
  Id value = -1;

  void record(int index, bool case_ok, Id got) {
    ++handlers_run;
    fired = index;
    ok = case_ok;
    value = got;
    if (got >= 0) ledger().note(got, Fate::received);
  }
};

namespace detail {

template <std::size_t I, unsigned Mask>
auto make_case(SelectRun& s) {
  Chan& ch = (*s.chans)[static_cast<std::size_t>(s.cases[I].chan)];
  if constexpr (((Mask >> I) & 1u) != 0) {
    return weft::on_send(ch, Token(s.cases[I].value), [&s](bool sent) { s.record(static_cast<int>(I), sent, -1); });
  } else {
    return weft::on_recv(ch, [&s](std::optional<Token> v) {
      s.record(static_cast<int>(I), v.has_value(), v ? v->take() : -1);
    });
  }
}

template <bool Priority, class... Cases>
std::size_t call_select(Cases&&... cases) {
  if constexpr (Priority) {
    return weft::select(weft::priority, std::forward<Cases>(cases)...);
  } else {
    return weft::select(std::forward<Cases>(cases)...);
  }
}

template <bool Priority, class Extra_>
std::size_t with_extra(SelectRun& s, Extra_&& extra, auto&&... cases) {
  if (s.extra_first) return call_select<Priority>(std::forward<Extra_>(extra), std::forward<decltype(cases)>(cases)...);
  return call_select<Priority>(std::forward<decltype(cases)>(cases)..., std::forward<Extra_>(extra));
}

template <bool Priority, unsigned Mask, std::size_t... I>
std::size_t run_cases(SelectRun& s, std::index_sequence<I...>) {
  auto extra = [&s] { s.record(-1, false, -1); };
  switch (s.extra) {
    case Extra::none:
      return call_select<Priority>(make_case<I, Mask>(s)...);
    case Extra::on_default:
      return with_extra<Priority>(s, weft::on_default(extra), make_case<I, Mask>(s)...);
    case Extra::after_zero:
      return with_extra<Priority>(s, weft::after(std::chrono::nanoseconds(0), extra), make_case<I, Mask>(s)...);
    case Extra::after_short:
      return with_extra<Priority>(s, weft::after(k_short_wait, extra), make_case<I, Mask>(s)...);
    case Extra::after_long:
      return with_extra<Priority>(s, weft::after(k_long_wait, extra), make_case<I, Mask>(s)...);
  }
  return 0;
}

template <std::size_t N, unsigned Mask>
std::size_t select_fn(SelectRun& s) {
  return s.priority ? run_cases<true, Mask>(s, std::make_index_sequence<N>{})
                    : run_cases<false, Mask>(s, std::make_index_sequence<N>{});
}

using SelectFn = std::size_t (*)(SelectRun&);

template <std::size_t N, unsigned... Mask>
constexpr std::array<SelectFn, sizeof...(Mask)> select_table(std::integer_sequence<unsigned, Mask...>) {
  return {&select_fn<N, Mask>...};
}

}  // namespace detail

// Runs s as one weft::select; fills in s's outcome and checks that exactly
// one handler ran and that select's return value names it.
inline void run_select(SelectRun& s) {
  static constexpr auto t1 = detail::select_table<1>(std::make_integer_sequence<unsigned, 2>{});
  static constexpr auto t2 = detail::select_table<2>(std::make_integer_sequence<unsigned, 4>{});
  static constexpr auto t3 = detail::select_table<3>(std::make_integer_sequence<unsigned, 8>{});
  static_assert(k_max_cases == 3);
  const std::size_t n = s.cases.size();
  unsigned mask = 0;
  for (std::size_t i = 0; i < n; ++i) mask |= (s.cases[i].is_send ? 1u : 0u) << i;
  const detail::SelectFn fn = n == 1 ? t1[mask] : n == 2 ? t2[mask] : t3[mask];
  const std::size_t pos = fn(s);
  FUZZ_EXPECT(s.handlers_run == 1, "select ran %d handlers", s.handlers_run);
  int named;  // the case select's return value names
  if (s.extra == Extra::none) {
    named = static_cast<int>(pos);
  } else if (s.extra_first) {
    named = pos == 0 ? -1 : static_cast<int>(pos) - 1;
  } else {
    named = pos == n ? -1 : static_cast<int>(pos);
  }
  FUZZ_EXPECT(named == s.fired, "select returned position %zu but case %d's handler ran", pos, s.fired);
}

}  // namespace weft_fuzz
