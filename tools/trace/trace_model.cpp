// Building the trace model (trace_model.hpp) from the parsed JSON.
#include "trace_model.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

namespace weft_trace {

const char* span_kind_name(SpanKind kind) noexcept {
  switch (kind) {
    case SpanKind::fiber: return "fiber";
    case SpanKind::sleep: return "sleep";
    case SpanKind::blocking: return "blocking";
  }
  return "?";
}

const char* mark_kind_name(MarkKind kind) noexcept {
  switch (kind) {
    case MarkKind::spawn: return "spawn";
    case MarkKind::steal: return "steal";
    case MarkKind::park: return "park";
    case MarkKind::unpark: return "unpark";
    case MarkKind::timer: return "timer";
    case MarkKind::wake: return "wake";
    case MarkKind::cancel: return "cancel";
  }
  return "?";
}

LaneKind lane_kind_of(std::int64_t tid) noexcept {
  if (tid >= 0 && tid < 1000) return LaneKind::worker;
  if (tid >= 1000 && tid < 2000) return LaneKind::plain;
  if (tid >= 2000 && tid < 3000) return LaneKind::blocking;
  return LaneKind::other;
}

double Trace::first_ts() const noexcept {
  double t = 0;
  bool any = false;
  for (const Span& s : spans) {
    if (!any || s.ts < t) t = s.ts;
    any = true;
  }
  for (const Mark& m : marks) {
    if (!any || m.ts < t) t = m.ts;
    any = true;
  }
  return t;
}

double Trace::last_ts() const noexcept {
  double t = 0;
  bool any = false;
  for (const Span& s : spans) {
    if (!any || s.ts + s.dur > t) t = s.ts + s.dur;
    any = true;
  }
  for (const Mark& m : marks) {
    if (!any || m.ts > t) t = m.ts;
    any = true;
  }
  return t;
}

std::int64_t Trace::lane_of(std::int64_t tid) const noexcept {
  for (std::size_t i = 0; i < lanes.size(); ++i) {
    if (lanes[i].tid == tid) return static_cast<std::int64_t>(i);
  }
  return -1;
}

namespace {

std::string default_lane_name(std::int64_t tid) {
  switch (lane_kind_of(tid)) {
    case LaneKind::worker: return "worker " + std::to_string(tid);
    case LaneKind::plain: return "thread " + std::to_string(tid - 1000);
    case LaneKind::blocking: return "blocking " + std::to_string(tid - 2000);
    case LaneKind::other: break;
  }
  return "tid " + std::to_string(tid);
}

// Reads the events of one document; `where` prefixes every error.
class Loader {
public:
  // One element of the events array, in file order (read_trace_file
  // streams them here while parsing).
  void add(const JsonValue& e) {
    event(e);
    ++index_;
  }

  // The document, with its events array (empty if they were streamed to
  // add() already).
  Trace load(const JsonValue& doc) {
    const JsonValue* events = &doc;
    if (doc.is_object()) {
      events = doc.find("traceEvents");
      if (events == nullptr) throw TraceError("no \"traceEvents\" member: not a trace-event file");
      if (const JsonValue* other = doc.find("otherData"); other != nullptr && other->is_object()) {
        if (const JsonValue* w = other->find("workers"); w != nullptr && w->is_number()) {
          trace_.workers = static_cast<int>(w->as_number());
        }
      }
    }
    if (!events->is_array()) {
      throw TraceError(std::string("\"traceEvents\" is ") + describe(events->kind()) + ", expected an array");
    }
    for (const JsonValue& e : events->items()) add(e);
    finish();
    return std::move(trace_);
  }

private:
  [[noreturn]] void fail(const std::string& what) const {
    throw TraceError("event " + std::to_string(index_) + ": " + what);
  }

  const JsonValue& need(const JsonValue& obj, const char* key, JsonValue::Kind kind) const {
    const JsonValue* v = obj.find(key);
    if (v == nullptr) fail(std::string("missing \"") + key + "\"");
    if (v->kind() != kind) fail(std::string("\"") + key + "\" is " + describe(v->kind()) + ", expected " + describe(kind));
    return *v;
  }

  std::int64_t need_tid(const JsonValue& e) const {
    const double t = need(e, "tid", JsonValue::Kind::number).as_number();
    if (t != std::floor(t) || t < -1e15 || t > 1e15) fail("\"tid\" is not an integer");
    return static_cast<std::int64_t>(t);
  }

  // An optional non-negative integer argument ("fiber", "victim", ...).
  static std::uint64_t arg_id(const JsonValue* args, const char* key, std::uint64_t fallback = 0) {
    if (args == nullptr) return fallback;
    const JsonValue* v = args->find(key);
    if (v == nullptr || !v->is_number()) return fallback;
    const double d = v->as_number();
    if (!(d >= 0) || d > 1.8e19 || d != std::floor(d)) return fallback;
    return static_cast<std::uint64_t>(d);
  }

  std::size_t lane(std::int64_t tid) {
    auto it = lane_index_.find(tid);
    if (it != lane_index_.end()) return it->second;
    Lane l;
    l.tid = tid;
    l.kind = lane_kind_of(tid);
    l.name = default_lane_name(tid);
    trace_.lanes.push_back(l);
    lane_index_.emplace(tid, trace_.lanes.size() - 1);
    return trace_.lanes.size() - 1;
  }

  void event(const JsonValue& e) {
    if (!e.is_object()) fail(std::string("is ") + describe(e.kind()) + ", expected an object");
    const JsonValue* ph = e.find("ph");
    if (ph != nullptr && ph->is_string() && ph->as_string() == "M") return metadata(e);
    const JsonValue* cat = e.find("cat");
    if (cat == nullptr || !cat->is_string()) {
      ++trace_.ignored;
      return;
    }
    const std::string& c = cat->as_string();
    const JsonValue* args = e.find("args");
    if (args != nullptr && !args->is_object()) args = nullptr;
    if (c == "fiber" || c == "sleep" || c == "blocking") {
      Span s;
      s.kind = c == "fiber" ? SpanKind::fiber : c == "sleep" ? SpanKind::sleep : SpanKind::blocking;
      s.lane = lane(need_tid(e));
      s.ts = need(e, "ts", JsonValue::Kind::number).as_number();
      s.dur = need(e, "dur", JsonValue::Kind::number).as_number();
      if (s.dur < 0) fail("negative \"dur\"");
      if (const JsonValue* n = e.find("name"); n != nullptr && n->is_string()) s.name = n->as_string();
      s.fiber = arg_id(args, "fiber");
      if (args != nullptr) {
        if (const JsonValue* end = args->find("end"); end != nullptr && end->is_string()) s.end = end->as_string();
      }
      trace_.spans.push_back(std::move(s));
      return;
    }
    static const std::pair<const char*, MarkKind> k_marks[] = {
        {"spawn", MarkKind::spawn}, {"steal", MarkKind::steal}, {"park", MarkKind::park},
        {"unpark", MarkKind::unpark}, {"timer", MarkKind::timer}, {"wake", MarkKind::wake},
        {"cancel", MarkKind::cancel}};
    for (const auto& [name, kind] : k_marks) {
      if (c != name) continue;
      Mark m;
      m.kind = kind;
      m.lane = lane(need_tid(e));
      m.ts = need(e, "ts", JsonValue::Kind::number).as_number();
      switch (kind) {
        case MarkKind::spawn:
          m.fiber = arg_id(args, "child");
          m.other = arg_id(args, "parent");
          break;
        case MarkKind::steal:
          m.fiber = arg_id(args, "fiber");
          if (args != nullptr && args->find("victim") != nullptr) {
            m.victim = static_cast<std::int64_t>(arg_id(args, "victim", static_cast<std::uint64_t>(-1)));
          }
          break;
        case MarkKind::unpark:
          m.fiber = arg_id(args, "fiber");
          m.other = arg_id(args, "by");
          break;
        default:
          m.fiber = arg_id(args, "fiber");
          break;
      }
      if (args != nullptr) {
        if (const JsonValue* r = args->find("reason"); r != nullptr && r->is_string()) m.reason = r->as_string();
      }
      trace_.marks.push_back(std::move(m));
      return;
    }
    ++trace_.ignored;  // a kind this renderer does not know
  }

  void metadata(const JsonValue& e) {
    const JsonValue* name = e.find("name");
    const JsonValue* args = e.find("args");
    if (name == nullptr || !name->is_string() || args == nullptr || !args->is_object()) return;
    if (name->as_string() == "thread_name") {
      const JsonValue* n = args->find("name");
      if (n == nullptr || !n->is_string()) fail("thread_name without a string \"args.name\"");
      trace_.lanes[lane(need_tid(e))].name = n->as_string();
    }
  }

  void finish() {
    // Lanes: kind order, then tid; spans and marks refer to lanes by index,
    // so remap them.
    std::vector<std::size_t> order(trace_.lanes.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const Lane& x = trace_.lanes[a];
      const Lane& y = trace_.lanes[b];
      if (x.kind != y.kind) return x.kind < y.kind;
      return x.tid < y.tid;
    });
    std::vector<std::size_t> new_index(order.size());
    std::vector<Lane> lanes;
    for (std::size_t i = 0; i < order.size(); ++i) {
      new_index[order[i]] = i;
      lanes.push_back(std::move(trace_.lanes[order[i]]));
    }
    trace_.lanes = std::move(lanes);
    for (Span& s : trace_.spans) s.lane = new_index[s.lane];
    for (Mark& m : trace_.marks) m.lane = new_index[m.lane];
    std::stable_sort(trace_.spans.begin(), trace_.spans.end(),
                     [](const Span& a, const Span& b) { return a.ts < b.ts; });
    std::stable_sort(trace_.marks.begin(), trace_.marks.end(),
                     [](const Mark& a, const Mark& b) { return a.ts < b.ts; });
  }

  Trace trace_;
  std::map<std::int64_t, std::size_t> lane_index_;
  std::size_t index_ = 0;
};

}  // namespace

Trace load_trace(const JsonValue& document) { return Loader().load(document); }

Trace read_trace_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TraceError(path + ": cannot open");
  // The file in one string (moved out of the stream, not copied), then its
  // events one at a time: a trace of millions of events never exists as a
  // whole JSON tree.
  std::ostringstream whole;
  whole << in.rdbuf();
  if (in.bad()) throw TraceError(path + ": read error");
  const std::string text = std::move(whole).str();
  try {
    Loader loader;
    const JsonValue doc = parse_json_streaming(text, "traceEvents", [&](const JsonValue& e) { loader.add(e); });
    return loader.load(doc);
  } catch (const JsonError& e) {
    throw TraceError(path + ":" + e.what());
  } catch (const TraceError& e) {
    throw TraceError(path + ": " + e.what());
  }
}

std::string summary(const Trace& trace) {
  std::ostringstream out;
  out << "trace: lanes=" << trace.lanes.size() << " spans=" << trace.spans.size()
      << " marks=" << trace.marks.size() << " ignored=" << trace.ignored << '\n';
  for (std::size_t l = 0; l < trace.lanes.size(); ++l) {
    std::size_t spans[3] = {0, 0, 0};
    std::size_t marks[k_mark_kinds] = {};
    for (const Span& s : trace.spans) {
      if (s.lane == l) ++spans[static_cast<int>(s.kind)];
    }
    for (const Mark& m : trace.marks) {
      if (m.lane == l) ++marks[static_cast<int>(m.kind)];
    }
    out << "lane " << trace.lanes[l].name << ':';
    for (int k = 0; k < 3; ++k) out << ' ' << span_kind_name(static_cast<SpanKind>(k)) << '=' << spans[k];
    for (int k = 0; k < k_mark_kinds; ++k) out << ' ' << mark_kind_name(static_cast<MarkKind>(k)) << '=' << marks[k];
    out << '\n';
  }
  return out.str();
}

}  // namespace weft_trace
