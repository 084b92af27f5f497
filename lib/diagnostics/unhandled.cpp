#include "diagnostics/unhandled.hpp"

#include <cstdio>
#include <mutex>
#include <utility>

#include "weft/errors.hpp"

namespace weft {
namespace {

std::mutex g_handler_lock;  // guards g_handler
UnhandledExceptionHandler g_handler;

std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

void print_default(const std::exception_ptr& error) {
  std::fprintf(stderr, "weft: unhandled exception in a detached fiber: %s\n", describe(error).c_str());
}

}  // namespace

UnhandledExceptionHandler set_unhandled_exception_handler(UnhandledExceptionHandler handler) {
  std::lock_guard<std::mutex> guard(g_handler_lock);
  return std::exchange(g_handler, std::move(handler));
}

namespace detail {

void report_unhandled(std::exception_ptr error) noexcept {
  UnhandledExceptionHandler handler;
  try {
    {
      std::lock_guard<std::mutex> guard(g_handler_lock);
      handler = g_handler;  // call it outside the lock: it may take long
    }
    if (handler) {
      handler(error);
    } else {
      print_default(error);
    }
  } catch (...) {
    std::fprintf(stderr, "weft: the unhandled-exception handler threw; original exception: %s\n",
                 describe(error).c_str());
  }
}

}  // namespace detail
}  // namespace weft
