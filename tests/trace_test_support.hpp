// Helpers for the weft-trace tests (test_trace_render.cpp), usable by any
// test that writes or draws traces: run a program and collect its output
// (death_test.hpp's run_process, plus a check for sanitizer reports), a
// scratch directory, file I/O, an XML well-formedness check for the SVG, and
// a PNG reader that checks every chunk's CRC and inflates the pixels with zlib.
#pragma once

#include "canvas.hpp"
#include "death_test.hpp"

#include <doctest/doctest.h>
#include <zlib.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>


namespace weft_trace_test {

using weft_trace::Rgb;
namespace fs = std::filesystem;

struct Outcome {
  int exit_code = -1;  // -1: did not exit normally (a crash)
  std::string output;  // stdout and stderr together
};

// Runs `tool` with `args` and collects its exit status and output.
inline Outcome run_tool(const std::string& tool, const std::vector<std::string>& args) {
  const weft_test::Outcome ran = weft_test::run_process(tool, args);
  Outcome out;
  out.output = ran.output;
  if (WIFEXITED(ran.status)) out.exit_code = WEXITSTATUS(ran.status);
  // Under ASan/UBSan/TSan the tool's own reports fail the test, whatever
  // its exit status (ASan's default status, 1, is also "bad input").
  CHECK(out.output.find("runtime error:") == std::string::npos);
  CHECK(out.output.find("Sanitizer") == std::string::npos);
  return out;
}

// A fresh directory for one test's files, removed at the end.
struct TempDir {
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "weft-trace-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  fs::path path;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out);
}

inline std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// XML well-formedness, as far as this SVG needs: tags balance and nest,
// every '&' starts one of the five predefined entities, no '<' in text.
// Returns an empty string when fine, else what is wrong.
inline std::string xml_problem(const std::string& doc) {
  std::vector<std::string> open;
  std::size_t i = 0;
  while (i < doc.size()) {
    if (doc[i] == '&') {
      bool ok = false;
      for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"}) ok = ok || doc.compare(i, std::strlen(e), e) == 0;
      if (!ok) return "a bare '&' at " + std::to_string(i);
      ++i;
      continue;
    }
    if (doc[i] != '<') {
      if (doc[i] == '>') return "a bare '>' at " + std::to_string(i);
      ++i;
      continue;
    }
    const std::size_t end = doc.find('>', i);
    if (end == std::string::npos) return "an unclosed tag at " + std::to_string(i);
    const std::string tag = doc.substr(i + 1, end - i - 1);
    if (tag.find('<') != std::string::npos) return "a '<' inside a tag at " + std::to_string(i);
    if (tag.empty()) return "an empty tag at " + std::to_string(i);
    if (tag[0] == '?' || tag[0] == '!') {
      // declaration
    } else if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) return "</" + tag.substr(1) + "> does not close <" + (open.empty() ? "" : open.back()) + ">";
      open.pop_back();
    } else if (tag.back() != '/') {
      open.push_back(tag.substr(0, tag.find(' ')));
    }
    i = end + 1;
  }
  if (!open.empty()) return "<" + open.back() + "> never closed";
  return {};
}

inline std::uint32_t be32(const std::string& s, std::size_t at) {
  return (std::uint32_t(std::uint8_t(s[at])) << 24) | (std::uint32_t(std::uint8_t(s[at + 1])) << 16) |
         (std::uint32_t(std::uint8_t(s[at + 2])) << 8) | std::uint32_t(std::uint8_t(s[at + 3]));
}

// A PNG as weft-trace writes it, checked and decoded: signature, each
// chunk's CRC, IHDR (8-bit RGB, no interlace), the IDAT inflated with zlib,
// every row's filter byte 0.
struct DecodedPng {
  int width = 0;
  int height = 0;
  std::vector<std::string> chunk_types;
  std::string pixels;  // RGB, rows without their filter bytes
  Rgb at(int x, int y) const {
    const std::size_t i = (std::size_t(y) * std::size_t(width) + std::size_t(x)) * 3;
    return {std::uint8_t(pixels[i]), std::uint8_t(pixels[i + 1]), std::uint8_t(pixels[i + 2])};
  }
};

inline DecodedPng decode_png(const std::string& file) {
  DecodedPng png;
  REQUIRE(file.size() > 8);
  REQUIRE(file.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) == 0);
  std::string idat;
  std::size_t at = 8;
  while (at < file.size()) {
    REQUIRE(file.size() - at >= 12);
    const std::uint32_t len = be32(file, at);
    REQUIRE(file.size() - at - 12 >= len);
    const std::string type = file.substr(at + 4, 4);
    const std::uint32_t crc = be32(file, at + 8 + len);
    const uLong want = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(file.data() + at + 4), len + 4);
    INFO("chunk " << type);
    CHECK(crc == static_cast<std::uint32_t>(want));
    png.chunk_types.push_back(type);
    if (type == "IHDR") {
      REQUIRE(len == 13);
      png.width = static_cast<int>(be32(file, at + 8));
      png.height = static_cast<int>(be32(file, at + 12));
      CHECK(file[at + 16] == 8);  // bit depth
      CHECK(file[at + 17] == 2);  // RGB
      CHECK(file[at + 20] == 0);  // no interlace
    } else if (type == "IDAT") {
      idat += file.substr(at + 8, len);
    }
    at += 12 + len;
  }
  REQUIRE(png.chunk_types.size() >= 3);
  CHECK(png.chunk_types.front() == "IHDR");
  CHECK(png.chunk_types.back() == "IEND");
  const std::size_t row = std::size_t(png.width) * 3 + 1;
  std::string raw(row * std::size_t(png.height), '\0');
  uLongf raw_size = raw.size();
  REQUIRE(uncompress(reinterpret_cast<Bytef*>(raw.data()), &raw_size, reinterpret_cast<const Bytef*>(idat.data()),
                     idat.size()) == Z_OK);
  REQUIRE(raw_size == raw.size());
  for (int y = 0; y < png.height; ++y) {
    CHECK(raw[std::size_t(y) * row] == 0);  // filter: none
    png.pixels += raw.substr(std::size_t(y) * row + 1, row - 1);
  }
  return png;
}

}  // namespace weft_trace_test
