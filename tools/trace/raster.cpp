// The rasteriser (raster.hpp).
#include "raster.hpp"

#include "font.hpp"

#include <algorithm>
#include <cmath>

namespace weft_trace {

Image::Image(int w, int h, Rgb background)
    : width(std::max(w, 1)), height(std::max(h, 1)),
      rgb(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3) {
  for (std::size_t i = 0; i < rgb.size(); i += 3) {
    rgb[i] = background.r;
    rgb[i + 1] = background.g;
    rgb[i + 2] = background.b;
  }
}

Rgb Image::at(int x, int y) const {
  if (x < 0 || y < 0 || x >= width || y >= height) return {};
  const std::size_t i = (static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)) * 3;
  return {rgb[i], rgb[i + 1], rgb[i + 2]};
}

void Image::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  const std::size_t i = (static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)) * 3;
  rgb[i] = c.r;
  rgb[i + 1] = c.g;
  rgb[i + 2] = c.b;
}

PixelSpan pixel_span(double x, double w) {
  // Clamp before converting: a coordinate far off the image must not
  // overflow an int.
  const double lo = std::clamp(std::round(x), -1e6, 1e6);
  double hi = std::clamp(std::round(x + w), -1e6, 1e6);
  if (w > 0 && hi <= lo) hi = lo + 1;
  return {static_cast<int>(lo), static_cast<int>(hi)};
}

void RasterCanvas::rect(double x, double y, double w, double h, Rgb fill, std::string_view, std::string_view) {
  const PixelSpan xs = pixel_span(x, w);
  const PixelSpan ys = pixel_span(y, h);
  for (int py = std::max(ys.first, 0); py < std::min(ys.last, image_.height); ++py) {
    for (int px = std::max(xs.first, 0); px < std::min(xs.last, image_.width); ++px) image_.set(px, py, fill);
  }
}

void RasterCanvas::hatch(double x, double y, double w, double h, Rgb fill, Rgb ink, std::string_view) {
  const PixelSpan xs = pixel_span(x, w);
  const PixelSpan ys = pixel_span(y, h);
  for (int py = std::max(ys.first, 0); py < std::min(ys.last, image_.height); ++py) {
    for (int px = std::max(xs.first, 0); px < std::min(xs.last, image_.width); ++px) {
      // Lines running up to the right, 6 px apart, as the SVG pattern.
      image_.set(px, py, (px + py) % 6 == 0 ? ink : fill);
    }
  }
}

void RasterCanvas::line(Point a, Point b, Rgb ink, double width, std::string_view) {
  // Stamp a width x width square every half pixel along the line.
  const double len = std::hypot(b.x - a.x, b.y - a.y);
  const int steps = std::clamp(static_cast<int>(std::ceil(len * 2)), 1, 1 << 16);
  const int half = std::max(0, static_cast<int>(std::round(width)) - 1) / 2;
  const int size = std::max(1, static_cast<int>(std::round(width)));
  for (int i = 0; i <= steps; ++i) {
    const double t = static_cast<double>(i) / steps;
    const int cx = static_cast<int>(std::floor(std::clamp(a.x + (b.x - a.x) * t, -1e6, 1e6)));
    const int cy = static_cast<int>(std::floor(std::clamp(a.y + (b.y - a.y) * t, -1e6, 1e6)));
    for (int dy = 0; dy < size; ++dy) {
      for (int dx = 0; dx < size; ++dx) image_.set(cx - half + dx, cy - half + dy, ink);
    }
  }
}

void RasterCanvas::polygon(const std::vector<Point>& points, Rgb fill, std::string_view, std::string_view) {
  if (points.size() < 3) return;
  double min_y = points[0].y, max_y = points[0].y;
  for (const Point& p : points) {
    min_y = std::min(min_y, p.y);
    max_y = std::max(max_y, p.y);
  }
  const int y0 = std::max(0, static_cast<int>(std::floor(std::max(min_y, -1.0))));
  const int y1 = std::min(image_.height, static_cast<int>(std::ceil(std::min(max_y, 1e6))));
  std::vector<double> xs;
  for (int py = y0; py < y1; ++py) {
    const double sy = py + 0.5;  // scan through pixel centres
    xs.clear();
    for (std::size_t i = 0; i < points.size(); ++i) {
      const Point& p = points[i];
      const Point& q = points[(i + 1) % points.size()];
      if ((p.y <= sy && q.y > sy) || (q.y <= sy && p.y > sy)) xs.push_back(p.x + (sy - p.y) * (q.x - p.x) / (q.y - p.y));
    }
    std::sort(xs.begin(), xs.end());
    for (std::size_t i = 0; i + 1 < xs.size(); i += 2) {
      const int from = static_cast<int>(std::ceil(std::clamp(xs[i] - 0.5, -1.0, 1e6)));
      const int to = static_cast<int>(std::floor(std::clamp(xs[i + 1] - 0.5, -1.0, 1e6)));
      for (int px = std::max(from, 0); px <= std::min(to, image_.width - 1); ++px) image_.set(px, py, fill);
    }
  }
}

void RasterCanvas::circle(Point c, double radius, Rgb fill, std::string_view, std::string_view) {
  const int x0 = static_cast<int>(std::floor(std::clamp(c.x - radius, -1.0, 1e6)));
  const int x1 = static_cast<int>(std::ceil(std::clamp(c.x + radius, -1.0, 1e6)));
  const int y0 = static_cast<int>(std::floor(std::clamp(c.y - radius, -1.0, 1e6)));
  const int y1 = static_cast<int>(std::ceil(std::clamp(c.y + radius, -1.0, 1e6)));
  for (int py = y0; py <= y1; ++py) {
    for (int px = x0; px <= x1; ++px) {
      const double dx = px + 0.5 - c.x, dy = py + 0.5 - c.y;
      if (dx * dx + dy * dy <= radius * radius) image_.set(px, py, fill);
    }
  }
}

void RasterCanvas::text(double x, double y, std::string_view text, Rgb ink) {
  int gx = static_cast<int>(std::round(std::clamp(x, -1e6, 1e6)));
  const int gy = static_cast<int>(std::round(std::clamp(y, -1e6, 1e6)));
  for (char c : text) {
    for (int row = 0; row < k_font_height; ++row) {
      const std::uint8_t bits = glyph_row(c, row);
      for (int col = 0; col < k_font_width; ++col) {
        if (bits & (1u << (k_font_width - 1 - col))) image_.set(gx + col, gy + row, ink);
      }
    }
    gx += k_font_advance;
    if (gx > image_.width) break;
  }
}

}  // namespace weft_trace
