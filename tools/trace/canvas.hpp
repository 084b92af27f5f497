// The drawing surface the picture (picture.hpp) is drawn on. Two
// implementations: SvgCanvas writes SVG elements (svg_canvas.hpp),
// RasterCanvas sets pixels (raster.hpp). The picture is laid out once, in
// pixels, and the same calls go to both, so the SVG and the PNG show the
// same thing by construction.
//
// Coordinates are pixels, origin top left, y down. Text is printable ASCII
// (the picture maps anything else to '?'), in the 5x7 font's metrics
// (font.hpp): (x, y) is the top left of the first glyph cell. Not
// thread-safe; one canvas per picture.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace weft_trace {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  friend bool operator==(Rgb, Rgb) = default;
};

struct Point {
  double x = 0, y = 0;
};

class Canvas {
public:
  virtual ~Canvas() = default;

  // Groups: nest; `cls` is the SVG class ("lane", "axis", "legend"), `id` may be empty.
  virtual void begin_group(std::string_view cls, std::string_view id) = 0;
  virtual void end_group() = 0;

  // A filled rectangle; `cls` names it in the SVG ("slice", "sleep", ...);
  // `tooltip` becomes an SVG <title> (ignored by the rasteriser).
  virtual void rect(double x, double y, double w, double h, Rgb fill, std::string_view cls,
                    std::string_view tooltip) = 0;
  // A rectangle of diagonal hatching in `ink` over `fill`.
  virtual void hatch(double x, double y, double w, double h, Rgb fill, Rgb ink, std::string_view cls) = 0;
  // A line `width` pixels wide.
  virtual void line(Point a, Point b, Rgb ink, double width, std::string_view cls) = 0;
  // A filled convex polygon (markers, arrowheads) and a filled circle;
  // `tooltip` as for rect().
  virtual void polygon(const std::vector<Point>& points, Rgb fill, std::string_view cls,
                       std::string_view tooltip) = 0;
  virtual void circle(Point centre, double radius, Rgb fill, std::string_view cls,
                      std::string_view tooltip) = 0;
  virtual void text(double x, double y, std::string_view text, Rgb ink) = 0;
};

}  // namespace weft_trace
