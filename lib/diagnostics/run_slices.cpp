// RunSlices' clock-reading members, out of line (see run_slices.hpp).
#include "diagnostics/run_slices.hpp"

namespace weft::detail {

void RunSlices::begin() noexcept { start_ = now_ns(); }

void RunSlices::end() noexcept { record(now_ns()); }

}  // namespace weft::detail
