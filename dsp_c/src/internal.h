/*
 * internal.h - helpers shared by the C sources; not part of the public API.
 */
#ifndef BCG_INTERNAL_H
#define BCG_INTERNAL_H

#include <math.h>
#include <stddef.h>

#include "bcg_dsp.h"

/*
 * Largest magnitude accepted for an input sample. Samples are ADC counts or
 * volts; anything larger is a corrupt value, and squaring it (energy) or
 * filtering it would overflow to inf and poison the state for good.
 */
#define BCG_MAX_ABS_SAMPLE 1e15

/* 1 when every sample is finite and within +-BCG_MAX_ABS_SAMPLE. */
static inline int bcg_samples_valid(const double *x, size_t n)
{
    /* No early exit: a branch-free loop (bad input is rare). gcc -O2 does
     * not vectorise it, so it is unrolled by hand: four samples share the
     * loop's count and test (9 -> 6 instructions a sample under callgrind;
     * every sample of detect_beats is checked twice, by the filter and the
     * detector). */
    int ok = 1;
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        ok &= (fabs(x[i]) <= BCG_MAX_ABS_SAMPLE) & (fabs(x[i + 1]) <= BCG_MAX_ABS_SAMPLE) &
              (fabs(x[i + 2]) <= BCG_MAX_ABS_SAMPLE) & (fabs(x[i + 3]) <= BCG_MAX_ABS_SAMPLE);
    for (; i < n; i++)
        ok &= fabs(x[i]) <= BCG_MAX_ABS_SAMPLE; /* false for NaN too */
    return ok;
}

/*
 * bcg_sos_process without its argument checks (sos.c), for the objects that
 * run a filter on samples they have validated already (respiration, motion).
 */
void bcg_sos_run(bcg_sos_filter *st, const double *x, double *y, size_t n);

#endif /* BCG_INTERNAL_H */
