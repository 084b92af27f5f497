// The whole public API of weft.
#pragma once

#include "errors.hpp"
#include "join_handle.hpp"
#include "runtime.hpp"
#include "this_fiber.hpp"
