// Included first by every weft header: the language check and WEFT_API.
#pragma once

// weft's headers use concepts, `requires` and <stop_token>. Below C++20 the
// first of them would fail with an error about syntax; this says what to do.
// (MSVC reports its /std: level in _MSVC_LANG, not __cplusplus.)
#if defined(_MSVC_LANG) && _MSVC_LANG > __cplusplus
#define WEFT_CPLUSPLUS _MSVC_LANG
#else
#define WEFT_CPLUSPLUS __cplusplus
#endif
#if WEFT_CPLUSPLUS < 202002L
#error "weft needs C++20 or later: compile with -std=c++20 (CMake: target_compile_features(app PRIVATE cxx_std_20), which linking weft::weft also does)"
#endif

// The shared library is built with -fvisibility=hidden (meson's
// gnu_symbol_visibility); WEFT_API marks what it exports: the public API,
// and the few weft::detail functions and classes that inline and template
// code in these headers calls (they are part of the ABI too). Everything
// else stays inside libweft.
#if defined(_WIN32) || defined(__CYGWIN__)
#define WEFT_API
#else
#define WEFT_API __attribute__((visibility("default")))
#endif
