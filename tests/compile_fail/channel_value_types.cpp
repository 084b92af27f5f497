// Channel<T> refuses, at compile time, a T whose move constructor or
// destructor may throw: a value is moved while the channel's lock is held, and
// a move that threw halfway through a hand-off could lose it or leave the ring
// half-updated. expect_compile_error.py compiles this file once per case and
// checks the diagnostic, and once with no case to show the file is otherwise
// fine.
#include <weft/channel.hpp>

#include <string>

struct ThrowingMove {
  std::string s;
  ThrowingMove() = default;
  ThrowingMove(ThrowingMove&& o) noexcept(false) : s(o.s) {}
};

struct ThrowingDestructor {
  ~ThrowingDestructor() noexcept(false) {}
};

struct Fine {
  std::string s;
};

#if defined(CASE_THROWING_MOVE)
using Value = ThrowingMove;
#elif defined(CASE_THROWING_DESTRUCTOR)
using Value = ThrowingDestructor;
#else
using Value = Fine;
#endif

int main() {
  weft::Channel<Value> ch(1);
  return ch.capacity() == 1 ? 0 : 1;
}
