// A tiny program that uses an installed (or subproject) weft the way an
// application would: scripts/consumers.sh builds it through CMake
// (find_package(weft CONFIG)), through pkg-config, and as a Meson
// subproject, and runs it. It exits 0 only if the answers are right.
#include <weft/weft.hpp>

#include <cstdio>
#include <cstring>

int main() {
  // The version macros agree with each other.
  char expected[32];
  std::snprintf(expected, sizeof expected, "%d.%d.%d", WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR, WEFT_VERSION_PATCH);
  if (std::strcmp(expected, WEFT_VERSION_STRING) != 0) {
    std::fprintf(stderr, "FAIL: WEFT_VERSION_STRING %s, parts say %s\n", WEFT_VERSION_STRING, expected);
    return 1;
  }

  // Fibers, a channel, a join and an exception thrown from libweft and
  // caught here (its type must match across the library boundary).
  long sum = weft::Runtime::run([] {
    weft::Channel<int> ch(16);
    auto producer = weft::go([ch]() mutable {
      for (int i = 1; i <= 1000; ++i) ch.send(i);
      ch.close();
    });
    long total = 0;
    for (int v : ch) total += v;
    producer.join();
    return total;
  });
  bool caught = false;
  try {
    weft::this_fiber::yield();  // not in a fiber
  } catch (const weft::NotInFiber&) {
    caught = true;
  }
  std::printf("weft %s: sum %ld, NotInFiber caught: %s, default workers %zu\n", WEFT_VERSION_STRING, sum,
              caught ? "yes" : "no", weft::default_worker_count());
  return sum == 500500 && caught ? 0 : 1;
}
