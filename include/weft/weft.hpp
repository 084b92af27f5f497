// The whole public API of weft.
#pragma once

#include "channel.hpp"
#include "cond_var.hpp"
#include "deadlock.hpp"
#include "errors.hpp"
#include "join_handle.hpp"
#include "mutex.hpp"
#include "runtime.hpp"
#include "select.hpp"
#include "semaphore.hpp"
#include "this_fiber.hpp"
#include "wait_group.hpp"
