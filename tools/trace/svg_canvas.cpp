// The SVG writer (svg_canvas.hpp).
#include "svg_canvas.hpp"

#include "font.hpp"

#include <cmath>
#include <cstdio>

namespace weft_trace {

namespace {

// Coordinates with at most two decimals, no trailing zeros: small files.
std::string num(double v) {
  if (!std::isfinite(v)) v = 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s(buf);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

std::string colour(Rgb c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

std::string class_attr(std::string_view cls) {
  return cls.empty() ? std::string() : " class=\"" + xml_escape(cls) + "\"";
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') out += '?';
        else out += c;
    }
  }
  return out;
}

SvgCanvas::SvgCanvas(int width, int height, Rgb background, Rgb hatch_ink, std::string_view title) {
  out_ += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out_ += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + std::to_string(width) +
          "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + ' ' +
          std::to_string(height) + "\" font-family=\"monospace\" font-size=\"9\">\n";
  out_ += "<title>" + xml_escape(title) + "</title>\n";
  // The hatching: lines 6 px apart running up to the right, as the rasteriser draws them.
  out_ += "<defs><pattern id=\"hatch\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\">"
          "<path d=\"M-1,1 l2,-2 M0,6 l6,-6 M5,7 l2,-2\" stroke=\"" +
          colour(hatch_ink) + "\" stroke-width=\"1\"/></pattern></defs>\n";
  out_ += "<rect width=\"100%\" height=\"100%\" fill=\"" + colour(background) + "\"/>\n";
}

void SvgCanvas::begin_group(std::string_view cls, std::string_view id) {
  out_ += "<g" + class_attr(cls);
  if (!id.empty()) out_ += " id=\"" + xml_escape(id) + "\"";
  out_ += ">\n";
  ++open_groups_;
}

void SvgCanvas::end_group() {
  if (open_groups_ == 0) return;
  out_ += "</g>\n";
  --open_groups_;
}

void SvgCanvas::close_shape(std::string_view element, std::string_view tooltip) {
  if (tooltip.empty()) {
    out_ += "/>\n";
  } else {
    out_ += "><title>" + xml_escape(tooltip) + "</title></";
    out_ += element;
    out_ += ">\n";
  }
}

void SvgCanvas::rect(double x, double y, double w, double h, Rgb fill, std::string_view cls,
                     std::string_view tooltip) {
  out_ += "<rect" + class_attr(cls) + " x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) +
          "\" height=\"" + num(h) + "\" fill=\"" + colour(fill) + "\"";
  close_shape("rect", tooltip);
}

void SvgCanvas::hatch(double x, double y, double w, double h, Rgb fill, Rgb, std::string_view cls) {
  out_ += "<rect" + class_attr(cls) + " x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) +
          "\" height=\"" + num(h) + "\" fill=\"" + colour(fill) + "\"/>\n";
  out_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" + num(h) +
          "\" fill=\"url(#hatch) none\"/>\n";
}

void SvgCanvas::line(Point a, Point b, Rgb ink, double width, std::string_view cls) {
  out_ += "<line" + class_attr(cls) + " x1=\"" + num(a.x) + "\" y1=\"" + num(a.y) + "\" x2=\"" + num(b.x) +
          "\" y2=\"" + num(b.y) + "\" stroke=\"" + colour(ink) + "\" stroke-width=\"" + num(width) + "\"/>\n";
}

void SvgCanvas::polygon(const std::vector<Point>& points, Rgb fill, std::string_view cls, std::string_view tooltip) {
  out_ += "<polygon" + class_attr(cls) + " points=\"";
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (i != 0) out_ += ' ';
    out_ += num(points[i].x) + ',' + num(points[i].y);
  }
  out_ += "\" fill=\"" + colour(fill) + "\"";
  close_shape("polygon", tooltip);
}

void SvgCanvas::circle(Point c, double radius, Rgb fill, std::string_view cls, std::string_view tooltip) {
  out_ += "<circle" + class_attr(cls) + " cx=\"" + num(c.x) + "\" cy=\"" + num(c.y) + "\" r=\"" + num(radius) +
          "\" fill=\"" + colour(fill) + "\"";
  close_shape("circle", tooltip);
}

void SvgCanvas::text(double x, double y, std::string_view text, Rgb ink) {
  // The picture lays text out in the 5x7 font's cells (y = top of the
  // cell); SVG places text by its baseline, 7 px lower. textLength keeps a
  // browser's monospace font to the same width.
  out_ += "<text x=\"" + num(x) + "\" y=\"" + num(y + k_font_height) + "\" fill=\"" + colour(ink) +
          "\" textLength=\"" + std::to_string(text_width(text)) + "\" lengthAdjust=\"spacingAndGlyphs\">" +
          xml_escape(text) + "</text>\n";
}

std::string SvgCanvas::finish() {
  while (open_groups_ > 0) end_group();
  out_ += "</svg>\n";
  return std::move(out_);
}

}  // namespace weft_trace
