// The PNG encoder: an Image (raster.hpp) as an 8-bit RGB, non-interlaced
// PNG. Every row uses filter 0 (none) and the whole image goes through
// zlib's compress2 into one IDAT chunk; each chunk's CRC is zlib's crc32.
// Throws std::runtime_error if zlib fails (out of memory). Any thread.
#pragma once

#include "raster.hpp"

#include <string>

namespace weft_trace {

std::string encode_png(const Image& image);

}  // namespace weft_trace
