// The named spawn overloads (spawn("name", fn), go("name", fn),
// TaskGroup::spawn("name", fn)) keep the Spawnable concept's readable error
// for what cannot be spawned, and the unnamed calls stay unambiguous.
// expect_compile_error.py compiles this file once per case and checks the
// diagnostic, and once with no case to show the file is otherwise fine.
#include <weft/runtime.hpp>
#include <weft/task_group.hpp>

#include <string>

int answer() { return 42; }

void use(weft::Runtime& rt) {
  // Fine: every form, named and not.
  rt.spawn(answer).detach();
  rt.spawn("answer", answer).detach();
  rt.spawn(std::string("answer"), [] { return 1; }).detach();
  weft::TaskGroup<> g(rt, "group");
  g.spawn([] {});
  g.spawn("child", [] {});
#if defined(CASE_NAME_ONLY)
  rt.spawn("just a name").detach();
#elif defined(CASE_NAME_NOT_CALLABLE)
  rt.spawn("fetch", 42).detach();
#elif defined(CASE_GROUP_NAME_NOT_CALLABLE)
  g.spawn("child", 42);
#endif
}
