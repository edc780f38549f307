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
    /* No early exit: a branch-free loop the compiler vectorises (bad input is rare). */
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        ok &= fabs(x[i]) <= BCG_MAX_ABS_SAMPLE; /* false for NaN too */
    return ok;
}

/*
 * bcg_sos_process without its argument checks (sos.c), for the objects that
 * run a filter on samples they have validated already (respiration, motion).
 */
void bcg_sos_run(bcg_sos_filter *f, const double *x, double *y, size_t n);

#endif /* BCG_INTERNAL_H */
