// Tracing (Runtime::Options::trace_file, WEFT_TRACE): the file is valid
// Chrome trace-event JSON in the shared format, each event kind appears when
// its cause happens, slices on a worker do not overlap, and off records
// nothing. Internal (links the static library): the "off" check looks at
// the worker's trace lane from inside a fiber.
#include <doctest/doctest.h>
#include <unistd.h>
#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "diagnostics/trace_buffer.hpp"
#include "scheduling/current.hpp"
#include "scheduling/scheduler.hpp"
#include "scheduling/worker.hpp"
#include "support.hpp"

namespace {

// ---- a small JSON reader: enough to check the structure ----
struct Json {
  enum class Type { null, boolean, number, string, array, object } type = Type::null;
  double num = 0;
  std::string str;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;
  const Json* get(const std::string& key) const {
    for (const auto& [k, v] : obj) {
      if (k == key) return &v;
    }
    return nullptr;
  }
};

class Reader {
 public:
  explicit Reader(const std::string& s) : s_(s) {}
  bool parse(Json& out) {
    if (!value(out)) return false;
    ws();
    return i_ == s_.size();
  }

 private:
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  bool lit(const char* w) {
    const std::string t(w);
    if (s_.compare(i_, t.size(), t) != 0) return false;
    i_ += t.size();
    return true;
  }
  bool string(std::string& out) {
    if (s_[i_] != '"') return false;
    ++i_;
    while (i_ < s_.size() && s_[i_] != '"') {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c < 0x20) return false;  // control characters must be escaped
      if (c == '\\') {
        ++i_;
        if (i_ >= s_.size()) return false;
        const char e = s_[i_];
        if (e == 'u') {
          if (i_ + 4 >= s_.size()) return false;
          out += static_cast<char>(std::stoi(s_.substr(i_ + 1, 4), nullptr, 16));
          i_ += 4;
        } else if (e == 'n') {
          out += '\n';
        } else if (e == '"' || e == '\\' || e == '/') {
          out += e;
        } else {
          return false;
        }
      } else {
        out += static_cast<char>(c);
      }
      ++i_;
    }
    if (i_ >= s_.size()) return false;
    ++i_;
    return true;
  }
  bool value(Json& out) {
    ws();
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '{') {
      out.type = Json::Type::object;
      ++i_;
      ws();
      if (s_[i_] == '}') return ++i_, true;
      for (;;) {
        ws();
        std::string key;
        if (!string(key)) return false;
        ws();
        if (s_[i_++] != ':') return false;
        Json v;
        if (!value(v)) return false;
        out.obj.emplace_back(std::move(key), std::move(v));
        ws();
        if (s_[i_] == ',') { ++i_; continue; }
        if (s_[i_] == '}') return ++i_, true;
        return false;
      }
    }
    if (c == '[') {
      out.type = Json::Type::array;
      ++i_;
      ws();
      if (s_[i_] == ']') return ++i_, true;
      for (;;) {
        Json v;
        if (!value(v)) return false;
        out.arr.push_back(std::move(v));
        ws();
        if (s_[i_] == ',') { ++i_; continue; }
        if (s_[i_] == ']') return ++i_, true;
        return false;
      }
    }
    if (c == '"') {
      out.type = Json::Type::string;
      return string(out.str);
    }
    if (lit("true") || lit("false")) return out.type = Json::Type::boolean, true;
    if (lit("null")) return true;
    std::size_t used = 0;
    try {
      out.num = std::stod(s_.substr(i_, 40), &used);
    } catch (...) {
      return false;
    }
    out.type = Json::Type::number;
    i_ += used;
    return used != 0;
  }

  const std::string& s_;
  std::size_t i_ = 0;
};

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

std::string temp_path(const char* what) {
  return "/tmp/weft-test-trace-" + std::to_string(::getpid()) + "-" + what + ".json";
}

struct Trace {
  Json root;
  std::vector<const Json*> events;
  std::vector<const Json*> of(const std::string& cat) const {
    std::vector<const Json*> r;
    for (const Json* e : events) {
      const Json* c = e->get("cat");
      if (c != nullptr && c->str == cat) r.push_back(e);
    }
    return r;
  }
};

double num(const Json* e, const char* key) {
  const Json* v = e->get(key);
  REQUIRE(v != nullptr);
  REQUIRE(v->type == Json::Type::number);
  return v->num;
}
const Json* arg(const Json* e, const char* key) {
  const Json* a = e->get("args");
  REQUIRE(a != nullptr);
  const Json* v = a->get(key);
  REQUIRE(v != nullptr);
  return v;
}

// Parses the file and checks what every trace must satisfy.
void load(const std::string& path, Trace& t, std::size_t workers) {
  const std::string text = read_file(path);
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  REQUIRE(Reader(text).parse(t.root));
  REQUIRE(t.root.type == Json::Type::object);
  const Json* other = t.root.get("otherData");
  REQUIRE(other != nullptr);
  CHECK(num(other, "workers") == static_cast<double>(workers));
  const Json* events = t.root.get("traceEvents");
  REQUIRE(events != nullptr);
  REQUIRE(events->type == Json::Type::array);
  std::map<double, std::string> lane_names;
  for (const Json& e : events->arr) {
    REQUIRE(e.type == Json::Type::object);
    REQUIRE(e.get("ph") != nullptr);
    CHECK(num(&e, "pid") == 1);
    const double tid = num(&e, "tid");
    CHECK(num(&e, "ts") >= 0);
    if (e.get("ph")->str == "M") {
      if (e.get("name")->str == "thread_name") lane_names[tid] = arg(&e, "name")->str;
      continue;
    }
    t.events.push_back(&e);
  }
  for (const Json* e : t.events) {
    INFO("an event's lane has a name: tid " << num(e, "tid"));
    CHECK(lane_names.count(num(e, "tid")) == 1);
  }
  for (std::size_t i = 0; i < workers; ++i) CHECK(lane_names[static_cast<double>(i)] == "worker " + std::to_string(i));
}

}  // namespace

TEST_CASE("trace buffer: events and their texts come back in order; texts are cut on a UTF-8 boundary; a full lane drops and counts") {
  using weft::detail::TraceBuffer;
  using weft::detail::TraceEvent;
  using weft::detail::TraceKind;
  TraceBuffer b(3);
  std::vector<std::string> texts = {"", "a wait", std::string(32, 'x'), std::string(33, 'y'), std::string(95, 'z')};
  // 96 bytes with "é" at bytes 92-93: the cut keeps 91 and adds "...".
  std::string long_text = std::string(91, 'a') + "\xC3\xA9" + "bcd";
  for (std::size_t i = 0; i < texts.size(); ++i) {
    TraceEvent e;
    e.kind = TraceKind::park;
    e.a = i;
    b.add_text(e, texts[i].data(), texts[i].size());
    TraceEvent plain;
    plain.kind = TraceKind::spawn;
    plain.a = 100 + i;
    plain.b = 7;
    b.add(plain);
  }
  TraceEvent e;
  e.kind = TraceKind::name;
  e.a = 99;
  b.add_text(e, long_text.data(), long_text.size());
  std::vector<std::pair<std::uint64_t, std::string>> seen;
  b.for_each([&](const TraceEvent& ev, std::string_view text) {
    CHECK(ev.lane == 3);
    seen.emplace_back(ev.a, std::string(text));
  });
  REQUIRE(seen.size() == 2 * texts.size() + 1);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    CHECK(seen[2 * i].first == i);
    CHECK(seen[2 * i].second == texts[i]);
    CHECK(seen[2 * i + 1].first == 100 + i);
    CHECK(seen[2 * i + 1].second.empty());
  }
  CHECK(seen.back().second == std::string(91, 'a') + "...");
  CHECK(b.size() == seen.size());
  CHECK(b.dropped() == 0);

  // Fill the lane to its cap: later events are dropped and counted, the
  // ones kept are the first, in order.
  TraceBuffer full(0);
  const std::size_t tries = TraceBuffer::k_max_chunks * (TraceBuffer::k_chunk_bytes / sizeof(TraceEvent)) + 100;
  for (std::size_t i = 0; i < tries; ++i) {
    TraceEvent ev;
    ev.kind = TraceKind::timer;
    ev.a = i;
    full.add(ev);
  }
  CHECK(full.size() + full.dropped() == tries);
  CHECK(full.dropped() >= 100);
  std::uint64_t next = 0;
  bool in_order = true;
  full.for_each([&](const TraceEvent& ev, std::string_view) { in_order = in_order && ev.a == next++; });
  CHECK(in_order);
  CHECK(next == full.size());
}

TEST_CASE("trace: a traced run writes valid JSON in which every event kind appears when its cause happens" *
          doctest::timeout(120)) {
  const std::string path = temp_path("kinds");
  std::remove(path.c_str());
  std::uint64_t receiver_id = 0, sender_id = 0, stolen_id = 0, root_id = 0;
  {
    weft::Runtime rt({.workers = 2, .trace_file = path});
    rt.block_on([&] {
      root_id = weft::this_fiber::id();
      // A steal: this fiber keeps its worker busy (no yield) until the child
      // has run, which only the other worker can do by stealing it.
      std::atomic<bool> ran{false};
      auto child = weft::go([&] {
        stolen_id = weft::this_fiber::id();
        ran.store(true);
      });
      REQUIRE(weft_test::spin_for_flag(ran, std::chrono::seconds(30)));
      child.join();
      // A park on a named channel, and the wake-up by its sender.
      weft::Channel<int> jobs(0, "jobs");
      auto receiver = weft::go([&] {
        receiver_id = weft::this_fiber::id();
        return *jobs.recv();
      });
      weft::this_fiber::sleep_for(std::chrono::milliseconds(20));  // a timer; the receiver parks meanwhile
      sender_id = weft::this_fiber::id();
      jobs.send(7);
      CHECK(receiver.join() == 7);
      // A blocking-pool job.
      CHECK(weft::blocking([] { return 3; }) == 3);
      // A cancellation delivered to a waiting fiber.
      weft::CancelScope scope;
      scope.cancel();
      weft::Channel<int> never(0, "never");
      CHECK_THROWS_AS(never.recv(), weft::Cancelled);
    });
    // And a spawn from a plain thread.
    rt.spawn([] {}).join();
  }
  REQUIRE(file_exists(path));
  Trace t;
  load(path, t, 2);

  // Slices: every fiber that ran, each with its id and end reason.
  const auto slices = t.of("fiber");
  REQUIRE(!slices.empty());
  bool root_sliced = false, parked_slice = false;
  for (const Json* s : slices) {
    CHECK(s->get("ph")->str == "X");
    CHECK(num(s, "dur") >= 0);
    CHECK(num(s, "tid") < 2);
    const double id = arg(s, "fiber")->num;
    CHECK(s->get("name")->str == "fiber " + std::to_string(static_cast<std::uint64_t>(id)));
    const std::string end = arg(s, "end")->str;
    CHECK((end == "park" || end == "yield" || end == "finish" || end == "preempt"));
    if (id == static_cast<double>(root_id)) root_sliced = true;
    if (id == static_cast<double>(receiver_id) && end == "park") parked_slice = true;
  }
  CHECK(root_sliced);
  CHECK(parked_slice);

  // Spawns: the stolen child's parent is the root; one from a plain thread.
  bool spawn_child = false, spawn_outside = false;
  for (const Json* e : t.of("spawn")) {
    if (arg(e, "child")->num == static_cast<double>(stolen_id) && arg(e, "parent")->num == static_cast<double>(root_id)) {
      spawn_child = true;
    }
    if (arg(e, "parent")->num == 0 && num(e, "tid") >= 1000 && num(e, "tid") < 2000) spawn_outside = true;
  }
  CHECK(spawn_child);
  CHECK(spawn_outside);

  // The steal: the thief took the child from the root's worker.
  bool stolen = false;
  for (const Json* e : t.of("steal")) {
    if (arg(e, "fiber")->num == static_cast<double>(stolen_id)) {
      stolen = true;
      CHECK(arg(e, "victim")->num != num(e, "tid"));
    }
  }
  CHECK(stolen);

  // The park names the channel; the unpark names the sender.
  bool park = false, unpark = false;
  for (const Json* e : t.of("park")) {
    if (arg(e, "fiber")->num == static_cast<double>(receiver_id)) {
      const std::string reason = arg(e, "reason")->str;
      INFO(reason);
      CHECK(reason.find("recv on channel \"jobs\"") == 0);
      park = true;
    }
  }
  for (const Json* e : t.of("unpark")) {
    if (arg(e, "fiber")->num == static_cast<double>(receiver_id) && arg(e, "by")->num == static_cast<double>(sender_id)) {
      unpark = true;
    }
  }
  CHECK(park);
  CHECK(unpark);

  CHECK(!t.of("timer").empty());
  const auto blocking = t.of("blocking");
  REQUIRE(!blocking.empty());
  CHECK(num(blocking[0], "tid") >= 2000);
  CHECK(arg(blocking[0], "fiber")->num == static_cast<double>(root_id));
  CHECK(!t.of("sleep").empty());
  CHECK(!t.of("wake").empty());
  bool cancelled = false;
  for (const Json* e : t.of("cancel")) cancelled = cancelled || arg(e, "fiber")->num == static_cast<double>(root_id);
  CHECK(cancelled);
  std::remove(path.c_str());
}

TEST_CASE("trace: the slices and sleeps of one worker never overlap" * doctest::timeout(120)) {
  for (std::size_t workers : {1, 2, 4}) {
    const std::string path = temp_path("overlap");
    {
      weft::Runtime rt({.workers = workers, .trace_file = path});
      rt.block_on([] {
        weft::Channel<int> ch(4, "work");
        std::vector<weft::JoinHandle<void>> hs;
        for (int i = 0; i < 50; ++i) {
          hs.push_back(weft::go([&ch] {
            for (int k = 0; k < 20; ++k) {
              ch.send(k);
              weft::this_fiber::yield();
            }
          }));
        }
        long sum = 0;
        for (int i = 0; i < 50 * 20; ++i) sum += *ch.recv();
        for (auto& h : hs) h.join();
        CHECK(sum == 50 * 190);
      });
    }
    Trace t;
    load(path, t, workers);
    std::map<double, std::vector<std::pair<double, double>>> lanes;
    for (const Json* e : t.events) {
      if (e->get("ph")->str != "X" || num(e, "tid") >= 1000) continue;
      lanes[num(e, "tid")].emplace_back(num(e, "ts"), num(e, "ts") + num(e, "dur"));
    }
    CHECK(!lanes.empty());
    for (auto& [lane, spans] : lanes) {
      std::sort(spans.begin(), spans.end());
      for (std::size_t i = 1; i < spans.size(); ++i) {
        INFO("worker " << lane << " at " << spans[i].first << " us");
        CHECK(spans[i - 1].second <= spans[i].first + 0.001);  // rounding of the microsecond figures
      }
    }
    std::remove(path.c_str());
  }
}

TEST_CASE("trace: off, no lane exists, nothing is recorded and no file is written" * doctest::timeout(60)) {
  ::unsetenv("WEFT_TRACE");
  const std::string path = temp_path("off");
  std::remove(path.c_str());
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    weft::detail::Worker* w = weft::detail::current_worker();
    CHECK(w->trace_buffer() == nullptr);
    CHECK(w->scheduler().tracer() == nullptr);
    weft::go([] {}).join();
  });
  rt.shutdown();
  CHECK(!file_exists(path));
}

TEST_CASE("trace: WEFT_TRACE names the file when the option is empty; the option wins over it" *
          doctest::timeout(60)) {
  const std::string env_path = temp_path("env");
  const std::string opt_path = temp_path("opt");
  std::remove(env_path.c_str());
  std::remove(opt_path.c_str());
  ::setenv("WEFT_TRACE", env_path.c_str(), 1);
  {
    weft::Runtime rt({.workers = 1});
    rt.block_on([] { weft::go([] {}).join(); });
  }
  REQUIRE(file_exists(env_path));
  Trace t;
  load(env_path, t, 1);
  CHECK(!t.of("fiber").empty());
  std::remove(env_path.c_str());
  {
    weft::Runtime rt({.workers = 1, .trace_file = opt_path});
    rt.block_on([] {});
  }
  ::unsetenv("WEFT_TRACE");
  CHECK(file_exists(opt_path));
  CHECK(!file_exists(env_path));
  std::remove(opt_path.c_str());
}

TEST_CASE("trace: a file that cannot be created or written is reported, never a crash" * doctest::timeout(60)) {
  ::unsetenv("WEFT_TRACE");
  // The option: the constructor throws std::system_error.
  CHECK_THROWS_AS(weft::Runtime({.workers = 1, .trace_file = "/nonexistent-dir/trace.json"}), std::system_error);
  // WEFT_TRACE: reported on stderr, and the runtime runs untraced.
  ::setenv("WEFT_TRACE", "/nonexistent-dir/trace.json", 1);
  {
    weft::Runtime rt({.workers = 1});
    CHECK(rt.block_on([] { return 5; }) == 5);
  }
  ::unsetenv("WEFT_TRACE");
  // A write that fails at shutdown (a full disk): stderr, shutdown returns.
  std::fflush(stderr);
  const std::string err_path = temp_path("stderr");
  const int saved = ::dup(2);
  std::FILE* err = std::fopen(err_path.c_str(), "w");
  REQUIRE(err != nullptr);
  ::dup2(::fileno(err), 2);
  {
    weft::Runtime rt({.workers = 1, .trace_file = "/dev/full"});
    rt.block_on([] { weft::go([] {}).join(); });
    rt.shutdown();
  }
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::fclose(err);
  const std::string said = read_file(err_path);
  CHECK(said.find("weft: could not write the trace to \"/dev/full\"") != std::string::npos);
  std::remove(err_path.c_str());
}

TEST_CASE("trace: a fiber that overruns its time slice in maybe_yield ends the slice as preempt" *
          doctest::timeout(60)) {
  const std::string path = temp_path("preempt");
  {
    weft::Runtime rt({.workers = 1, .time_slice = std::chrono::milliseconds(1), .trace_file = path});
    rt.block_on([] {
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(30);
      while (std::chrono::steady_clock::now() < until) weft::this_fiber::maybe_yield();
    });
  }
  Trace t;
  load(path, t, 1);
  bool preempted = false;
  for (const Json* s : t.of("fiber")) preempted = preempted || arg(s, "end")->str == "preempt";
  CHECK(preempted);
  std::remove(path.c_str());
}

namespace {

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or cut
// sequences): JSON text must be.
bool valid_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
      n = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
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
      return false;
    }
    if (i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (d < lo || d > hi) : (d & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

bool has_marker_bytes(const std::string& s) {
  return s.find('\x1e') != std::string::npos || s.find('\x1f') != std::string::npos;
}

}  // namespace

TEST_CASE("trace: named fibers' slices carry their names; park reasons name fibers without marker bytes" *
          doctest::timeout(120)) {
  const std::string path = temp_path("names");
  std::remove(path.c_str());
  // 97 bytes: cut to TraceBuffer::k_max_text (95, "..." included), with
  // "é" (2 bytes, the 92nd and 93rd) across the cut.
  const std::string long_name = "a-very-long-fiber-name-that-does-not-fit-the-trace-event-text-of-ninety-five-bytes-at-all-xé-end";
  std::uint64_t root_id = 0, writer_id = 0, locker_id = 0, long_id = 0, bad_id = 0;
  {
    weft::Runtime rt({.workers = 2, .trace_file = path});
    rt.block_on([&] {
      root_id = weft::this_fiber::id();
      weft::this_fiber::set_name("main \xE2\x9C\x93");  // "main ✓"
      weft::Mutex m;
      m.lock();
      // Parks on the mutex while we hold it: its reason names us (a fiber
      // reference, written out before the text is stored).
      auto locker = weft::go("locker", [&] {
        locker_id = weft::this_fiber::id();
        m.lock();
        m.unlock();
      });
      weft::this_fiber::sleep_for(std::chrono::milliseconds(30));
      m.unlock();
      locker.join();
      // A join of a started, named fiber: "join of fiber N" (a reference).
      weft::Channel<int> go_on(0, "go on");
      auto writer = weft::go("writer", [&] {
        writer_id = weft::this_fiber::id();
        return *go_on.recv();
      });
      weft::this_fiber::sleep_for(std::chrono::milliseconds(10));  // the writer starts and parks
      // The send comes later, so that we park on the join meanwhile.
      auto nudge = weft::go([&] {
        weft::this_fiber::sleep_for(std::chrono::milliseconds(20));
        go_on.send(1);
      });
      CHECK(writer.join() == 1);
      nudge.join();
      weft::go(long_name, [&] { long_id = weft::this_fiber::id(); }).join();
      // A name that is not UTF-8 (a stray continuation byte, a marker byte).
      weft::go(std::string("bad\x80name\x1e"), [&] { bad_id = weft::this_fiber::id(); }).join();
    });
  }
  REQUIRE(file_exists(path));
  const std::string text = read_file(path);
  CHECK(valid_utf8(text));
  CHECK(!has_marker_bytes(text));
  Trace t;
  load(path, t, 2);

  std::map<std::uint64_t, std::string> labels;
  for (const Json* s : t.of("fiber")) {
    const auto id = static_cast<std::uint64_t>(arg(s, "fiber")->num);
    const std::string& name = s->get("name")->str;
    if (labels.count(id) != 0) CHECK(labels[id] == name);  // one label per fiber
    labels[id] = name;
  }
  REQUIRE(labels.count(locker_id) == 1);
  CHECK(labels[locker_id] == "locker");
  CHECK(labels[writer_id] == "writer");
  CHECK(labels[root_id] == "main \xE2\x9C\x93");
  const std::string cut = labels[long_id];
  INFO(cut);
  CHECK(cut.size() <= 95);
  CHECK(cut.size() < long_name.size());
  CHECK(cut.substr(cut.size() - 3) == "...");
  CHECK(long_name.rfind(cut.substr(0, cut.size() - 3), 0) == 0);  // a prefix, cut before the "é"
  CHECK(labels[bad_id].rfind("bad", 0) == 0);

  // The spawn of a named child: its parent is the spawner's id.
  bool spawned = false;
  for (const Json* e : t.of("spawn")) {
    if (arg(e, "child")->num == static_cast<double>(writer_id)) {
      spawned = true;
      CHECK(arg(e, "parent")->num == static_cast<double>(root_id));
    }
  }
  CHECK(spawned);

  bool mutex_park = false, join_park = false;
  for (const Json* e : t.of("park")) {
    const std::string reason = arg(e, "reason")->str;
    INFO(reason);
    CHECK(!has_marker_bytes(reason));
    CHECK(reason.size() <= 95);
    const auto fiber = static_cast<std::uint64_t>(arg(e, "fiber")->num);
    if (fiber == locker_id && reason.rfind("lock of weft::Mutex", 0) == 0) {
      // The whole reason fits: the holder written out, without its name.
      const std::string holder = " held by fiber " + std::to_string(root_id);
      CHECK(reason.size() > holder.size());
      CHECK(reason.substr(reason.size() - holder.size()) == holder);
      mutex_park = true;
    }
    if (fiber == root_id && reason == "join of fiber " + std::to_string(writer_id)) join_park = true;
  }
  CHECK(mutex_park);
  CHECK(join_park);
  std::remove(path.c_str());
}
