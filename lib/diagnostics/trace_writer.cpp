// Tracer::write(): the lanes merged into one Chrome trace-event JSON object
// (docs/guide/seeing-inside.md has the format). Runs once, at
// shutdown, after every thread that records has been joined. The text is
// built in a 64 KiB buffer with weft's own number formatting and written
// with fwrite a buffer at a time (printf and a putc per byte were most of
// what writing a trace cost).
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "diagnostics/tracer.hpp"
#include "time/park_stamp.hpp"
#include "weft/version.hpp"

namespace weft::detail {

namespace {

// The length of the well-formed UTF-8 sequence text starts with (1..4), or 0 when the
// bytes there are not one (a stray continuation byte, an overlong form, a
// surrogate, a sequence cut by the end of text).
std::size_t utf8_length(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
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
  if (text.size() < n) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    if ((s[i] & 0xC0) != 0x80) return 0;
  }
  return n;
}

// The file's text, a buffer at a time. A failed fwrite is remembered and
// reported by ok().
class JsonOut {
 public:
  explicit JsonOut(std::FILE* f) : f_(f) { buf_.reserve(k_flush + 256); }
  ~JsonOut() { flush(); }

  void put(char c) {
    buf_.push_back(c);
    maybe_flush();
  }
  void put(std::string_view s) {
    buf_.append(s);
    maybe_flush();
  }
  void put_u64(std::uint64_t v) {
    char digits[20];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0) buf_.push_back(digits[--n]);
    maybe_flush();
  }
  // ts and dur in microseconds with three decimals (the format's unit).
  void put_us(Nanos ns) {
    if (ns < 0) ns = 0;
    put_u64(static_cast<std::uint64_t>(ns / 1000));
    const auto frac = static_cast<unsigned>(ns % 1000);
    const char d[4] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                       static_cast<char>('0' + frac % 10)};
    put(std::string_view(d, 4));
  }
  // A JSON string: " \ and control characters escaped, valid UTF-8 copied,
  // any other byte written as U+FFFD (a name is the user's bytes; JSON must
  // be UTF-8). s may hold NUL bytes (escaped like any control character).
  void put_string(std::string_view s) {
    static constexpr char k_hex[] = "0123456789abcdef";
    buf_.push_back('"');
    for (std::size_t i = 0; i < s.size();) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c == '"' || c == '\\') {
        buf_.push_back('\\');
        buf_.push_back(static_cast<char>(c));
      } else if (c == '\n') {
        buf_.append("\\n");
      } else if (c < 0x20 || c == 0x7F) {
        const char esc[6] = {'\\', 'u', '0', '0', k_hex[c >> 4], k_hex[c & 0xF]};
        buf_.append(esc, 6);
      } else if (c >= 0x80) {
        const std::size_t n = utf8_length(s.substr(i));
        if (n == 0) {
          buf_.append("\\ufffd");
        } else {
          buf_.append(s.substr(i, n));
          i += n;
          continue;
        }
      } else {
        buf_.push_back(static_cast<char>(c));
      }
      ++i;
    }
    buf_.push_back('"');
    maybe_flush();
  }

  // Everything written so far reached the FILE (its own buffer).
  bool ok() {
    flush();
    return ok_;
  }

 private:
  static constexpr std::size_t k_flush = std::size_t{64} << 10;
  void maybe_flush() {
    if (buf_.size() >= k_flush) flush();
  }
  void flush() {
    if (!buf_.empty() && std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size()) ok_ = false;
    buf_.clear();
  }
  std::FILE* f_;
  std::string buf_;
  bool ok_ = true;
};

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

  // Ticks to nanoseconds since the Tracer was made (trace_buffer.hpp).
  const double ns_per_tick = stamp_ns_per_tick();
  auto since_origin = [&](std::uint64_t ticks) {
    return ticks <= origin_ ? Nanos{0} : static_cast<Nanos>(static_cast<double>(ticks - origin_) * ns_per_tick);
  };
  auto span = [&](std::uint64_t ticks) { return static_cast<Nanos>(static_cast<double>(ticks) * ns_per_tick); };

  // Fiber names (the latest recorded for each id), and the tasks joined
  // inline: such a task ran as its joiner (bind), so its spawn and steal
  // name the joiner's id, the one its slices carry.
  std::unordered_map<std::uint64_t, std::pair<std::uint64_t, std::string>> named;
  std::unordered_map<std::uint64_t, std::uint64_t> inline_runs;
  std::set<std::uint32_t> used_lanes;
  std::uint64_t dropped = 0;
  for (const TraceBuffer* b : lanes) {
    dropped += b->dropped();
    b->for_each([&](const TraceEvent& e, std::string_view text) {
      used_lanes.insert(e.lane);
      if (e.kind == TraceKind::bind) inline_runs[e.b] = e.a;
      if (e.kind == TraceKind::name) {
        auto& [ts, name] = named[e.a];
        if (name.empty() || e.ts >= ts) {
          ts = e.ts;
          name = text;
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
  // The label of a fiber's slices: its name if it has one, else "fiber 17".
  std::string unnamed;
  auto label = [&](std::uint64_t id) -> std::string_view {
    if (auto it = names.find(id); it != names.end()) return it->second;
    unnamed = "fiber ";
    unnamed += std::to_string(id);
    return unnamed;
  };

  JsonOut out(f);
  out.put("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"weft_version\":\"" WEFT_VERSION_STRING "\",\"workers\":");
  out.put_u64(workers_.size());
  out.put(",\"time_slice_us\":");
  out.put_u64(static_cast<std::uint64_t>(std::max<Nanos>(time_slice_, 0) / 1000));
  out.put(",\"dropped_events\":");
  out.put_u64(dropped);
  out.put("},\"traceEvents\":[");
  bool first = true;
  // An event's opening, up to its ts: {"ph":..,"cat":..,"name":..,"pid":1,"tid":..,"ts":..
  auto open = [&](std::string_view ph, std::string_view cat, std::string_view name, std::uint32_t lane, Nanos ts) {
    out.put(first ? "\n{\"ph\":\"" : ",\n{\"ph\":\"");
    first = false;
    out.put(ph);
    if (!cat.empty()) {
      out.put("\",\"cat\":\"");
      out.put(cat);
    }
    out.put("\",\"name\":");
    out.put_string(name);
    out.put(",\"pid\":1,\"tid\":");
    out.put_u64(lane);
    out.put(",\"ts\":");
    out.put_us(ts);
  };
  // "key":v
  auto key_value = [&](std::string_view key, std::uint64_t v) {
    out.put('"');
    out.put(key);
    out.put("\":");
    out.put_u64(v);
  };
  // ,"key":v (an argument after the first).
  auto arg = [&](std::string_view key, std::uint64_t v) {
    out.put(',');
    key_value(key, v);
  };
  // ,"args":{"key":v (the first argument; the caller closes the object).
  auto first_arg = [&](std::string_view key, std::uint64_t v) {
    out.put(",\"args\":{");
    key_value(key, v);
  };
  // A span's opening, up to its duration: {"ph":"X",..,"ts":..,"dur":..
  auto span_event = [&](std::string_view cat, std::string_view name, const TraceEvent& e) {
    open("X", cat, name, e.lane, since_origin(e.ts));
    out.put(",\"dur\":");
    out.put_us(span(e.b));
  };
  // An instant event's opening, with e.a as its first argument `key` (none
  // when key is empty): {"ph":"i",..,"s":"t","args":{"key":e.a
  auto instant = [&](std::string_view cat, const TraceEvent& e, std::string_view key) {
    open("i", cat, cat, e.lane, since_origin(e.ts));
    out.put(",\"s\":\"t\"");
    if (!key.empty()) first_arg(key, e.a);
  };
  for (std::uint32_t lane : used_lanes) {
    open("M", {}, "thread_name", lane, 0);
    out.put(",\"args\":{\"name\":");
    out.put_string(lane_name(lane));
    out.put("}}");
    open("M", {}, "thread_sort_index", lane, 0);
    first_arg("sort_index", lane);
    out.put("}}");
  }
  for (const TraceBuffer* b : lanes) {
    b->for_each([&](const TraceEvent& e, std::string_view text) {
      switch (e.kind) {
        case TraceKind::slice:
          span_event("fiber", label(e.a), e);
          first_arg("fiber", e.a);
          out.put(",\"end\":\"");
          out.put(end_name(e.flag));
          out.put("\"}}");
          break;
        case TraceKind::sleep:
          span_event("sleep", "asleep", e);
          out.put("}");
          break;
        case TraceKind::blocking:
          span_event("blocking", "blocking", e);
          first_arg("fiber", e.a);
          out.put("}}");
          break;
        case TraceKind::spawn:
          instant("spawn", e, "parent");
          arg("child", task_fiber(e.b));
          out.put("}}");
          break;
        case TraceKind::steal:
          instant("steal", e, "victim");
          arg("fiber", task_fiber(e.b));
          out.put("}}");
          break;
        case TraceKind::park:
          instant("park", e, "fiber");
          out.put(",\"reason\":");
          out.put_string(text);
          out.put("}}");
          break;
        case TraceKind::unpark:
          instant("unpark", e, "fiber");
          arg("by", e.b);
          out.put("}}");
          break;
        case TraceKind::timer:
        case TraceKind::wake:
          instant(e.kind == TraceKind::timer ? "timer" : "wake", e, {});
          out.put("}");
          break;
        case TraceKind::cancel:
          instant("cancel", e, "fiber");
          out.put("}}");
          break;
        case TraceKind::bind:
        case TraceKind::name:
          break;  // read in the first pass
      }
    });
  }
  out.put("\n]}\n");
  if (!out.ok() || std::fflush(f) != 0 || std::ferror(f) != 0) return false;
  return true;
}

}  // namespace weft::detail
