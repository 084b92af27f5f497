// Delivery of exceptions that escaped a task nobody joined (errors.hpp).
#pragma once

#include <exception>

namespace weft::detail {

// Calls the process-wide handler (default: print to stderr). Never throws.
void report_unhandled(std::exception_ptr error) noexcept;

}  // namespace weft::detail
