// Laying out and drawing the picture of a trace (picture.hpp).
#include "picture.hpp"

#include "font.hpp"
#include "svg_canvas.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

namespace weft_trace {

namespace {

// Geometry, in pixels.
constexpr double k_margin_left = 96;   // lane labels
constexpr double k_margin_right = 16;
constexpr double k_title_height = 22;
constexpr double k_mark_strip = 11;    // marks, above the boxes
constexpr double k_lane_pitch = k_mark_strip + Layout::box_height + 3;
constexpr double k_axis_height = 26;   // axis line, ticks, labels
constexpr double k_legend_row = 14;
constexpr double k_bottom = 6;

constexpr Rgb k_ink{40, 40, 40};
constexpr Rgb k_faint_ink{110, 110, 110};
constexpr Rgb k_sleep_fill{236, 236, 236};
constexpr Rgb k_sleep_ink{185, 185, 185};

// Tableau 10 without its grey (taken by sleep), and three lighter tones:
// distinguishable, and dark or light enough for black or white labels.
constexpr Rgb k_palette[k_palette_size] = {
    {78, 121, 167}, {242, 142, 43}, {225, 87, 89},   {118, 183, 178}, {89, 161, 79},   {237, 201, 72},
    {176, 122, 161}, {255, 157, 167}, {156, 117, 95}, {166, 206, 227}, {178, 223, 138}, {202, 178, 214},
};

std::string format_number(double v, int decimals) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// The legend: entries laid out left to right, wrapping at the picture's width.
struct LegendEntry {
  int kind;  // a MarkKind, or k_legend_slice / k_legend_sleep
  std::string label;
  double x = 0;
  double y = 0;
};
constexpr int k_legend_slice = -1;
constexpr int k_legend_sleep = -2;
constexpr double k_swatch = 10;

std::vector<LegendEntry> legend(double width, double top) {
  std::vector<LegendEntry> entries = {{k_legend_slice, "fiber ran (colour = fiber)"},
                                      {k_legend_sleep, "worker asleep"}};
  static const char* const k_mark_labels[k_mark_kinds] = {"spawn", "steal (victim -> thief)", "park",
                                                          "unpark",  "timer fired", "worker woken",
                                                          "cancel"};
  for (int k = 0; k < k_mark_kinds; ++k) entries.push_back({k, k_mark_labels[k]});
  double x = 8, y = top;
  for (LegendEntry& e : entries) {
    const double w = (e.kind == k_legend_slice ? 3 * k_swatch : k_swatch) + 4 + text_width(e.label) + 14;
    if (x + w > width - 8 && x > 8) {
      x = 8;
      y += k_legend_row;
    }
    e.x = x;
    e.y = y;
    x += w;
  }
  return entries;
}

double legend_height(double width) {
  const std::vector<LegendEntry> entries = legend(width, 0);
  return entries.back().y + k_legend_row;
}

// Marks are centred on (x, y), about 8 px across.
void draw_mark(Canvas& canvas, MarkKind kind, double x, double y, const std::string& tooltip) {
  const Rgb c = mark_colour(kind);
  const std::string cls = std::string("mark ") + mark_kind_name(kind);
  switch (kind) {
    case MarkKind::spawn:
      canvas.circle({x, y}, 2.5, c, cls, tooltip);
      break;
    case MarkKind::steal:  // pointing down, into the thief's lane
      canvas.polygon({{x - 4.5, y - 4}, {x + 4.5, y - 4}, {x, y + 4.5}}, c, cls, tooltip);
      break;
    case MarkKind::park:
      canvas.polygon({{x - 3.5, y - 3.5}, {x + 3.5, y - 3.5}, {x + 3.5, y + 3.5}, {x - 3.5, y + 3.5}}, c, cls,
                     tooltip);
      break;
    case MarkKind::unpark:
      canvas.polygon({{x - 4.5, y + 4}, {x + 4.5, y + 4}, {x, y - 4.5}}, c, cls, tooltip);
      break;
    case MarkKind::timer:
      canvas.polygon({{x, y - 4.5}, {x + 4.5, y}, {x, y + 4.5}, {x - 4.5, y}}, c, cls, tooltip);
      break;
    case MarkKind::wake:
      canvas.polygon({{x - 1, y - 4.5}, {x + 1, y - 4.5}, {x + 1, y + 4.5}, {x - 1, y + 4.5}}, c, cls, tooltip);
      break;
    case MarkKind::cancel:  // a cross: two thin diamonds
      canvas.polygon({{x - 4, y - 4}, {x - 2.5, y - 4}, {x + 4, y + 4}, {x + 2.5, y + 4}}, c, cls, tooltip);
      canvas.polygon({{x + 2.5, y - 4}, {x + 4, y - 4}, {x - 2.5, y + 4}, {x - 4, y + 4}}, c, cls, "");
      break;
  }
}

std::string fiber_label(const Span& s) {
  if (s.kind == SpanKind::blocking) return "blocking job, fiber " + std::to_string(s.fiber);
  return s.name.empty() ? "fiber " + std::to_string(s.fiber) : s.name;
}

std::string span_tooltip(const Span& s) {
  std::string t = s.kind == SpanKind::sleep ? std::string("asleep")
                  : s.kind == SpanKind::blocking ? "blocking job for fiber " + std::to_string(s.fiber)
                                                 : "fiber " + std::to_string(s.fiber) + " \"" + s.name + "\"";
  t += ": " + format_number(s.ts, 3) + " us + " + format_number(s.dur, 3) + " us";
  if (!s.end.empty()) t += ", then " + s.end;
  return printable_ascii(t);
}

std::string mark_tooltip(const Mark& m, const Trace& trace) {
  std::string t = mark_kind_name(m.kind);
  switch (m.kind) {
    case MarkKind::spawn: t += " fiber " + std::to_string(m.fiber) + " by " + std::to_string(m.other); break;
    case MarkKind::steal: {
      t += " fiber " + std::to_string(m.fiber);
      const std::int64_t v = trace.lane_of(m.victim);
      if (v >= 0) t += " from " + trace.lanes[static_cast<std::size_t>(v)].name;
      break;
    }
    case MarkKind::park:
      t += " fiber " + std::to_string(m.fiber);
      if (!m.reason.empty()) t += ": " + m.reason;
      break;
    case MarkKind::unpark: t += " fiber " + std::to_string(m.fiber) + " by " + std::to_string(m.other); break;
    case MarkKind::cancel: t += " fiber " + std::to_string(m.fiber); break;
    case MarkKind::timer:
    case MarkKind::wake: break;
  }
  t += " at " + format_number(m.ts, 3) + " us";
  return printable_ascii(t);
}

// Black or white, whichever reads better on `c`.
Rgb label_ink(Rgb c) {
  const double lum = 0.299 * c.r + 0.587 * c.g + 0.114 * c.b;
  return lum > 140 ? Rgb{0, 0, 0} : Rgb{255, 255, 255};
}

// `text` cut to fit `width` pixels (ending in '.' when cut), or empty when
// fewer than three characters would fit.
std::string fit(const std::string& text, double width) {
  if (text_width(text) <= width) return text;
  const auto n = static_cast<std::size_t>(std::max(0.0, (width + 1) / k_font_advance));
  if (n < 3) return std::string();
  return text.substr(0, n - 1) + '.';
}

void draw_axis(const Layout& layout, Canvas& canvas) {
  canvas.begin_group("axis", "");
  const double y = layout.axis_y();
  canvas.line({layout.plot_left(), y}, {layout.plot_right(), y}, k_ink, 1, "axis-line");
  const double span = layout.to() - layout.from();
  const bool ms = span >= 2000;
  const double unit = ms ? 1000.0 : 1.0;
  // A step of 1, 2 or 5 times a power of ten, about eight ticks across.
  const double raw = span / 8;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step / unit) + 1e-9)));
  const double first = std::ceil(layout.from() / step - 1e-9) * step;
  for (int i = 0; i < 1000; ++i) {
    const double t = first + i * step;
    if (t > layout.to() + step * 1e-9) break;
    const double x = layout.x_of(t);
    canvas.line({x, y}, {x, y + 4}, k_ink, 1, "tick");
    const std::string label = format_number(t / unit, decimals);
    const double w = text_width(label);
    canvas.text(std::clamp(x - w / 2, 2.0, layout.width() - w - 2), y + 7, label, k_ink);
  }
  const std::string unit_label = ms ? "time (ms)" : "time (us)";
  canvas.text(8, y + 7, unit_label, k_faint_ink);
  canvas.end_group();
}

void draw_legend(const Layout& layout, Canvas& canvas) {
  canvas.begin_group("legend", "");
  for (const LegendEntry& e : legend(layout.width(), layout.legend_top())) {
    double x = e.x;
    const double cy = e.y + k_swatch / 2;
    if (e.kind == k_legend_slice) {
      for (int i = 1; i <= 3; ++i, x += k_swatch) canvas.rect(x, e.y, k_swatch, k_swatch, fiber_colour(i), "", "");
    } else if (e.kind == k_legend_sleep) {
      canvas.hatch(x, e.y, k_swatch, k_swatch, k_sleep_fill, k_sleep_ink, "");
      x += k_swatch;
    } else {
      draw_mark(canvas, static_cast<MarkKind>(e.kind), x + k_swatch / 2, cy, "");
      x += k_swatch;
    }
    canvas.text(x + 4, e.y + 1.5, e.label, k_ink);
  }
  canvas.end_group();
}

}  // namespace

Rgb fiber_colour(std::uint64_t fiber) noexcept { return k_palette[fiber % k_palette_size]; }

Rgb mark_colour(MarkKind kind) noexcept {
  switch (kind) {
    case MarkKind::spawn: return {120, 120, 120};
    case MarkKind::steal: return {214, 39, 40};
    case MarkKind::park: return {31, 119, 180};
    case MarkKind::unpark: return {44, 160, 44};
    case MarkKind::timer: return {148, 103, 189};
    case MarkKind::wake: return {255, 127, 14};
    case MarkKind::cancel: return {0, 0, 0};
  }
  return {0, 0, 0};
}

std::string printable_ascii(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u >= 32 && u <= 126) {
      out += static_cast<char>(u);
    } else {
      out += '?';
      if (u >= 0xc0) {  // a UTF-8 lead byte: skip its continuation bytes
        while (i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xc0) == 0x80) ++i;
      }
    }
  }
  return out;
}

Layout::Layout(const Trace& trace, const RenderOptions& options) {
  if (options.width < k_min_width || options.width > k_max_width) {
    throw std::invalid_argument("width must be between " + std::to_string(k_min_width) + " and " +
                                std::to_string(k_max_width) + " pixels");
  }
  width_ = options.width;
  if (trace.empty()) {
    from_ = options.from_us.value_or(options.to_us ? *options.to_us - 1000 : 0);
    to_ = options.to_us.value_or(from_ + 1000);
  } else {
    from_ = options.from_us.value_or(trace.first_ts());
    to_ = options.to_us.value_or(std::max(trace.last_ts(), from_ + 1));
  }
  if (!std::isfinite(from_) || !std::isfinite(to_) || !(to_ > from_) || !std::isfinite(to_ - from_)) {
    throw std::invalid_argument("the time window must be non-empty and finite: --to later than --from");
  }
  plot_left_ = k_margin_left;
  plot_right_ = width_ - k_margin_right;
  lanes_top_ = k_title_height;
  axis_y_ = lanes_top_ + static_cast<double>(trace.lanes.size()) * k_lane_pitch + 4;
  legend_top_ = axis_y_ + k_axis_height;
  const double height = legend_top_ + legend_height(width_) + k_bottom;
  if (height > k_max_height) {
    throw TraceError("too many lanes (" + std::to_string(trace.lanes.size()) + ") for one picture");
  }
  height_ = static_cast<int>(std::ceil(height));
}

double Layout::x_of(double ts) const noexcept {
  return plot_left_ + (ts - from_) / (to_ - from_) * (plot_right_ - plot_left_);
}
double Layout::lane_top(std::size_t lane) const noexcept {
  return lanes_top_ + static_cast<double>(lane) * k_lane_pitch;
}
double Layout::mark_y(std::size_t lane) const noexcept { return lane_top(lane) + k_mark_strip / 2; }
double Layout::box_top(std::size_t lane) const noexcept { return lane_top(lane) + k_mark_strip; }

void draw_picture(const Trace& trace, const Layout& layout, const RenderOptions& options, Canvas& canvas) {
  const std::string title = printable_ascii(options.title);
  if (!title.empty()) canvas.text(8, 7, fit(title, layout.width() - 16), k_ink);

  const double left = layout.plot_left();
  const double right = layout.plot_right();
  // A span's pixels, clipped to the window; false when outside it.
  auto clip = [&](double ts, double dur, double& x, double& w) {
    if (ts > layout.to() || ts + dur < layout.from()) return false;
    x = std::max(layout.x_of(ts), left);
    w = std::max(std::min(layout.x_of(ts + dur), right) - x, 1.0);
    return true;
  };

  for (std::size_t l = 0; l < trace.lanes.size(); ++l) {
    canvas.begin_group("lane", "lane-" + std::to_string(l));
    const double box_top = layout.box_top(l);
    canvas.rect(left, box_top, right - left, Layout::box_height, k_lane_band, "band", "");
    canvas.text(6, box_top + 6, fit(printable_ascii(trace.lanes[l].name), k_margin_left - 10), k_ink);
    double x = 0, w = 0;
    for (const Span& s : trace.spans) {  // sleep first: the quiet background
      if (s.lane != l || s.kind != SpanKind::sleep || !clip(s.ts, s.dur, x, w)) continue;
      canvas.hatch(x, box_top + 3, w, Layout::box_height - 6, k_sleep_fill, k_sleep_ink, "sleep");
    }
    for (const Span& s : trace.spans) {
      if (s.lane != l || s.kind == SpanKind::sleep || !clip(s.ts, s.dur, x, w)) continue;
      const Rgb fill = fiber_colour(s.fiber);
      canvas.rect(x, box_top, w, Layout::box_height, fill, s.kind == SpanKind::fiber ? "slice" : "blocking",
                  span_tooltip(s));
      const std::string label = fit(printable_ascii(fiber_label(s)), w - 4);
      if (!label.empty()) canvas.text(x + 2, box_top + 6, label, label_ink(fill));
    }
    for (const Mark& m : trace.marks) {
      if (m.lane != l || m.ts < layout.from() || m.ts > layout.to()) continue;
      draw_mark(canvas, m.kind, layout.x_of(m.ts), layout.mark_y(l), mark_tooltip(m, trace));
    }
    canvas.end_group();
  }

  // Steals: a line from the victim's lane to the thief's, arrowhead at the thief.
  canvas.begin_group("steals", "");
  for (const Mark& m : trace.marks) {
    if (m.kind != MarkKind::steal || m.ts < layout.from() || m.ts > layout.to()) continue;
    const std::int64_t victim = trace.lane_of(m.victim);
    if (victim < 0 || static_cast<std::size_t>(victim) == m.lane) continue;
    const double x = layout.x_of(m.ts);
    const auto v = static_cast<std::size_t>(victim);
    const Rgb c = mark_colour(MarkKind::steal);
    if (v < m.lane) {
      // Victim above: down from its boxes to the thief's mark, whose
      // triangle points down and serves as the arrowhead.
      canvas.line({x, layout.box_top(v) + Layout::box_height}, {x, layout.mark_y(m.lane) - 4}, c, 1, "steal-arrow");
    } else {
      // Victim below: up from its mark strip to an arrowhead under the thief's boxes.
      const double tip = layout.box_top(m.lane) + Layout::box_height + 0.5;
      canvas.line({x, layout.lane_top(v)}, {x, tip + 4}, c, 1, "steal-arrow");
      canvas.polygon({{x - 3.5, tip + 5}, {x + 3.5, tip + 5}, {x, tip}}, c, "steal-arrow", "");
    }
  }
  canvas.end_group();

  draw_axis(layout, canvas);
  draw_legend(layout, canvas);
}

std::string render_svg(const Trace& trace, const RenderOptions& options) {
  const Layout layout(trace, options);
  SvgCanvas canvas(layout.width(), layout.height(), k_background, k_sleep_ink, printable_ascii(options.title));
  draw_picture(trace, layout, options, canvas);
  return canvas.finish();
}

Image render_image(const Trace& trace, const RenderOptions& options) {
  const Layout layout(trace, options);
  Image image(layout.width(), layout.height(), k_background);
  RasterCanvas canvas(image);
  draw_picture(trace, layout, options, canvas);
  return image;
}

}  // namespace weft_trace
