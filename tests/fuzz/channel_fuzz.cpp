// libFuzzer target: weft channels and select, checked against a model.
//
// The bytes of an input become up to four channels (policy and capacity from
// the first bytes) and a sequence of operations on them, run as one fiber of
// a one-worker weft::Runtime (created once, reused by every input) and
// checked, one by one, against the sequential model in channel_model.hpp:
//   try_send / try_recv, send_for / recv_for with a zero timeout, close,
//   the observers (size, dropped, is_closed, capacity, policy, and the number
//   of parked senders and receivers), select with on_default or after(0) over
//   1-3 send/recv cases (weft::priority: the model says which case commits;
//   random: the committed case must be one the model says is ready),
//   blocking send / recv / select on the main fiber where the model says they
//   will not park, a send_for / recv_for / select+after(100 us) that parks and
//   times out, and helper fibers that park in a blocking (or 1-hour timed)
//   send, recv or select and are completed later by the main fiber's
//   operations or by close, in FIFO order.
//
// Determinism: with one worker, a fiber runs until it parks or yields. The
// main fiber spawns a helper and yields until the helper has started; by then
// the helper has either completed its operation or parked. A helper that is
// woken runs (and records what it got) only when the main fiber next yields
// (the flush operation, another spawn, a timed park), so selects' stale wait
// nodes stay on their channels for a while, as they do in real programs.
//
// Every value sent is a fresh id carried by a Token, whose every fate
// (received, destroyed by a buffer or with a select case, returned to its
// sender) is recorded exactly once and compared with the model's at the end,
// after every channel is closed, every helper joined and every buffer drained
// (or freed). Any difference prints the operation trace and aborts.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include <weft/weft.hpp>

#include "channel_model.hpp"
#include "fuzz_support.hpp"

namespace weft_fuzz {
namespace {

constexpr std::size_t k_max_channels = 4;
// Mostly 0-4; 9 and 17 make the ring buffer grow (it starts at 8 slots and
// doubles), with its head anywhere.
constexpr std::size_t k_capacities[] = {0, 1, 2, 3, 4, 2, 9, 17};
constexpr std::size_t k_max_helpers = 32;
constexpr int k_max_short_waits = 4;  // each parks ~0.1 ms
constexpr int k_yield_limit = 64;

weft::Runtime& runtime() {
  static weft::Runtime rt(weft::Runtime::Options{.workers = 1});
  return rt;
}

const char* policy_name(Policy p) {
  return p == Policy::block ? "buffered" : p == Policy::drop_newest ? "dropping" : "sliding";
}
const char* extra_name(Extra e) {
  switch (e) {
    case Extra::none: return "";
    case Extra::on_default: return " +default";
    case Extra::after_zero: return " +after(0)";
    case Extra::after_short: return " +after(100us)";
    case Extra::after_long: return " +after(1h)";
  }
  return "?";
}
const char* status_name(Status s) { return s == Status::ok ? "ok" : s == Status::closed ? "closed" : "would_block"; }
Status status_of(weft::OpStatus s) {
  return s == weft::OpStatus::ok ? Status::ok : s == weft::OpStatus::closed ? Status::closed : Status::would_block;
}

std::string cases_text(const std::vector<Model::Case>& cases) {
  std::string out;
  for (const Model::Case& k : cases) {
    char buf[48];
    if (k.is_send) {
      std::snprintf(buf, sizeof buf, " c%d<-v%lld", k.chan, static_cast<long long>(k.value));
    } else {
      std::snprintf(buf, sizeof buf, " <-c%d", k.chan);
    }
    out += buf;
  }
  return out;
}

std::string outcome_text(const Model::Outcome& o) {
  if (!o.done) return "parked";
  char buf[64];
  std::snprintf(buf, sizeof buf, "case %d %s v%lld", o.index, o.ok ? "ok" : "closed", static_cast<long long>(o.value));
  return buf;
}

// The input's bytes, consumed from the front; 0 once they run out.
class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
  bool empty() const { return n_ == 0; }
  std::uint8_t next() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

// A fiber in a blocking (or 1-hour timed) send, recv or select.
struct Helper {
  enum class Kind : unsigned char { send, recv, select };
  Kind kind = Kind::send;
  bool timed = false;
  int waiter = -1;  // its Model::Waiter
  SelectRun sel;    // its cases (exactly one for send and recv)
  bool started = false;
  bool finished = false;
  bool compared = false;
  Model::Outcome seen;  // what it got
  weft::JoinHandle<void> handle;
};

enum class How : unsigned char { try_op, zero_timeout, blocking, short_wait };
const char* how_name(How h) {
  return h == How::try_op ? "try" : h == How::zero_timeout ? "zero" : h == How::blocking ? "blocking" : "short";
}

enum class Op : unsigned char {
  try_send, try_recv, close, observe, select_default, select_after_zero, send_for_zero, recv_for_zero,
  spawn_send, spawn_recv, spawn_select, send, recv, select, short_wait, flush,
};
// Weights: an operation's share of the byte values.
constexpr Op k_ops[] = {
    Op::try_send,       Op::try_send,      Op::try_send,      Op::try_recv,   Op::try_recv,     Op::try_recv,
    Op::close,          Op::observe,       Op::select_default, Op::select_default, Op::select_after_zero,
    Op::send_for_zero,  Op::recv_for_zero, Op::spawn_send,    Op::spawn_send, Op::spawn_recv,   Op::spawn_recv,
    Op::spawn_select,   Op::spawn_select,  Op::send,          Op::recv,       Op::select,       Op::short_wait,
    Op::flush,
};

// One input: its channels, the model, its helpers.
class Session {
 public:
  explicit Session(Bytes& in) : in_(in) {
    const std::uint8_t head = in_.next();
    const std::size_t n = 1 + head % k_max_channels;
    drain_ = (head & 0x80) == 0;
    std::string config = "channels:";
    for (std::size_t c = 0; c < n; ++c) {
      const std::uint8_t b = in_.next();
      const auto policy = static_cast<Policy>(b % 3);
      std::size_t capacity = k_capacities[(b / 3) % std::size(k_capacities)];
      if (policy != Policy::block && capacity == 0) capacity = 1;
      m_.add_channel(policy, capacity);
      const auto bp = policy == Policy::block         ? weft::BufferPolicy::block
                      : policy == Policy::drop_newest ? weft::BufferPolicy::drop_newest
                                                      : weft::BufferPolicy::drop_oldest;
      char name[64];
      std::snprintf(name, sizeof name, "c%zu", c);
      chans_.emplace_back(weft::ChannelBuffer{bp, capacity}, name);
      std::snprintf(name, sizeof name, " c%zu=%s(%zu)", c, policy_name(policy), capacity);
      config += name;
    }
    trace("%s%s", config.c_str(), drain_ ? "" : ", not drained at the end");
  }

  void run() {
    while (!in_.empty()) {
      const Op op = k_ops[in_.next() % std::size(k_ops)];
      switch (op) {
        case Op::try_send: send_op(chan_arg(), How::try_op); break;
        case Op::try_recv: recv_op(chan_arg(), How::try_op); break;
        case Op::send_for_zero: send_op(chan_arg(), How::zero_timeout); break;
        case Op::recv_for_zero: recv_op(chan_arg(), How::zero_timeout); break;
        case Op::send: send_op(chan_arg(), How::blocking); break;
        case Op::recv: recv_op(chan_arg(), How::blocking); break;
        case Op::close: close_op(chan_arg()); break;
        case Op::observe: observe_op(chan_arg()); break;
        case Op::select_default: select_op(Extra::on_default); break;
        case Op::select_after_zero: select_op(Extra::after_zero); break;
        case Op::select: select_op(Extra::none); break;
        case Op::short_wait: {
          const std::uint8_t b = in_.next();
          if (b % 3 == 0) send_op(chan_arg(), How::short_wait);
          else if (b % 3 == 1) recv_op(chan_arg(), How::short_wait);
          else select_op(Extra::after_short);
          break;
        }
        case Op::spawn_send: spawn_op(Helper::Kind::send); break;
        case Op::spawn_recv: spawn_op(Helper::Kind::recv); break;
        case Op::spawn_select: spawn_op(Helper::Kind::select); break;
        case Op::flush: flush(); trace("flush"); break;
      }
    }
    finish();
  }

 private:
  int chan_arg() { return in_.next() % static_cast<int>(chans_.size()); }

  Id fresh() {
    ledger().fates.push_back(Fate::pending);
    return m_.new_value();
  }

  // After a send: the Token must be empty if it was sent, else still hold v.
  static void settle_send(Token& t, Id v, bool sent, const char* who) {
    if (sent) {
      FUZZ_EXPECT(t.id == -1, "%s: sent, yet the sender still holds v%lld", who, static_cast<long long>(v));
      return;
    }
    const Id back = t.take();
    FUZZ_EXPECT(back == v, "%s: not sent, yet v%lld is gone from the sender", who, static_cast<long long>(v));
    ledger().note(v, Fate::returned);
  }

  // Parks that will time out cost real time: a few per input, then they
  // become zero timeouts.
  How budget(How how, bool would_park) {
    if (how != How::short_wait || !would_park) return how;
    if (short_waits_left_ == 0) return How::zero_timeout;
    --short_waits_left_;
    return how;
  }

  void send_op(int c, How how) {
    Chan& ch = chans_[c];
    if (how == How::blocking && !m_.send_ready(c)) {
      trace("blocking send c%d: skipped (the model says it would park)", c);
      return;
    }
    how = budget(how, !m_.send_ready(c));
    const Id v = fresh();
    Token t(v);
    Status want = m_.send(c, v);
    Status got = Status::would_block;
    switch (how) {
      case How::try_op:
        got = ch.try_send(std::move(t)) ? Status::ok : Status::would_block;
        if (want == Status::closed) want = Status::would_block;  // try_send says false for both
        break;
      case How::zero_timeout: got = status_of(ch.send_for(std::move(t), std::chrono::nanoseconds(0))); break;
      case How::short_wait: got = status_of(ch.send_for(std::move(t), k_short_wait)); break;
      case How::blocking: got = ch.send(std::move(t)) ? Status::ok : Status::closed; break;
    }
    trace("%s send c%d v%lld -> %s (model: %s)", how_name(how), c, static_cast<long long>(v), status_name(got),
          status_name(want));
    FUZZ_EXPECT(got == want, "send on c%d: weft says %s, the model %s", c, status_name(got), status_name(want));
    settle_send(t, v, got == Status::ok, "send");
    if (how == How::short_wait) check_helpers();
  }

  void recv_op(int c, How how) {
    Chan& ch = chans_[c];
    if (how == How::blocking && !m_.recv_ready(c)) {
      trace("blocking recv c%d: skipped (the model says it would park)", c);
      return;
    }
    how = budget(how, !m_.recv_ready(c));
    Model::Received want = m_.recv(c);
    Status got = Status::would_block;
    Id value = -1;
    auto take = [&](std::optional<Token>& v) {
      if (v) value = v->take();
      return v.has_value();
    };
    switch (how) {
      case How::try_op: {
        std::optional<Token> v = ch.try_recv();
        got = take(v) ? Status::ok : Status::would_block;
        if (want.status == Status::closed) want.status = Status::would_block;  // try_recv: nullopt for both
        break;
      }
      case How::zero_timeout:
      case How::short_wait: {
        weft::RecvResult<Token> r =
            how == How::short_wait ? ch.recv_for(k_short_wait) : ch.recv_for(std::chrono::nanoseconds(0));
        got = status_of(r.status);
        FUZZ_EXPECT(take(r.value) == (got == Status::ok), "recv_for on c%d: status %s with%s a value", c,
                    status_name(got), r.value ? "" : "out");
        break;
      }
      case How::blocking: {
        std::optional<Token> v = ch.recv();
        got = take(v) ? Status::ok : Status::closed;
        break;
      }
    }
    if (value >= 0) ledger().note(value, Fate::received);
    trace("%s recv c%d -> %s v%lld (model: %s v%lld)", how_name(how), c, status_name(got),
          static_cast<long long>(value), status_name(want.status), static_cast<long long>(want.value));
    FUZZ_EXPECT(got == want.status && value == want.value, "recv on c%d differs from the model", c);
    if (how == How::short_wait) check_helpers();
  }

  void close_op(int c) {
    chans_[c].close();
    m_.close(c);
    trace("close c%d", c);
    FUZZ_EXPECT(chans_[c].is_closed(), "c%d is not closed after close()", c);
  }

  // A helper the model has completed but that has not yet run to its end.
  bool woken_helper_pending() const {
    return std::any_of(helpers_.begin(), helpers_.end(),
                       [&](const Helper& h) { return !m_.parked(h.waiter) && !h.finished; });
  }

  void observe_op(int c) {
    const Chan& ch = chans_[c];
    const Model::Chan& mc = m_.chans[c];
    const std::size_t size = ch.size();
    const std::uint64_t dropped = ch.dropped();
    const bool closed = ch.is_closed();
    trace("observe c%d: size %zu dropped %llu closed %d (model: %zu %llu %d)", c, size,
          static_cast<unsigned long long>(dropped), closed, mc.buffer.size(),
          static_cast<unsigned long long>(mc.dropped), mc.closed);
    FUZZ_EXPECT(size == mc.buffer.size() && dropped == mc.dropped && closed == mc.closed,
                "observers of c%d differ from the model", c);
    FUZZ_EXPECT(ch.capacity() == mc.capacity, "c%d: capacity %zu", c, ch.capacity());
    FUZZ_EXPECT(static_cast<int>(ch.policy()) == static_cast<int>(mc.policy), "c%d: wrong policy", c);
    if (woken_helper_pending()) return;  // its select may still have stale nodes queued
    const std::size_t senders = weft::detail::channel_waiting_senders(ch.core("observe"));
    const std::size_t receivers = weft::detail::channel_waiting_receivers(ch.core("observe"));
    FUZZ_EXPECT(senders == mc.senders.size() && receivers == mc.receivers.size(),
                "c%d: %zu senders and %zu receivers parked; the model has %zu and %zu", c, senders, receivers,
                mc.senders.size(), mc.receivers.size());
  }

  // Reads a select's shape: a spec byte (low nibble: number of cases - 1,
  // 0x10: random instead of priority, 0x20: the extra case first), then one
  // byte per case (low nibble: channel, 0x10: send). A parked helper's select
  // names each channel at most once (later duplicates are dropped).
  void read_select(SelectRun& s, bool distinct) {
    const std::uint8_t spec = in_.next();
    const std::size_t n = 1 + (spec & 0x0f) % k_max_cases;
    s.chans = &chans_;
    s.priority = (spec & 0x10) == 0;
    s.extra_first = (spec & 0x20) != 0;
    s.cases.clear();
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint8_t b = in_.next();
      const int c = (b & 0x0f) % static_cast<int>(chans_.size());
      if (distinct && std::any_of(s.cases.begin(), s.cases.end(), [c](const Model::Case& k) { return k.chan == c; })) {
        continue;
      }
      s.cases.push_back(Model::Case{c, (b & 0x10) != 0, -1});
    }
  }

  void give_ids(std::vector<Model::Case>& cases) {
    for (Model::Case& k : cases) {
      if (k.is_send) k.value = fresh();
    }
  }

  void select_op(Extra extra) {
    SelectRun s;
    read_select(s, false);
    s.extra = extra;
    const std::vector<int> ready = m_.ready_cases(s.cases);
    if (extra == Extra::none && ready.empty()) {
      trace("select%s: skipped (the model says it would park)", cases_text(s.cases).c_str());
      return;
    }
    if (extra == Extra::after_short && ready.empty()) {
      if (short_waits_left_ == 0) s.extra = Extra::after_zero; else --short_waits_left_;
    }
    give_ids(s.cases);
    run_select(s);
    int want = -1;
    if (!ready.empty()) {
      want = ready.front();
      if (!s.priority && std::find(ready.begin(), ready.end(), s.fired) != ready.end()) want = s.fired;
    }
    const Model::Outcome o = want >= 0 ? m_.commit(s.cases, want) : Model::Outcome{true, -1, false, -1};
    if (want < 0) m_.abandon(s.cases);
    trace("select %s%s%s%s -> case %d %s v%lld (model: %s, %zu ready)", s.priority ? "priority" : "random",
          extra_name(s.extra), s.extra_first && s.extra != Extra::none ? " first" : "", cases_text(s.cases).c_str(), s.fired,
          s.ok ? "ok" : "closed", static_cast<long long>(s.value), outcome_text(o).c_str(), ready.size());
    FUZZ_EXPECT(s.fired == o.index && s.ok == o.ok && s.value == o.value, "select differs from the model");
    if (s.extra == Extra::after_short) check_helpers();
  }

  void helper_body(Helper& h) {
    h.started = true;
    Chan ch = chans_[h.sel.cases.front().chan];  // a handle of its own
    Model::Outcome& o = h.seen;
    o.index = 0;
    switch (h.kind) {
      case Helper::Kind::send: {
        const Id v = h.sel.cases.front().value;
        Token t(v);
        if (h.timed) {
          const weft::OpStatus st = ch.send_for(std::move(t), k_long_wait);
          FUZZ_EXPECT(st != weft::OpStatus::timed_out, "a 1-hour send_for timed out");
          o.ok = st == weft::OpStatus::ok;
        } else {
          o.ok = ch.send(std::move(t));
        }
        settle_send(t, v, o.ok, "helper send");
        break;
      }
      case Helper::Kind::recv: {
        std::optional<Token> v = h.timed ? [&] {
          weft::RecvResult<Token> r = ch.recv_for(k_long_wait);
          FUZZ_EXPECT(!r.timed_out(), "a 1-hour recv_for timed out");
          return std::move(r.value);
        }()
                                         : ch.recv();
        o.ok = v.has_value();
        o.value = v ? v->take() : -1;
        if (o.value >= 0) ledger().note(o.value, Fate::received);
        break;
      }
      case Helper::Kind::select:
        run_select(h.sel);
        o.index = h.sel.fired;
        o.ok = h.sel.ok;
        o.value = h.sel.value;
        break;
    }
    o.done = true;
    h.finished = true;
  }

  void spawn_op(Helper::Kind kind) {
    const std::uint8_t b = in_.next();
    if (helpers_.size() >= k_max_helpers) {
      trace("spawn: skipped (%zu helpers)", helpers_.size());
      return;
    }
    Helper& h = helpers_.emplace_back();
    h.kind = kind;
    h.timed = (b & 0x80) != 0;
    h.sel.chans = &chans_;
    if (kind == Helper::Kind::select) {
      read_select(h.sel, true);
      h.sel.priority = true;  // which case a ready select takes is the model's to say
      h.sel.extra = h.timed ? Extra::after_long : Extra::none;
      h.sel.extra_first = false;
    } else {
      h.sel.cases = {Model::Case{(b & 0x0f) % static_cast<int>(chans_.size()), kind == Helper::Kind::send, -1}};
    }
    give_ids(h.sel.cases);
    h.waiter = m_.start(h.sel.cases, kind == Helper::Kind::select);
    const std::size_t index = helpers_.size() - 1;
    h.handle = weft::go([this, &h] { helper_body(h); });
    for (int i = 0; !h.started; ++i) {
      FUZZ_EXPECT(i < k_yield_limit, "helper %zu never started", index);
      weft::this_fiber::yield();
    }
    const char* what = kind == Helper::Kind::send ? "send" : kind == Helper::Kind::recv ? "recv" : "select";
    trace("spawn helper %zu: %s%s%s -> %s (model: %s)", index, h.timed ? "timed " : "", what,
          cases_text(h.sel.cases).c_str(), h.finished ? outcome_text(h.seen).c_str() : "parked",
          outcome_text(m_.waiters[h.waiter].outcome).c_str());
    check_helpers();
  }

  // No helper may have finished while the model has it parked; each one
  // that finished got what the model says.
  void check_helpers() {
    for (std::size_t i = 0; i < helpers_.size(); ++i) {
      Helper& h = helpers_[i];
      if (!h.finished || h.compared) continue;
      const Model::Outcome& want = m_.waiters[h.waiter].outcome;
      FUZZ_EXPECT(want.done, "helper %zu finished (%s) but the model has it parked", i, outcome_text(h.seen).c_str());
      FUZZ_EXPECT(h.seen.index == want.index && h.seen.ok == want.ok && h.seen.value == want.value,
                  "helper %zu got %s, the model says %s", i, outcome_text(h.seen).c_str(),
                  outcome_text(want).c_str());
      h.compared = true;
    }
  }

  // Yields until every helper the model has completed has run to its end.
  void flush() {
    for (int i = 0; woken_helper_pending(); ++i) {
      FUZZ_EXPECT(i < k_yield_limit, "a helper the model says was completed is still parked");
      weft::this_fiber::yield();
    }
    check_helpers();
  }

  void finish() {
    flush();
    for (std::size_t c = 0; c < chans_.size(); ++c) observe_op(static_cast<int>(c));
    for (std::size_t c = 0; c < chans_.size(); ++c) close_op(static_cast<int>(c));
    flush();
    for (std::size_t i = 0; i < helpers_.size(); ++i) {
      FUZZ_EXPECT(helpers_[i].finished, "helper %zu still parked after every channel was closed", i);
      helpers_[i].handle.join();
    }
    for (std::size_t c = 0; c < chans_.size(); ++c) {
      std::deque<Id>& left = m_.chans[c].buffer;
      if (!drain_) {
        for (Id v : left) m_.fates[v] = Fate::destroyed;  // freed with the channel
        continue;
      }
      std::string got;
      std::size_t n = 0;
      for (Token& t : chans_[c]) {  // closed: receives what is buffered, never parks
        const Id v = t.take();
        if (v >= 0) ledger().note(v, Fate::received);
        got += " v" + std::to_string(v);
        FUZZ_EXPECT(n < left.size() && left[n] == v, "draining c%zu:%s differs from the model", c, got.c_str());
        m_.fates[v] = Fate::received;
        ++n;
      }
      trace("drain c%zu:%s", c, got.c_str());
      FUZZ_EXPECT(n == left.size(), "draining c%zu gave %zu values; the model has %zu", c, n, left.size());
      FUZZ_EXPECT(chans_[c].size() == 0, "c%zu not empty after draining", c);
      left.clear();
    }
    FUZZ_EXPECT(runtime().metrics().armed_timers == 0, "%zu timers still armed", runtime().metrics().armed_timers);
    helpers_.clear();
    chans_.clear();  // frees the channels, and the values an undrained one holds
    FUZZ_EXPECT(ledger().live == 0, "%ld values still held after every channel was freed", ledger().live);
    for (std::size_t v = 0; v < m_.fates.size(); ++v) {
      const Fate seen = ledger().fates[v];
      FUZZ_EXPECT(seen != Fate::pending, "value v%zu was lost", v);
      FUZZ_EXPECT(seen == m_.fates[v], "value v%zu: fate %d, the model says %d", v, static_cast<int>(seen),
                  static_cast<int>(m_.fates[v]));
    }
  }

  Bytes& in_;
  Model m_;
  std::vector<Chan> chans_;
  std::deque<Helper> helpers_;  // a deque: helpers keep their addresses
  bool drain_ = true;
  int short_waits_left_ = k_max_short_waits;
};

}  // namespace
}  // namespace weft_fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace weft_fuzz;
  trace_lines().clear();
  ledger().reset();
  try {
    runtime().block_on([&] {
      Bytes in(data, size);
      Session session(in);
      session.run();
    });
  } catch (const std::exception& e) {
    fail("exception: %s", e.what());
  }
  // WEFT_FUZZ_TRACE=1: print every input's trace (to see what an input does).
  static const bool print_trace = std::getenv("WEFT_FUZZ_TRACE") != nullptr;
  if (print_trace) {
    for (const std::string& line : trace_lines()) std::fprintf(stderr, "  %s\n", line.c_str());
    std::fprintf(stderr, "  --- end of input (%zu bytes)\n", size);
  }
  // Free what this input allocated before it ends: libFuzzer's leak check
  // (-detect_leaks) rescans the whole heap after any input that leaves more
  // allocations than it found, which would cost ~5x the execution speed.
  std::vector<std::string>().swap(trace_lines());
  std::vector<Fate>().swap(ledger().fates);
  return 0;
}
