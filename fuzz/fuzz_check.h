// FUZZ_CHECK(cond, what): a property a fuzz target asserts. Aborts in every build (libFuzzer then saves
// the input as a crash-* file; the replay driver has printed the input's path just before).
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, what)                                                              \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s) at %s:%d\n", what, #cond, __FILE__,  \
                   __LINE__);                                                               \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)
