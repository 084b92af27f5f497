// weft-trace (tools/trace/): the JSON reader, the trace model and its
// summary, the SVG and PNG pictures, and the command line's errors. Reads
// the hand-written sample traces in tests/data/ (they follow the format in
// docs/design/seeing-inside.md); runs the weft-trace executable for
// the command-line checks and decodes the PNG it writes with zlib.
#include "font.hpp"
#include "json.hpp"
#include "picture.hpp"
#include "png.hpp"
#include "trace_model.hpp"

#include "trace_test_support.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

using namespace weft_trace;
using namespace weft_trace_test;
namespace fs = std::filesystem;

namespace {

const std::string k_data = WEFT_TRACE_TEST_DATA;  // tests/data
const std::string k_tool = WEFT_TRACE_EXE;        // the built weft-trace
const std::string k_source = WEFT_SOURCE_ROOT;

Outcome run_tool(const std::vector<std::string>& args) { return weft_trace_test::run_tool(k_tool, args); }

const Span& find_slice(const Trace& t, const std::string& name, SpanKind kind = SpanKind::fiber) {
  for (const Span& s : t.spans) {
    if (s.kind == kind && s.name == name) return s;
  }
  FAIL("no span named " << name);
  throw 0;
}

std::size_t fiber_slices_in(const Trace& t, double from, double to) {
  std::size_t n = 0;
  for (const Span& s : t.spans) n += s.kind == SpanKind::fiber && s.ts <= to && s.ts + s.dur >= from;
  return n;
}

}  // namespace

TEST_CASE("trace json: streaming hands over the events array's elements in order and keeps the rest") {
  std::vector<double> seen;
  auto each = [&](const JsonValue& e) { seen.push_back(e.find("ts")->as_number()); };
  // The member at the top level is streamed (left empty); one of the same
  // name deeper down, and other members, are kept as parsed.
  const JsonValue doc = parse_json_streaming(
      R"({"otherData":{"traceEvents":[{"ts":9}]},"traceEvents":[{"ts":1},{"ts":2},{"ts":3}],"x":[4]})", "traceEvents",
      each);
  CHECK(seen == std::vector<double>{1, 2, 3});
  REQUIRE(doc.find("traceEvents") != nullptr);
  CHECK(doc.find("traceEvents")->is_array());
  CHECK(doc.find("traceEvents")->items().empty());
  CHECK(doc.find("otherData")->find("traceEvents")->items().size() == 1);
  CHECK(doc.find("x")->items().size() == 1);
  // A document that is the array itself.
  seen.clear();
  const JsonValue top = parse_json_streaming(R"( [{"ts":5},{"ts":6}] )", "traceEvents", each);
  CHECK(seen == std::vector<double>{5, 6});
  CHECK(top.is_array());
  CHECK(top.items().empty());
  // A member of that name that is not an array is kept, not streamed.
  seen.clear();
  const JsonValue odd = parse_json_streaming(R"({"traceEvents":7})", "traceEvents", each);
  CHECK(seen.empty());
  CHECK(odd.find("traceEvents")->as_number() == 7);
  // Errors keep their place, after the elements before them were handed over.
  seen.clear();
  try {
    parse_json_streaming("{\"traceEvents\":[{\"ts\":1},\n{\"ts\":}]}", "traceEvents", each);
    FAIL("accepted");
  } catch (const JsonError& e) {
    CHECK(seen == std::vector<double>{1});
    CHECK(e.line() == 2);
    CHECK(e.column() == 7);
  }
}

TEST_CASE("trace json: reads objects, arrays, strings with escapes, numbers and literals") {
  const JsonValue v = parse_json(R"( {"a":[1,-2.5,3e2,0.125E-1],"s":"q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00",
                                      "t":true,"f":false,"n":null,"o":{},"e":[]} )");
  REQUIRE(v.is_object());
  REQUIRE(v.find("a") != nullptr);
  const auto& a = v.find("a")->items();
  REQUIRE(a.size() == 4);
  CHECK(a[0].as_number() == 1);
  CHECK(a[1].as_number() == -2.5);
  CHECK(a[2].as_number() == 300);
  CHECK(a[3].as_number() == doctest::Approx(0.0125));
  CHECK(v.find("s")->as_string() == "q\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(v.find("t")->as_bool());
  CHECK(v.find("f")->is_bool());
  CHECK_FALSE(v.find("f")->as_bool());
  CHECK(v.find("n")->is_null());
  CHECK(v.find("o")->members().empty());
  CHECK(v.find("e")->items().empty());
  CHECK(v.find("missing") == nullptr);
}

TEST_CASE("trace json: bad input is a JsonError with its line and column, never a crash") {
  struct Bad {
    std::string text;
    std::size_t line, column;
    const char* says;
  };
  const std::vector<Bad> cases = {
      {"", 1, 1, "unexpected end of input"},
      {"{\"a\":}", 1, 6, "expected a value"},
      {"[1,2", 1, 5, "missing ']'"},
      {"{\n  \"a\" 1}", 2, 7, "expected ':'"},
      {"\"abc", 1, 1, "unterminated string"},
      {"[01]", 1, 3, "leading zero"},
      {"[tru]", 1, 2, "invalid literal"},
      {"[\"\\x\"]", 1, 3, "invalid escape"},
      {"[1] x", 1, 5, "after the JSON value"},
      {"[\"\\ud800\"]", 1, 9, "lone high surrogate"},
      {"[\"a\tb\"]", 1, 4, "control character"},
      {"[1e999]", 1, 2, "out of range"},
      {"[-]", 1, 3, "expected a digit"},
      {"{\"a\":1,}", 1, 8, "member name"},
      {std::string(100000, '['), 1, k_max_json_depth + 1, "nesting deeper"},
  };
  for (const Bad& b : cases) {
    INFO("input: " << b.text.substr(0, 40));
    try {
      parse_json(b.text);
      FAIL("accepted");
    } catch (const JsonError& e) {
      CHECK(std::string(e.what()).find(b.says) != std::string::npos);
      CHECK(e.line() == b.line);
      CHECK(e.column() == b.column);
    }
  }
}

TEST_CASE("trace model: the race sample's lanes and the count of each event kind") {
  const Trace t = read_trace_file(k_data + "/trace_race.json");
  CHECK(t.workers == 2);
  CHECK(summary(t) ==
        "trace: lanes=3 spans=15 marks=21 ignored=0\n"
        "lane worker 0: fiber=6 sleep=2 blocking=0 spawn=3 steal=0 park=3 unpark=1 timer=0 wake=3 cancel=0\n"
        "lane worker 1: fiber=4 sleep=3 blocking=0 spawn=0 steal=2 park=1 unpark=3 timer=1 wake=2 cancel=1\n"
        "lane main thread: fiber=0 sleep=0 blocking=0 spawn=1 steal=0 park=0 unpark=0 timer=0 wake=0 cancel=0\n");
  // The steals name their victim; the parks keep their reason.
  std::size_t steals = 0;
  for (const Mark& m : t.marks) {
    if (m.kind == MarkKind::steal) {
      ++steals;
      CHECK(m.victim == 0);
      CHECK(t.lanes[m.lane].tid == 1);
    }
    if (m.kind == MarkKind::park && m.fiber == 4) CHECK(m.reason == "sleep until 30.000us");
  }
  CHECK(steals == 2);
  CHECK(t.first_ts() == 0.0);
  CHECK(t.last_ts() == doctest::Approx(37.0));
}

TEST_CASE("trace model: lanes sorted workers, plain threads, blocking pool; names; unknown kinds ignored") {
  const Trace t = read_trace_file(k_data + "/trace_lanes.json");
  std::vector<std::int64_t> tids;
  std::vector<std::string> names;
  for (const Lane& l : t.lanes) {
    tids.push_back(l.tid);
    names.push_back(l.name);
  }
  CHECK(tids == std::vector<std::int64_t>{0, 1, 1000, 1001, 2000});
  CHECK(names == std::vector<std::string>{"worker 0", "worker 1", "thread 0", "thread 1", "blocking pool 0"});
  CHECK(t.ignored == 1);  // the "gc" event
  // Events come out sorted by time although the file is not.
  for (std::size_t i = 1; i < t.spans.size(); ++i) CHECK(t.spans[i - 1].ts <= t.spans[i].ts);
  CHECK(find_slice(t, "early").lane == 0);
  CHECK(find_slice(t, "blocking", SpanKind::blocking).fiber == 9);
}

TEST_CASE("trace model: JSON that is not a trace is a TraceError that says why") {
  struct Bad {
    const char* text;
    const char* says;
  };
  const Bad cases[] = {
      {R"({"events":[]})", "no \"traceEvents\""},
      {R"({"traceEvents":{}})", "expected an array"},
      {R"({"traceEvents":[1]})", "event 0: is a number"},
      {R"({"traceEvents":[{"cat":"fiber","tid":0,"dur":1}]})", "event 0: missing \"ts\""},
      {R"({"traceEvents":[{},{"cat":"park","tid":"w0","ts":1}]})", "event 1: \"tid\" is a string"},
      {R"({"traceEvents":[{"cat":"sleep","tid":0,"ts":1,"dur":-2}]})", "negative \"dur\""},
      {R"({"traceEvents":[{"cat":"wake","tid":0.5,"ts":1}]})", "not an integer"},
  };
  for (const Bad& b : cases) {
    INFO(b.text);
    try {
      load_trace(parse_json(b.text));
      FAIL("accepted");
    } catch (const TraceError& e) {
      CHECK(std::string(e.what()).find(b.says) != std::string::npos);
    }
  }
  // The bare array form is a trace too, and unknown kinds are skipped.
  const Trace t = load_trace(parse_json(R"([{"cat":"future","tid":0,"ts":"any"},{"cat":"timer","tid":3,"ts":2}])"));
  CHECK(t.marks.size() == 1);
  CHECK(t.ignored == 1);
}

TEST_CASE("weft-trace summary: prints the lanes and event counts") {
  const Outcome out = run_tool({"summary", k_data + "/trace_race.json"});
  CHECK(out.exit_code == 0);
  CHECK(out.output.find("lane worker 1: fiber=4 sleep=3 blocking=0 spawn=0 steal=2 park=1 unpark=3 timer=1") !=
        std::string::npos);
}

TEST_CASE("weft-trace render: the SVG is well-formed, with a group per lane and a rect per fiber slice") {
  TempDir dir;
  for (const char* sample : {"trace_race", "trace_lanes"}) {
    INFO(sample);
    const std::string svg_path = dir.file(std::string(sample) + ".svg");
    const Outcome out = run_tool({"render", k_data + "/" + sample + ".json", "--svg", svg_path});
    REQUIRE(out.exit_code == 0);
    const std::string svg = read_bytes(svg_path);
    CHECK(xml_problem(svg) == "");
    CHECK(svg.find("<script") == std::string::npos);
    const Trace t = read_trace_file(k_data + "/" + sample + ".json");
    CHECK(count(svg, "<g class=\"lane\"") == t.lanes.size());
    CHECK(count(svg, "<rect class=\"slice\"") == fiber_slices_in(t, t.first_ts(), t.last_ts()));
    std::size_t steals = 0;
    for (const Mark& m : t.marks) steals += m.kind == MarkKind::steal;
    CHECK(count(svg, "class=\"mark steal\"") == steals + 1);  // and one in the legend
    for (const Lane& l : t.lanes) CHECK(svg.find(l.name.substr(0, 10)) != std::string::npos);
  }
  // Text is escaped: the lanes sample's fiber is named `café <&> "q"<tab>tab`.
  const std::string svg = read_bytes(dir.file("trace_lanes.svg"));
  CHECK(svg.find("caf? &lt;&amp;&gt; &quot;q&quot;?tab") != std::string::npos);
}

TEST_CASE("weft-trace render: --from/--to keep the slices in the window") {
  TempDir dir;
  const Trace t = read_trace_file(k_data + "/trace_race.json");
  const Outcome out = run_tool({"render", k_data + "/trace_race.json", "--svg", dir.file("w.svg"), "--from", "20",
                                "--to", "30", "--width", "800"});
  REQUIRE(out.exit_code == 0);
  const std::string svg = read_bytes(dir.file("w.svg"));
  CHECK(xml_problem(svg) == "");
  CHECK(fiber_slices_in(t, 20, 30) < fiber_slices_in(t, 0, 40));
  CHECK(count(svg, "<rect class=\"slice\"") == fiber_slices_in(t, 20, 30));
  CHECK(svg.find("width=\"800\"") != std::string::npos);
}

TEST_CASE("weft-trace render: the PNG's chunks check out and its pixels show the boxes") {
  TempDir dir;
  const std::string png_path = dir.file("race.png");
  const Outcome out =
      run_tool({"render", k_data + "/trace_race.json", "--png", png_path, "--title", "race", "--width", "1000"});
  REQUIRE(out.exit_code == 0);
  const DecodedPng png = decode_png(read_bytes(png_path));

  const Trace t = read_trace_file(k_data + "/trace_race.json");
  RenderOptions options;
  options.title = "race";
  options.width = 1000;
  const Layout layout(t, options);
  CHECK(png.width == 1000);
  CHECK(png.height == layout.height());

  // The centre of a box (below its label) is its fiber's colour: the
  // palette's entries for fibers 1 to 4, four different colours.
  const std::pair<const char*, Rgb> boxes[] = {
      {"main", {242, 142, 43}}, {"racer a", {225, 87, 89}}, {"racer b", {118, 183, 178}}, {"third", {89, 161, 79}}};
  for (const auto& box : boxes) {
    const char* name = box.first;  // not a structured binding: clang 14's INFO cannot capture one
    const Rgb colour = box.second;
    INFO(name);
    const Span& s = find_slice(t, name);
    CHECK(fiber_colour(s.fiber) == colour);
    const int x = static_cast<int>(layout.x_of(s.ts + s.dur / 2));
    const int y = static_cast<int>(layout.box_top(s.lane) + Layout::box_height - 3);
    CHECK(png.at(x, y) == colour);
  }
  // Empty space is the background: the plain thread's lane has no marks after 1 µs.
  CHECK(png.at(static_cast<int>(layout.x_of(20)), static_cast<int>(layout.mark_y(2))) == k_background);
  // Worker 1 runs nothing between its wake-up (7 µs) and racer b (9.5 µs).
  CHECK(png.at(static_cast<int>(layout.x_of(8)), static_cast<int>(layout.box_top(1) + 12)) == k_lane_band);
  // A park mark sits in worker 0's strip at 10 µs.
  CHECK(png.at(static_cast<int>(layout.x_of(10)), static_cast<int>(layout.mark_y(0))) == mark_colour(MarkKind::park));

  // And the file is exactly the picture the library draws.
  const Image image = render_image(t, options);
  CHECK(png.pixels == std::string(image.rgb.begin(), image.rgb.end()));
}

TEST_CASE("weft-trace render: an empty trace gives an empty picture with the axis") {
  TempDir dir;
  const Outcome out = run_tool(
      {"render", k_data + "/trace_empty.json", "--svg", dir.file("e.svg"), "--png", dir.file("e.png")});
  REQUIRE(out.exit_code == 0);
  const std::string svg = read_bytes(dir.file("e.svg"));
  CHECK(xml_problem(svg) == "");
  CHECK(count(svg, "<g class=\"lane\"") == 0);
  CHECK(count(svg, "<rect class=\"slice\"") == 0);
  CHECK(count(svg, "class=\"tick\"") >= 5);
  CHECK(svg.find(">time (us)<") != std::string::npos);

  const DecodedPng png = decode_png(read_bytes(dir.file("e.png")));
  const Trace t = read_trace_file(k_data + "/trace_empty.json");
  const Layout layout(t, RenderOptions{});
  CHECK(png.height == layout.height());
  const int axis_y = static_cast<int>(layout.axis_y());
  CHECK(png.at(png.width / 2, axis_y) != k_background);       // the axis line
  CHECK(png.at(png.width / 2, axis_y - 6) == k_background);   // nothing above it
}

TEST_CASE("weft-trace: bad input and bad command lines exit non-zero with a message") {
  TempDir dir;
  write_text(dir.file("bad.json"), "{\"traceEvents\":[\n  {\"ph\":\"X\" \"cat\":\"fiber\"}\n]}\n");
  Outcome out = run_tool({"summary", dir.file("bad.json")});
  CHECK(out.exit_code == 1);
  CHECK(out.output.find("bad.json:2:13: unexpected '\"' in an object, expected ',' or '}'") != std::string::npos);

  out = run_tool({"render", dir.file("bad.json"), "--svg", dir.file("x.svg")});
  CHECK(out.exit_code == 1);
  CHECK_FALSE(fs::exists(dir.file("x.svg")));

  write_text(dir.file("notrace.json"), "{\"traceEvents\":[{\"cat\":\"park\",\"tid\":0}]}");
  out = run_tool({"summary", dir.file("notrace.json")});
  CHECK(out.exit_code == 1);
  CHECK(out.output.find("event 0: missing \"ts\"") != std::string::npos);

  out = run_tool({"summary", dir.file("missing.json")});
  CHECK(out.exit_code == 1);
  CHECK(out.output.find("cannot open") != std::string::npos);

  write_text(dir.file("binary.json"), std::string("\x00\xff\x89PNG", 6));
  out = run_tool({"summary", dir.file("binary.json")});
  CHECK(out.exit_code == 1);
  CHECK(out.output.find("1:1:") != std::string::npos);

  const std::string race = k_data + "/trace_race.json";
  struct Usage {
    std::vector<std::string> args;
    const char* says;
  };
  const std::vector<Usage> usage = {
      {{}, "usage:"},
      {{"draw", race}, "unknown command 'draw'"},
      {{"render", race}, "render needs --svg"},
      {{"render", "--svg", dir.file("a.svg")}, "render needs a trace file"},
      {{"render", race, "--svg"}, "--svg needs a value"},
      {{"render", race, "--png", dir.file("a.png"), "--width", "12"}, "--width needs a number of pixels"},
      {{"render", race, "--png", dir.file("a.png"), "--from", "x"}, "--from needs a number"},
      {{"render", race, "--png", dir.file("a.png"), "--from", "30", "--to", "20"}, "--to must be later"},
      {{"render", race, "--png", dir.file("a.png"), "--bogus"}, "unknown option --bogus"},
      {{"summary"}, "summary needs one trace file"},
      {{"render", race, "--png", dir.file("a.png"), "--from", "-1e308", "--to", "1e308"}, "time window"},
  };
  for (const Usage& u : usage) {
    INFO(u.says);
    out = run_tool(u.args);
    CHECK(out.exit_code == 2);
    CHECK(out.output.find(u.says) != std::string::npos);
  }
  // Too many lanes for one picture is an input error.
  std::string many = "{\"traceEvents\":[";
  for (int tid = 0; tid < 600; ++tid) many += std::string(tid ? "," : "") + "{\"cat\":\"wake\",\"tid\":" + std::to_string(tid) + ",\"ts\":1}";
  write_text(dir.file("many.json"), many + "]}");
  out = run_tool({"render", dir.file("many.json"), "--png", dir.file("many.png")});
  CHECK(out.exit_code == 1);
  CHECK(out.output.find("too many lanes (600)") != std::string::npos);
  CHECK(run_tool({"summary", dir.file("many.json")}).exit_code == 0);

  // A window past the end of the trace is fine: an empty picture.
  out = run_tool({"render", race, "--png", dir.file("late.png"), "--from", "1000", "--to", "2000"});
  CHECK(out.exit_code == 0);
  CHECK(decode_png(read_bytes(dir.file("late.png"))).width == 1200);
}

TEST_CASE("weft-trace render: the guide's sample pictures are what the tool draws today") {
  // docs/guide/seeing-inside.md (weft-trace section) shows docs/pictures/trace-sample.*,
  // made by this command; after a change to the picture, run it again
  // (from the source root) and commit the files.
  TempDir dir;
  const Outcome out = run_tool({"render", k_data + "/trace_race.json", "--svg", dir.file("r.svg"), "--png",
                                dir.file("r.png"), "--width", "960", "--title",
                                "sample trace: two workers, racer a and racer b across a yield, two steals"});
  REQUIRE(out.exit_code == 0);
  CHECK(read_bytes(dir.file("r.svg")) == read_bytes(k_source + "/docs/pictures/trace-sample.svg"));
  // Pixels, not bytes: another zlib may compress the same pixels differently.
  const DecodedPng now = decode_png(read_bytes(dir.file("r.png")));
  const DecodedPng committed = decode_png(read_bytes(k_source + "/docs/pictures/trace-sample.png"));
  CHECK(now.width == committed.width);
  CHECK(now.height == committed.height);
  CHECK(now.pixels == committed.pixels);
}

TEST_CASE("trace font: every printable ASCII glyph but space has ink; other bytes draw as '?'") {
  for (int c = 33; c <= 126; ++c) {
    INFO("glyph " << char(c));
    int ink = 0;
    for (int row = 0; row < k_font_height; ++row) ink += glyph_row(char(c), row) != 0;
    CHECK(ink > 0);
  }
  for (int row = 0; row < k_font_height; ++row) {
    CHECK(glyph_row(' ', row) == 0);
    CHECK(glyph_row('\x01', row) == glyph_row('?', row));
    CHECK(glyph_row('\xe9', row) == glyph_row('?', row));
    CHECK(glyph_row('A', row) < (1 << k_font_width));
  }
  CHECK(printable_ascii("caf\xc3\xa9\t!") == "caf?" "?!");
}

TEST_CASE("trace png: a small image survives encoding") {
  Image image(3, 2, Rgb{1, 2, 3});
  image.set(2, 1, Rgb{200, 100, 50});
  image.set(7, 7, Rgb{9, 9, 9});  // outside: ignored
  const DecodedPng png = decode_png(encode_png(image));
  CHECK(png.width == 3);
  CHECK(png.height == 2);
  CHECK(png.at(0, 0) == Rgb{1, 2, 3});
  CHECK(png.at(2, 1) == Rgb{200, 100, 50});
  CHECK(png.chunk_types == std::vector<std::string>{"IHDR", "IDAT", "IEND"});
}
