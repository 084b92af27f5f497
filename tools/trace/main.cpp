// weft-trace: renders a weft trace (Chrome trace-event JSON, as weft's
// tracer writes it) to SVG and PNG without a browser, and summarises it.
//
//   weft-trace render TRACE.json [--svg OUT.svg] [--png OUT.png]
//                     [--from US] [--to US] [--width PX] [--title TEXT]
//   weft-trace summary TRACE.json
//
// Exit status: 0 done; 1 the trace could not be read (bad JSON, not a
// trace, unreadable file) or an output could not be written; 2 a bad
// command line. Every failure prints one line on stderr saying why.
#include "picture.hpp"
#include "png.hpp"
#include "trace_model.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace weft_trace;

constexpr int k_exit_input = 1;
constexpr int k_exit_usage = 2;

constexpr const char* k_usage =
    "usage: weft-trace render TRACE.json [--svg OUT.svg] [--png OUT.png]\n"
    "                         [--from US] [--to US] [--width PX] [--title TEXT]\n"
    "       weft-trace summary TRACE.json\n"
    "render draws one lane per thread, fiber run slices coloured per fiber, and\n"
    "marks for spawns, steals, parks, unparks, timers, wake-ups and cancels;\n"
    "--from/--to select a window in microseconds of the trace's clock.\n";

struct UsageError {
  std::string what;
};

double parse_double(std::string_view flag, std::string_view text) {
  double v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(v)) {
    throw UsageError{std::string(flag) + " needs a number of microseconds, not '" + std::string(text) + "'"};
  }
  return v;
}

int parse_width(std::string_view text) {
  int v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v < k_min_width || v > k_max_width) {
    throw UsageError{"--width needs a number of pixels from " + std::to_string(k_min_width) + " to " +
                     std::to_string(k_max_width) + ", not '" + std::string(text) + "'"};
  }
  return v;
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) throw TraceError(path + ": cannot write");
}

int render(const std::vector<std::string_view>& args) {
  std::string input, svg, png;
  RenderOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= args.size()) throw UsageError{std::string(a) + " needs a value"};
      return args[++i];
    };
    if (a == "--svg") svg = value();
    else if (a == "--png") png = value();
    else if (a == "--from") options.from_us = parse_double(a, value());
    else if (a == "--to") options.to_us = parse_double(a, value());
    else if (a == "--width") options.width = parse_width(value());
    else if (a == "--title") options.title = value();
    else if (!a.empty() && a[0] == '-' && a != "-") throw UsageError{"unknown option " + std::string(a)};
    else if (input.empty()) input = a;
    else throw UsageError{"one trace at a time (got '" + input + "' and '" + std::string(a) + "')"};
  }
  if (input.empty()) throw UsageError{"render needs a trace file"};
  if (svg.empty() && png.empty()) throw UsageError{"render needs --svg OUT.svg, --png OUT.png or both"};
  if (options.from_us && options.to_us && !(*options.to_us > *options.from_us)) {
    throw UsageError{"--to must be later than --from"};
  }
  const Trace trace = read_trace_file(input);
  if (options.title.empty()) options.title = "weft trace: " + input;
  try {
    if (!svg.empty()) write_file(svg, render_svg(trace, options));
    if (!png.empty()) write_file(png, encode_png(render_image(trace, options)));
  } catch (const std::invalid_argument& e) {
    throw UsageError{e.what()};
  }
  return 0;
}

int summarise(const std::vector<std::string_view>& args) {
  if (args.size() != 1 || (args[0].size() > 1 && args[0][0] == '-')) throw UsageError{"summary needs one trace file"};
  std::cout << summary(read_trace_file(std::string(args[0])));
  std::cout.flush();
  return std::cout ? 0 : k_exit_input;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  try {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
      std::cout << k_usage;
      return args.empty() ? k_exit_usage : 0;
    }
    const std::string_view command = args[0];
    args.erase(args.begin());
    if (command == "render") return render(args);
    if (command == "summary") return summarise(args);
    throw UsageError{"unknown command '" + std::string(command) + "' (render or summary)"};
  } catch (const UsageError& e) {
    std::cerr << "weft-trace: " << e.what << '\n' << k_usage;
    return k_exit_usage;
  } catch (const std::bad_alloc&) {
    std::cerr << "weft-trace: out of memory\n";
    return k_exit_input;
  } catch (const std::exception& e) {
    std::cerr << "weft-trace: " << e.what() << '\n';
    return k_exit_input;
  }
}
