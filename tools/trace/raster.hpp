// The rasteriser: an RGB image in memory and a Canvas that draws on it
// (rectangles, hatching, lines, convex polygons, circles, and text in the
// built-in 5x7 font). No anti-aliasing: a pixel is inked when its centre is
// inside the shape, so colours stay exact (the tests read them back).
// Everything is clipped to the image. Not thread-safe; one canvas per image.
#pragma once

#include "canvas.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace weft_trace {

struct Image {
  Image(int w, int h, Rgb background);
  int width;
  int height;
  std::vector<std::uint8_t> rgb;  // row-major, 3 bytes a pixel, top row first

  Rgb at(int x, int y) const;
  void set(int x, int y, Rgb c);  // ignores pixels outside the image
};

class RasterCanvas final : public Canvas {
public:
  explicit RasterCanvas(Image& image) : image_(image) {}

  void begin_group(std::string_view, std::string_view) override {}
  void end_group() override {}
  void rect(double x, double y, double w, double h, Rgb fill, std::string_view cls,
            std::string_view tooltip) override;
  void hatch(double x, double y, double w, double h, Rgb fill, Rgb ink, std::string_view cls) override;
  void line(Point a, Point b, Rgb ink, double width, std::string_view cls) override;
  void polygon(const std::vector<Point>& points, Rgb fill, std::string_view cls,
               std::string_view tooltip) override;
  void circle(Point centre, double radius, Rgb fill, std::string_view cls, std::string_view tooltip) override;
  void text(double x, double y, std::string_view text, Rgb ink) override;

private:
  Image& image_;
};

// The pixel span a rectangle from x to x + w covers: [first, last), at
// least one pixel when w > 0. Shared with the tests, which look for boxes.
struct PixelSpan {
  int first;
  int last;
};
PixelSpan pixel_span(double x, double w);

}  // namespace weft_trace
