// The SVG writer: a Canvas (canvas.hpp) that appends SVG 1.1 elements to a
// string. Plain, static SVG: no scripts, no external references, no CSS
// beyond presentation attributes; one <pattern> for the hatching. Text is
// XML-escaped. Not thread-safe; one canvas per picture.
#pragma once

#include "canvas.hpp"

#include <string>

namespace weft_trace {

class SvgCanvas final : public Canvas {
public:
  // Starts the document: <svg> with this size, the background and <defs>.
  SvgCanvas(int width, int height, Rgb background, Rgb hatch_ink, std::string_view title);

  void begin_group(std::string_view cls, std::string_view id) override;
  void end_group() override;
  void rect(double x, double y, double w, double h, Rgb fill, std::string_view cls,
            std::string_view tooltip) override;
  void hatch(double x, double y, double w, double h, Rgb fill, Rgb ink, std::string_view cls) override;
  void line(Point a, Point b, Rgb ink, double width, std::string_view cls) override;
  void polygon(const std::vector<Point>& points, Rgb fill, std::string_view cls,
               std::string_view tooltip) override;
  void circle(Point centre, double radius, Rgb fill, std::string_view cls, std::string_view tooltip) override;
  void text(double x, double y, std::string_view text, Rgb ink) override;

  // Closes open groups and the document; returns it. Call once.
  std::string finish();

private:
  void close_shape(std::string_view element, std::string_view tooltip);

  std::string out_;
  int open_groups_ = 0;
};

// Escapes & < > " ' for XML text and attributes; bytes below 0x20 other than
// tab and newline, which XML 1.0 forbids, become '?'.
std::string xml_escape(std::string_view text);

}  // namespace weft_trace
