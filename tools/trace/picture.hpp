// The picture of a trace: its layout (where each lane, box and mark goes,
// in pixels) and the drawing of it onto a Canvas (canvas.hpp). One lane per
// thread (workers, then plain threads, then blocking-pool threads), fiber
// run slices as boxes coloured per fiber, sleep as grey hatching, a strip
// of marks above the boxes (spawn, steal with an arrow from the victim's
// lane, park, unpark, timer, wake, cancel), a time axis and a legend.
// render_svg() and render_image() draw the same picture on the two canvases.
//
// Contract: the layout throws std::invalid_argument for options it cannot
// honour (a time window that is empty or not finite, a width out of range)
// and TraceError for a trace with too many lanes for one picture;
// otherwise every trace, the empty one included, gives a picture.
// Pure functions, any thread.
#pragma once

#include "canvas.hpp"
#include "raster.hpp"
#include "trace_model.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace weft_trace {

struct RenderOptions {
  std::optional<double> from_us;  // default: the first event
  std::optional<double> to_us;    // default: the end of the last event
  int width = 1200;               // pixels
  std::string title;
};

inline constexpr int k_min_width = 320;
inline constexpr int k_max_width = 16384;
inline constexpr int k_max_height = 16384;

inline constexpr Rgb k_background{255, 255, 255};
inline constexpr Rgb k_lane_band{245, 245, 245};

// The colour of a fiber's boxes: a fixed palette of 12, indexed by id, so
// fibers with neighbouring ids differ and a fiber's colour is the same in
// every picture.
Rgb fiber_colour(std::uint64_t fiber) noexcept;
inline constexpr int k_palette_size = 12;

// The colour and name of each mark kind (the legend's entries).
Rgb mark_colour(MarkKind kind) noexcept;

class Layout {
public:
  Layout(const Trace& trace, const RenderOptions& options);

  int width() const noexcept { return width_; }
  int height() const noexcept { return height_; }
  double from() const noexcept { return from_; }
  double to() const noexcept { return to_; }
  double plot_left() const noexcept { return plot_left_; }
  double plot_right() const noexcept { return plot_right_; }

  double x_of(double ts) const noexcept;                // ts in µs → pixels
  double lane_top(std::size_t lane) const noexcept;     // top of the lane's mark strip
  double mark_y(std::size_t lane) const noexcept;       // centre line of its marks
  double box_top(std::size_t lane) const noexcept;      // top of its boxes
  static constexpr double box_height = 18;
  double axis_y() const noexcept { return axis_y_; }    // the axis line
  double legend_top() const noexcept { return legend_top_; }

private:
  int width_;
  int height_;
  double from_;
  double to_;
  double plot_left_;
  double plot_right_;
  double lanes_top_;
  double axis_y_;
  double legend_top_;
};

void draw_picture(const Trace& trace, const Layout& layout, const RenderOptions& options, Canvas& canvas);

std::string render_svg(const Trace& trace, const RenderOptions& options);
Image render_image(const Trace& trace, const RenderOptions& options);

// `text` with every byte outside printable ASCII as '?' (a UTF-8 sequence
// as one '?'): what the picture draws, in both formats.
std::string printable_ascii(std::string_view text);

}  // namespace weft_trace
