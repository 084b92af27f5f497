// The trace model: what weft-trace reads out of a weft trace file
// (docs/design/seeing-inside.md; the format is Chrome trace-event
// JSON, as weft's tracer writes it). Lanes, fiber run slices, sleep spans,
// blocking-pool jobs and instant marks, with the events of unknown kinds
// ("cat") dropped. The picture and the summary are both drawn from this.
//
// Contract: load_trace() and read_trace_file() either return a whole model
// or throw (JsonError for bad JSON, TraceError for JSON that is not a
// trace: a known event without its "ts", a negative "dur" ...); never a
// crash. Pure functions, any thread.
#pragma once

#include "json.hpp"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace weft_trace {

class TraceError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// Lanes in drawing order: workers, then plain threads, then blocking-pool
// threads, then any other tid (the format's tid ranges).
enum class LaneKind { worker, plain, blocking, other };

struct Lane {
  std::int64_t tid = 0;
  LaneKind kind = LaneKind::other;
  std::string name;  // thread_name metadata, or "worker 0" / "thread 0" / "blocking 0"
};

// Spans: fiber run slices, worker sleeps, blocking-pool jobs.
enum class SpanKind { fiber, sleep, blocking };

struct Span {
  SpanKind kind = SpanKind::fiber;
  std::size_t lane = 0;  // index into Trace::lanes
  double ts = 0;         // microseconds
  double dur = 0;
  std::uint64_t fiber = 0;  // fiber (or, for a blocking job, the fiber it serves); 0 for sleep
  std::string name;
  std::string end;  // "park|yield|finish|preempt" for fiber slices, else empty
};

// Instants. The order here is the summary's and the legend's order.
enum class MarkKind { spawn, steal, park, unpark, timer, wake, cancel };
inline constexpr int k_mark_kinds = 7;

struct Mark {
  MarkKind kind = MarkKind::spawn;
  std::size_t lane = 0;
  double ts = 0;
  std::uint64_t fiber = 0;  // park/unpark/cancel/steal: the fiber; spawn: the child
  std::uint64_t other = 0;  // spawn: the parent; unpark: the waker ("by")
  std::int64_t victim = -1; // steal: the victim's tid (-1 when absent)
  std::string reason;       // park
};

struct Trace {
  std::vector<Lane> lanes;   // sorted: see LaneKind
  std::vector<Span> spans;   // sorted by ts
  std::vector<Mark> marks;   // sorted by ts
  int workers = -1;          // otherData.workers, -1 when absent
  std::size_t ignored = 0;   // events of unknown kinds, skipped

  bool empty() const noexcept { return spans.empty() && marks.empty(); }
  double first_ts() const noexcept;  // earliest event start, 0 when empty
  double last_ts() const noexcept;   // latest event end, 0 when empty
  // Index of the lane with this tid, or -1.
  std::int64_t lane_of(std::int64_t tid) const noexcept;
};

const char* span_kind_name(SpanKind kind) noexcept;  // "fiber", "sleep", "blocking"
const char* mark_kind_name(MarkKind kind) noexcept;  // "spawn", "steal", ...
LaneKind lane_kind_of(std::int64_t tid) noexcept;

// Builds the model from a parsed document: the JSON Object Format
// ({"traceEvents":[...]}) or the bare JSON Array Format ([...]).
Trace load_trace(const JsonValue& document);

// Reads and parses a file; errors name the file.
Trace read_trace_file(const std::string& path);

// One line per lane: "lane worker 0: fiber=12 sleep=1 blocking=0 spawn=2
// steal=1 park=3 unpark=3 timer=0 wake=1 cancel=0", every kind always
// present, after a first line "trace: lanes=N spans=N marks=N ignored=N".
std::string summary(const Trace& trace);

}  // namespace weft_trace
