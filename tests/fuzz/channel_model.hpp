// A sequential model of weft channel semantics, for the fuzzer
// (channel_fuzz.cpp runs the same operations on real weft channels and
// compares every result with what this model predicts).
//
// It is written to be obviously right, not fast: plain std::deque buffers and
// wait queues, no locks, no fibers. It models what docs/guide/channels.md and
// include/weft/{channel,select}.hpp promise:
//   - a buffer of `capacity` values; block / drop_newest (dropping) /
//     drop_oldest (sliding) when it is full; capacity 0 = unbuffered;
//   - parked receivers and parked senders, each served in FIFO order; a
//     parked receiver means the buffer is empty, a parked sender means it is
//     full (so a receive that frees a slot moves the oldest parked sender's
//     value into it, behind the buffered ones);
//   - close: every parked receiver gets nothing, every parked sender false;
//     buffered values can still be received; later sends fail;
//   - select: a case is ready when its channel is closed, or a counterpart
//     waits, or (send) the buffer has room / never blocks, or (recv) a value
//     is buffered; priority commits the first ready case; a parked select sits
//     on every channel it names and the first counterpart (or close) to reach
//     it completes exactly that case and takes it off all the others.
//
// Values are ids 0, 1, 2, ... (new_value()). The model also says what finally
// happens to each one (its Fate), so the fuzzer can check that nothing is lost
// or delivered twice.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace weft_fuzz {

enum class Policy : unsigned char { block, drop_newest, drop_oldest };

// How one operation ended (weft's ChannelOpResult / OpStatus).
enum class Status : unsigned char { ok, closed, would_block };

// What finally happened to a value.
enum class Fate : unsigned char {
  pending,    // still buffered (or never sent yet)
  received,   // taken by exactly one receiver
  destroyed,  // discarded by a dropping/sliding buffer, or with a select case that did not send it
  returned,   // a send failed and the value stayed with its sender
};

class Model {
 public:
  using Id = std::int64_t;

  // One channel operation of a waiter or a select: send `value` on, or
  // receive from, channel `chan`.
  struct Case {
    int chan = 0;
    bool is_send = false;
    Id value = -1;
  };

  // How a wait (or a select) ended: case `index` committed; ok = sent /
  // received (false: the channel was closed); `value` = the id received.
  struct Outcome {
    bool done = false;
    int index = -1;
    bool ok = false;
    Id value = -1;
  };

  struct Waiter {
    std::vector<Case> cases;
    bool is_select = false;  // a failed select send destroys its value; a failed send returns it
    Outcome outcome;
  };

  struct Chan {
    Policy policy = Policy::block;
    std::size_t capacity = 0;
    std::deque<Id> buffer;
    bool closed = false;
    std::uint64_t dropped = 0;
    std::deque<int> receivers;  // parked waiters, oldest first
    std::deque<int> senders;
  };

  std::vector<Chan> chans;
  std::vector<Waiter> waiters;
  std::vector<Fate> fates;  // indexed by Id

  int add_channel(Policy policy, std::size_t capacity) {
    chans.push_back(Chan{policy, capacity, {}, false, 0, {}, {}});
    return static_cast<int>(chans.size()) - 1;
  }

  Id new_value() {
    fates.push_back(Fate::pending);
    return static_cast<Id>(fates.size()) - 1;
  }

  bool send_ready(int c) const {
    const Chan& ch = chans[c];
    return ch.closed || !ch.receivers.empty() || ch.buffer.size() < ch.capacity || ch.policy != Policy::block;
  }
  bool recv_ready(int c) const {
    const Chan& ch = chans[c];
    return ch.closed || !ch.buffer.empty() || !ch.senders.empty();
  }
  bool ready(const Case& k) const { return k.is_send ? send_ready(k.chan) : recv_ready(k.chan); }

  // try_send. When the value is not sent (closed, would_block) its fate
  // becomes `if_not_sent`: returned for send, destroyed for a select case.
  Status send(int c, Id v, Fate if_not_sent = Fate::returned) {
    Chan& ch = chans[c];
    if (ch.closed) {
      fates[v] = if_not_sent;
      return Status::closed;
    }
    if (!ch.receivers.empty()) {
      fates[v] = Fate::received;
      complete(ch.receivers.front(), c, /*is_send=*/false, /*ok=*/true, v);
      return Status::ok;
    }
    if (ch.buffer.size() < ch.capacity) {
      ch.buffer.push_back(v);
      return Status::ok;
    }
    switch (ch.policy) {
      case Policy::block:
        fates[v] = if_not_sent;
        return Status::would_block;
      case Policy::drop_newest:
        ++ch.dropped;
        fates[v] = Fate::destroyed;
        return Status::ok;
      case Policy::drop_oldest:
        ++ch.dropped;
        fates[ch.buffer.front()] = Fate::destroyed;
        ch.buffer.pop_front();
        ch.buffer.push_back(v);
        return Status::ok;
    }
    return Status::would_block;
  }

  struct Received {
    Status status = Status::would_block;
    Id value = -1;
  };

  // try_recv.
  Received recv(int c) {
    Chan& ch = chans[c];
    if (!ch.buffer.empty()) {
      const Id v = ch.buffer.front();
      ch.buffer.pop_front();
      fates[v] = Fate::received;
      if (!ch.senders.empty()) {
        const int w = ch.senders.front();
        ch.buffer.push_back(case_on(w, c, true).value);
        complete(w, c, /*is_send=*/true, /*ok=*/true, -1);
      }
      return {Status::ok, v};
    }
    if (!ch.senders.empty()) {
      const int w = ch.senders.front();
      const Id v = case_on(w, c, true).value;
      fates[v] = Fate::received;
      complete(w, c, /*is_send=*/true, /*ok=*/true, -1);
      return {Status::ok, v};
    }
    return {ch.closed ? Status::closed : Status::would_block, -1};
  }

  void close(int c) {
    Chan& ch = chans[c];
    if (ch.closed) return;
    ch.closed = true;
    while (!ch.receivers.empty()) complete(ch.receivers.front(), c, false, false, -1);
    while (!ch.senders.empty()) complete(ch.senders.front(), c, true, false, -1);
  }

  // The indices of the cases that are ready now.
  std::vector<int> ready_cases(const std::vector<Case>& cases) const {
    std::vector<int> r;
    for (std::size_t i = 0; i < cases.size(); ++i) {
      if (ready(cases[i])) r.push_back(static_cast<int>(i));
    }
    return r;
  }

  // Commits case i (which must be ready) of a select that does not park;
  // the other send cases' values die with their cases.
  Outcome commit(const std::vector<Case>& cases, int i, bool is_select = true) {
    Outcome o{true, i, false, -1};
    const Case& k = cases[i];
    if (k.is_send) {
      o.ok = send(k.chan, k.value, is_select ? Fate::destroyed : Fate::returned) == Status::ok;
    } else {
      const Received r = recv(k.chan);
      o.ok = r.status == Status::ok;
      o.value = r.value;
    }
    for (std::size_t j = 0; j < cases.size(); ++j) {
      if (static_cast<int>(j) != i && cases[j].is_send) fates[cases[j].value] = Fate::destroyed;
    }
    return o;
  }

  // No case committed (a default or a deadline): every send value dies with
  // its case (a select), or goes back to its sender (a timed send).
  void abandon(const std::vector<Case>& cases, bool is_select = true) {
    for (const Case& k : cases) {
      if (k.is_send) fates[k.value] = is_select ? Fate::destroyed : Fate::returned;
    }
  }

  // A blocking send, recv or priority select starts: it commits the first
  // ready case at once, or else parks on every channel it names, in case
  // order. Returns the waiter's index (its outcome tells which happened).
  int start(std::vector<Case> cases, bool is_select) {
    const int w = static_cast<int>(waiters.size());
    waiters.push_back(Waiter{std::move(cases), is_select, {}});
    const std::vector<int> r = ready_cases(waiters[w].cases);
    if (!r.empty()) {
      const Outcome o = commit(waiters[w].cases, r.front(), is_select);  // never adds waiters
      waiters[w].outcome = o;
      return w;
    }
    for (const Case& k : waiters[w].cases) {
      Chan& ch = chans[k.chan];
      (k.is_send ? ch.senders : ch.receivers).push_back(w);
    }
    return w;
  }

  bool parked(int w) const { return !waiters[w].outcome.done; }

 private:
  // The first of waiter w's cases on channel c in that direction.
  const Case& case_on(int w, int c, bool is_send) const {
    for (const Case& k : waiters[w].cases) {
      if (k.chan == c && k.is_send == is_send) return k;
    }
    return waiters[w].cases.front();  // unreachable: w is queued on c
  }

  // Ends parked waiter w's wait through its case on channel c: take it off
  // every queue it is on, record the outcome, settle its other values.
  void complete(int w, int c, bool is_send, bool ok, Id value) {
    Waiter& wt = waiters[w];
    for (const Case& k : wt.cases) {
      std::deque<int>& q = k.is_send ? chans[k.chan].senders : chans[k.chan].receivers;
      q.erase(std::remove(q.begin(), q.end(), w), q.end());
    }
    const Case& fired = case_on(w, c, is_send);
    const int index = static_cast<int>(&fired - wt.cases.data());
    wt.outcome = Outcome{true, index, ok, value};
    for (const Case& k : wt.cases) {
      if (!k.is_send) continue;
      if (&k == &fired && ok) continue;  // the receiver side set its fate
      fates[k.value] = wt.is_select ? Fate::destroyed : Fate::returned;
    }
  }
};

}  // namespace weft_fuzz
