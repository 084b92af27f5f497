// The whole public API of weft.
#pragma once

#include "blocking.hpp"
#include "cancel.hpp"
#include "channel.hpp"
#include "cond_var.hpp"
#include "deadlock.hpp"
#include "errors.hpp"
#include "fiber_local.hpp"
#include "join_handle.hpp"
#include "mutex.hpp"
#include "runtime.hpp"
#include "select.hpp"
#include "semaphore.hpp"
#include "task_group.hpp"
#include "this_fiber.hpp"
#include "time.hpp"
#include "wait_group.hpp"
