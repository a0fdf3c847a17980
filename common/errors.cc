#include "common/errors.h"

#include <cstdio>
#include <cstdlib>

void die(const char* call) {
    std::perror(call);
    std::exit(1);
}

void die_with(const char* context, const char* message) {
    std::fprintf(stderr, "%s: %s\n", context, message);
    std::exit(1);
}
