// Runs the fuzz target over saved inputs, without libFuzzer: every file named
// on the command line, and every regular file under every directory named
// (in sorted order). This is how the corpus runs as an ordinary test, with
// any compiler and under ASan or TSan.
//
//   fuzz_replay tests/fuzz/corpus [more files or directories...]
//
// Exits 0 after printing how many inputs ran; a mismatch aborts inside the
// target (with the operation trace). Exits 2 when given nothing to run.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

bool read_file(const fs::path& path, std::vector<std::uint8_t>& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg(argv[i]);
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      for (const fs::directory_entry& e : fs::recursive_directory_iterator(arg, ec)) {
        if (e.is_regular_file()) inputs.push_back(e.path());
      }
      if (ec) {
        std::fprintf(stderr, "fuzz_replay: cannot list %s: %s\n", argv[i], ec.message().c_str());
        return 2;
      }
    } else if (fs::is_regular_file(arg, ec)) {
      inputs.push_back(arg);
    } else {
      std::fprintf(stderr, "fuzz_replay: %s is neither a file nor a directory\n", argv[i]);
      return 2;
    }
  }
  std::sort(inputs.begin(), inputs.end());
  if (inputs.empty()) {
    std::fprintf(stderr, "usage: fuzz_replay FILE_OR_DIR...  (found no inputs to run)\n");
    return 2;
  }
  std::size_t bytes = 0;
  std::vector<std::uint8_t> data;
  for (const fs::path& p : inputs) {
    if (!read_file(p, data)) {
      std::fprintf(stderr, "fuzz_replay: cannot read %s\n", p.c_str());
      return 2;
    }
    bytes += data.size();
    LLVMFuzzerTestOneInput(data.data(), data.size());
  }
  std::printf("fuzz_replay: %zu inputs ran (%zu bytes), no mismatch\n", inputs.size(), bytes);
  return 0;
}
