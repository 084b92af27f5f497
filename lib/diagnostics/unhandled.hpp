// Delivery of exceptions that escaped a task nobody joined (errors.hpp).
#pragma once

#include <exception>

#include "weft/detail/config.hpp"

namespace weft::detail {

// Calls the process-wide handler (default: print to stderr). Never throws.
// Exported: TaskGroup's destructor calls it (weft/detail/group_core.hpp).
WEFT_API void report_unhandled(std::exception_ptr error) noexcept;

}  // namespace weft::detail
