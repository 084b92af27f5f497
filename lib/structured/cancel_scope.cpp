// weft::CancelScope, weft::CancelToken and this_fiber's cancellation calls
// (weft/cancel.hpp, weft/this_fiber.hpp), over detail::CancelState.
#include <utility>

#include "diagnostics/tracer.hpp"
#include "structured/cancel_state.hpp"
#include "scheduling/current.hpp"
#include "scheduling/fiber.hpp"
#include "weft/cancel.hpp"
#include "weft/errors.hpp"
#include "weft/this_fiber.hpp"
#include "structured/fiber_cancelled.hpp"

namespace weft {

CancelToken::CancelToken(const CancelToken& other) noexcept : state_(other.state_) {
  if (state_ != nullptr) state_->retain();
}

CancelToken::CancelToken(CancelToken&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}

CancelToken& CancelToken::operator=(CancelToken other) noexcept {
  std::swap(state_, other.state_);
  return *this;
}

CancelToken::~CancelToken() {
  if (state_ != nullptr) state_->release();
}

bool CancelToken::cancelled() const noexcept { return state_ != nullptr && state_->cancelled(); }

void CancelToken::cancel() const noexcept {
  if (state_ != nullptr) state_->cancel();
}

std::stop_token CancelToken::stop_token() const {
  return state_ != nullptr ? state_->stop_token() : std::stop_token{};
}

void CancelScope::Canceller::operator()() const noexcept { state->cancel(); }

namespace {

detail::CancelState* enter_new_scope() {
  if (detail::current_fiber() == nullptr) {
    throw NotInFiber("weft::CancelScope created outside a fiber (from a plain thread)");
  }
  detail::ensure_own_scope();  // so that cancelling this fiber's task reaches the scope
  return detail::CancelState::make(detail::current_scope());
}

}  // namespace

CancelScope::CancelScope() : state_(enter_new_scope()), outer_(detail::switch_scope(state_)) {}

CancelScope::CancelScope(detail::Nanos deadline, std::nullptr_t) : CancelScope() {
  try {
    state_->cancel_at(deadline);
  } catch (...) {
    detail::switch_scope(outer_);
    state_->release();
    throw;
  }
}

CancelScope::CancelScope(std::stop_token stop) : CancelScope() {
  // Runs cancel() at once if a stop was already requested.
  on_stop_.emplace(std::move(stop), Canceller{state_});
}

CancelScope::~CancelScope() {
  on_stop_.reset();  // waits for a callback running on another thread
  detail::switch_scope(outer_);
  state_->release();
}

void CancelScope::cancel() noexcept { state_->cancel(); }

bool CancelScope::cancelled() const noexcept { return state_->cancelled(); }

CancelToken CancelScope::token() const noexcept { return detail::token_of(state_); }

detail::ChannelCore* detail::cancel_done_channel(const CancelToken& token) {
  return token.state_ != nullptr ? token.state_->done_channel() : nullptr;
}

CancelToken detail::token_of(detail::CancelState* state) noexcept {
  if (state == nullptr) return CancelToken();
  state->retain();
  return CancelToken(state);
}

}  // namespace weft

namespace weft::this_fiber {

bool cancelled() noexcept {
  const detail::Fiber* f = detail::current_fiber();
  return f != nullptr && detail::fiber_cancelled(f);
}

void check_cancelled() {
  if (cancelled()) {
    detail::trace_cancel_delivered();
    throw Cancelled{};
  }
}

CancelToken cancel_token() noexcept { return detail::token_of(detail::current_scope()); }

}  // namespace weft::this_fiber
