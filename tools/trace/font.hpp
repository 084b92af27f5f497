// weft-trace's bitmap font: 5x7 glyphs for ASCII 32..126, drawn by the
// rasteriser (raster.hpp); anything else is drawn as '?'. Each glyph sits
// in a 6x8 cell (one column and one row of space). Constant data, any thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace weft_trace {

inline constexpr int k_font_width = 5;
inline constexpr int k_font_height = 7;
inline constexpr int k_font_advance = 6;  // pixels from one glyph to the next

// Row `row` (0 = top) of the glyph for `c`: bit 4 is the leftmost column.
std::uint8_t glyph_row(char c, int row) noexcept;

// Width in pixels of `text` drawn in this font, one glyph per byte.
inline int text_width(std::string_view text) noexcept {
  return text.empty() ? 0 : static_cast<int>(text.size()) * k_font_advance - 1;
}

}  // namespace weft_trace
