// Runtime::dump() and the per-fiber line (fiber_dump.hpp has the format and
// what is listed).
#include "diagnostics/fiber_dump.hpp"

#include <cinttypes>
#include <cstdio>
#include <mutex>

#include "scheduling/fiber.hpp"
#include "scheduling/scheduler.hpp"
#include "scheduling/worker.hpp"
#include "sync/wait_visit.hpp"
#include "sync/waiter.hpp"
#include "time/park_stamp.hpp"

namespace weft::detail {

namespace {

// Brackets a fiber id in a description; neither byte occurs in what weft
// itself writes there (user-given names could contain them; they would
// only garble that one line).
constexpr char k_ref_open = '\x1e';
constexpr char k_ref_close = '\x1f';

void append_quoted(std::string& out, std::string_view name) {
  out += '"';
  out += name;
  out += '"';
}

void append_fiber(std::string& out, std::uint64_t id, const FiberNames& names) {
  out += "fiber ";
  out += std::to_string(id);
  if (auto it = names.find(id); it != names.end()) {
    out += ' ';
    append_quoted(out, it->second);
  }
}

}  // namespace

void append_fiber_ref(std::string& out, std::uint64_t id) {
  out += "fiber ";
  out += k_ref_open;
  out += std::to_string(id);
  out += k_ref_close;
}

void append_duration(std::string& out, Nanos ns) {
  if (ns < 0) ns = 0;
  char buf[32];
  if (ns < 1'000'000) {
    std::snprintf(buf, sizeof buf, "%" PRId64 " us", ns / 1'000);
  } else if (ns < 1'000'000'000) {
    std::snprintf(buf, sizeof buf, "%" PRId64 " ms", ns / 1'000'000);
  } else if (ns < 100'000'000'000) {
    std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ns) / 1e9);
  } else {
    std::snprintf(buf, sizeof buf, "%" PRId64 " s", ns / 1'000'000'000);
  }
  out += buf;
}

std::vector<FiberEntry> collect_fibers(Scheduler& s, bool parked_only) {
  // Running ids first: a listed fiber whose id a worker shows is running
  // there. A snapshot: a fiber may park or resume while we look, and then
  // shows as runnable (the states are read at different moments).
  const std::size_t n = s.num_workers();
  std::vector<std::uint64_t> running(n);
  for (std::size_t i = 0; i < n; ++i) running[i] = s.worker(i).running_id();
  std::vector<bool> running_listed(n, false);

  std::vector<FiberEntry> entries;
  const WaitVisit visit;  // parked_on is read below (sync/wait_visit.hpp)
  s.live().for_each([&](Fiber* f) {
    // wait_lock (inside the visit) keeps parked_on alive and orders the name
    // and park_stamp (fiber.hpp).
    std::lock_guard<SpinLock> guard(f->wait_lock);
    // acquire: pairs with publish_parked_on's release store.
    Waiter* parked_on = f->parked_on.load(std::memory_order_acquire);
    if (parked_only && parked_on == nullptr) return;
    FiberEntry e;
    e.id = fiber_id(f);
    e.spawner_id = f->spawner_id;
    if (f->name != nullptr) {
      e.named = true;
      e.name = f->name;
    }
    if (parked_on != nullptr) {
      e.state = FiberEntry::State::parked;
      e.parked_ns = stamp_age_ns(f->park_stamp);
      parked_on->describe(e.waits_on);
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        if (running[i] == e.id && e.id != 0) {
          e.state = FiberEntry::State::running;
          e.worker = i;
          running_listed[i] = true;
        }
      }
    }
    entries.push_back(std::move(e));
  });
  if (!parked_only) {
    for (std::size_t i = 0; i < n; ++i) {
      if (running[i] == 0 || running_listed[i]) continue;
      FiberEntry e;
      e.id = running[i];
      e.listed = false;
      e.state = FiberEntry::State::running;
      e.worker = i;
      entries.push_back(std::move(e));
    }
  }
  return entries;
}

FiberNames names_of(const std::vector<FiberEntry>& entries) {
  FiberNames names;
  for (const FiberEntry& e : entries) {
    if (e.named) names.emplace(e.id, e.name);
  }
  return names;
}

std::string resolve_fiber_refs(std::string_view text, const FiberNames& names) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t open = text.find(k_ref_open, i);
    if (open == std::string_view::npos) break;
    const std::size_t close = text.find(k_ref_close, open);
    if (close == std::string_view::npos) break;
    // text[i, open) ends with "fiber "; the helper writes it again.
    std::string_view before = text.substr(i, open - i);
    if (before.size() >= 6 && before.substr(before.size() - 6) == "fiber ") before.remove_suffix(6);
    out += before;
    std::uint64_t id = 0;
    for (char c : text.substr(open + 1, close - open - 1)) id = id * 10 + static_cast<std::uint64_t>(c - '0');
    append_fiber(out, id, names);
    i = close + 1;
  }
  out += text.substr(i);
  return out;
}

bool has_fiber_refs(std::string_view text) noexcept {
  return text.find(k_ref_open) != std::string_view::npos || text.find(k_ref_close) != std::string_view::npos;
}

void strip_fiber_ref_markers(std::string& text) noexcept {
  std::size_t out = 0;
  for (char c : text) {
    if (c != k_ref_open && c != k_ref_close) text[out++] = c;
  }
  text.resize(out);  // shrinking: never allocates
}

std::string format_fiber_line(const FiberEntry& e, const FiberNames& names) {
  std::string line = "fiber " + std::to_string(e.id);
  if (e.named) {
    line += ' ';
    append_quoted(line, e.name);
  }
  switch (e.state) {
    case FiberEntry::State::parked:
      line += " [parked ";
      append_duration(line, e.parked_ns);
      line += "] ";
      line += resolve_fiber_refs(e.waits_on, names);
      break;
    case FiberEntry::State::running:
      line += " [running on worker " + std::to_string(e.worker) + "]";
      break;
    case FiberEntry::State::runnable:
      line += " [runnable]";
      break;
  }
  if (!e.listed) return line;  // only its id is known
  line += "; spawned by ";
  if (e.spawner_id == 0) {
    line += "a plain thread";
  } else {
    append_fiber(line, e.spawner_id, names);
  }
  return line;
}

std::string dump_runtime(Scheduler& s) {
  const std::vector<FiberEntry> entries = collect_fibers(s, false);
  const FiberNames names = names_of(entries);
  std::string out = "weft runtime: " + std::to_string(s.num_workers()) + " workers, " +
                    std::to_string(entries.size()) + " fibers listed\n";
  for (std::size_t i = 0; i < s.num_workers(); ++i) {
    Worker& w = s.worker(i);
    out += "worker " + std::to_string(i) + ": ";
    if (const std::uint64_t id = w.running_id(); id != 0) {
      out += "running ";
      append_fiber(out, id, names);
    } else {
      out += "not running a fiber";
    }
    out += ", " + std::to_string(w.queued_count()) + " queued\n";
  }
  out += "shared queues: " + std::to_string(s.injected_approx()) + " submitted from outside, " +
         std::to_string(s.yielded_approx()) + " yielded, " + std::to_string(s.urgent_approx()) + " cancelled\n";
  for (const FiberEntry& e : entries) {
    out += format_fiber_line(e, names);
    out += '\n';
  }
  return out;
}

}  // namespace weft::detail
