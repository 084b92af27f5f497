// Tracer::write(): the lanes merged into one Chrome trace-event JSON object
// (docs/guide/seeing-inside.md has the format). Runs once, at
// shutdown, after every thread that records has been joined.
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <set>
#include <unordered_map>

#include "diagnostics/tracer.hpp"
#include "weft/version.hpp"

namespace weft::detail {

namespace {

// ts and dur in microseconds with three decimals (the format's unit).
void put_us(std::FILE* f, Nanos ns) {
  if (ns < 0) ns = 0;
  std::fprintf(f, "%" PRId64 ".%03" PRId64, static_cast<std::int64_t>(ns / 1000), static_cast<std::int64_t>(ns % 1000));
}

// The length of the well-formed UTF-8 sequence at s (1..4), or 0 when the
// bytes there are not one (a stray continuation byte, an overlong form, a
// surrogate, a cut sequence).
std::size_t utf8_length(const unsigned char* s) {
  const unsigned char c = s[0];
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s[1] < lo || s[1] > hi) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    if ((s[i] & 0xC0) != 0x80) return 0;
  }
  return n;
}

// A JSON string: " \ and control characters escaped, valid UTF-8 copied,
// any other byte written as U+FFFD (a name is the user's bytes; JSON must
// be UTF-8).
void put_string(std::FILE* f, const char* s) {
  std::fputc('"', f);
  while (*s != '\0') {
    const auto c = static_cast<unsigned char>(*s);
    if (c == '"' || c == '\\') {
      std::fputc('\\', f);
      std::fputc(c, f);
    } else if (c == '\n') {
      std::fputs("\\n", f);
    } else if (c < 0x20 || c == 0x7F) {
      std::fprintf(f, "\\u%04x", c);
    } else if (c >= 0x80) {
      const std::size_t n = utf8_length(reinterpret_cast<const unsigned char*>(s));
      if (n == 0) {
        std::fputs("\\ufffd", f);
      } else {
        std::fwrite(s, 1, n, f);
        s += n;
        continue;
      }
    } else {
      std::fputc(c, f);
    }
    ++s;
  }
  std::fputc('"', f);
}

const char* end_name(std::uint8_t end) {
  switch (static_cast<TraceEnd>(end)) {
    case TraceEnd::park: return "park";
    case TraceEnd::yield: return "yield";
    case TraceEnd::finish: return "finish";
    case TraceEnd::preempt: return "preempt";
  }
  return "yield";
}

std::string lane_name(std::uint32_t lane) {
  if (lane >= 2000) return "blocking " + std::to_string(lane - 2000);
  if (lane >= 1000) return "thread " + std::to_string(lane - 1000);
  return "worker " + std::to_string(lane);
}

// The label of a fiber's slices: its name if it has one, else "fiber 17".
std::string fiber_label(std::uint64_t id, const std::unordered_map<std::uint64_t, std::string>& names) {
  if (auto it = names.find(id); it != names.end()) return it->second;
  return "fiber " + std::to_string(id);
}

}  // namespace

bool Tracer::write() noexcept {
  std::FILE* f = std::exchange(file_, nullptr);
  if (f == nullptr) return false;
  bool ok = false;
  int err = 0;
  try {
    std::lock_guard<std::mutex> guard(lock_);  // the shared lane (every other lane's thread is joined)
    ok = write_json(f);
    if (!ok) err = errno;
  } catch (...) {  // std::bad_alloc merging the lanes
    err = ENOMEM;
  }
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    std::fprintf(stderr, "weft: could not write the trace to \"%s\": %s\n", path_.c_str(),
                 std::strerror(err != 0 ? err : EIO));
  }
  return ok;
}

bool Tracer::write_json(std::FILE* f) const {
  std::vector<const TraceBuffer*> lanes;
  for (const auto& w : workers_) lanes.push_back(w.get());
  lanes.push_back(&shared_);

  // Fiber names (the latest recorded for each id), and the tasks joined
  // inline: such a task ran as its joiner (bind), so its spawn and steal
  // name the joiner's id, the one its slices carry.
  std::unordered_map<std::uint64_t, std::pair<Nanos, std::string>> named;
  std::unordered_map<std::uint64_t, std::uint64_t> inline_runs;
  std::set<std::uint32_t> used_lanes;
  std::uint64_t dropped = 0;
  for (const TraceBuffer* b : lanes) {
    dropped += b->dropped();
    b->for_each([&](const TraceEvent& e) {
      used_lanes.insert(e.lane);
      if (e.kind == TraceKind::bind) inline_runs[e.u.span.b] = e.a;
      if (e.kind == TraceKind::name) {
        auto& [ts, name] = named[e.a];
        if (name.empty() || e.ts >= ts) {
          ts = e.ts;
          name = e.u.text;
        }
      }
    });
  }
  std::unordered_map<std::uint64_t, std::string> names;
  for (auto& [id, n] : named) names.emplace(id, std::move(n.second));
  auto task_fiber = [&](std::uint64_t task) {
    auto it = inline_runs.find(task);
    return it == inline_runs.end() ? task : it->second;
  };
  for (std::uint32_t i = 0; i < workers_.size(); ++i) used_lanes.insert(i);

  std::fprintf(f, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"weft_version\":\"%s\",\"workers\":%zu,"
                  "\"time_slice_us\":%" PRId64 ",\"dropped_events\":%" PRIu64 "},\"traceEvents\":[",
               WEFT_VERSION_STRING, workers_.size(), static_cast<std::int64_t>(time_slice_ / 1000), dropped);
  bool first = true;
  auto open = [&](const char* ph, const char* cat, const std::string& name, std::uint32_t lane, Nanos ts) {
    std::fputs(first ? "\n" : ",\n", f);
    first = false;
    std::fprintf(f, "{\"ph\":\"%s\",", ph);
    if (cat != nullptr) std::fprintf(f, "\"cat\":\"%s\",", cat);
    std::fputs("\"name\":", f);
    put_string(f, name.c_str());
    std::fprintf(f, ",\"pid\":1,\"tid\":%" PRIu32 ",\"ts\":", lane);
    put_us(f, ts);
  };
  for (std::uint32_t lane : used_lanes) {
    open("M", nullptr, "thread_name", lane, 0);
    std::fputs(",\"args\":{\"name\":", f);
    put_string(f, lane_name(lane).c_str());
    std::fputs("}}", f);
    open("M", nullptr, "thread_sort_index", lane, 0);
    std::fprintf(f, ",\"args\":{\"sort_index\":%" PRIu32 "}}", lane);
  }
  for (const TraceBuffer* b : lanes) {
    b->for_each([&](const TraceEvent& e) {
      const Nanos ts = e.ts - origin_;
      switch (e.kind) {
        case TraceKind::slice:
          open("X", "fiber", fiber_label(e.a, names), e.lane, ts);
          std::fputs(",\"dur\":", f);
          put_us(f, e.u.span.dur);
          std::fprintf(f, ",\"args\":{\"fiber\":%" PRIu64 ",\"end\":\"%s\"}}", e.a, end_name(e.flag));
          break;
        case TraceKind::sleep:
          open("X", "sleep", "asleep", e.lane, ts);
          std::fputs(",\"dur\":", f);
          put_us(f, e.u.span.dur);
          std::fputs("}", f);
          break;
        case TraceKind::blocking:
          open("X", "blocking", "blocking", e.lane, ts);
          std::fputs(",\"dur\":", f);
          put_us(f, e.u.span.dur);
          std::fprintf(f, ",\"args\":{\"fiber\":%" PRIu64 "}}", e.a);
          break;
        case TraceKind::spawn:
          open("i", "spawn", "spawn", e.lane, ts);
          std::fprintf(f, ",\"s\":\"t\",\"args\":{\"parent\":%" PRIu64 ",\"child\":%" PRIu64 "}}", e.a,
                       task_fiber(e.u.span.b));
          break;
        case TraceKind::steal: {
          const std::uint64_t fiber = task_fiber(e.u.span.b);
          open("i", "steal", "steal", e.lane, ts);
          std::fprintf(f, ",\"s\":\"t\",\"args\":{\"victim\":%" PRIu64 ",\"fiber\":%" PRIu64 "}}", e.a, fiber);
          break;
        }
        case TraceKind::park:
          open("i", "park", "park", e.lane, ts);
          std::fprintf(f, ",\"s\":\"t\",\"args\":{\"fiber\":%" PRIu64 ",\"reason\":", e.a);
          put_string(f, e.u.text);
          std::fputs("}}", f);
          break;
        case TraceKind::unpark:
          open("i", "unpark", "unpark", e.lane, ts);
          std::fprintf(f, ",\"s\":\"t\",\"args\":{\"fiber\":%" PRIu64 ",\"by\":%" PRIu64 "}}", e.a, e.u.span.b);
          break;
        case TraceKind::timer:
          open("i", "timer", "timer", e.lane, ts);
          std::fputs(",\"s\":\"t\"}", f);
          break;
        case TraceKind::wake:
          open("i", "wake", "wake", e.lane, ts);
          std::fputs(",\"s\":\"t\"}", f);
          break;
        case TraceKind::cancel:
          open("i", "cancel", "cancel", e.lane, ts);
          std::fprintf(f, ",\"s\":\"t\",\"args\":{\"fiber\":%" PRIu64 "}}", e.a);
          break;
        case TraceKind::bind:
        case TraceKind::name:
          break;  // read in the first pass
      }
    });
  }
  std::fputs("\n]}\n", f);
  if (std::fflush(f) != 0 || std::ferror(f) != 0) return false;
  return true;
}

}  // namespace weft::detail
