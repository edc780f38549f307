/*
 * check.h - the tiny harness of the C unit tests: plain C99, no framework.
 *
 * CHECK() counts passes and failures (a failure prints its file, line and
 * condition); check_report() prints the closing line "NAME: N passed,
 * N failed" and gives main's exit status, non-zero on any failure.
 */
#ifndef BCG_CHECK_H
#define BCG_CHECK_H

#include <stdint.h>
#include <stdio.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                               \
    do {                                                                          \
        if (cond) {                                                               \
            check_passed++;                                                       \
        } else {                                                                  \
            check_failed++;                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                         \
    } while (0)

/* Deterministic uniform noise in [-1, 1) (xorshift64; *state must not be 0). */
static inline double check_noise(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (double)(*state >> 11) / 4503599627370496.0 - 1.0;
}

static inline int check_report(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
    return check_failed != 0;
}

#endif /* BCG_CHECK_H */
