/*
 * motion.c - streaming motion meter (see bcg_dsp.h).
 *
 * raw x --[band-pass 2..min(10, 0.45 fs) Hz]--> y --[RMS per window]--> energy
 * energy > BCG_MOTION_RATIO x median(recent quiet energies) --> moving
 */
#include <math.h>
#include <string.h>

#include "bcg_dsp.h"
#include "internal.h"

bcg_status bcg_motion_init(bcg_motion *st, double fs, double window_s)
{
    double high_hz;
    double win;
    bcg_status rc;

    if (st == NULL) {
        return BCG_ERR_NULL;
    }
    if (!isfinite(fs) || fs < BCG_MIN_FS || fs > BCG_MAX_FS) {
        return BCG_ERR_FS;
    }
    if (!isfinite(window_s) || window_s * 1000.0 < BCG_MOTION_MIN_WINDOW_MS ||
        window_s * 1000.0 > BCG_MOTION_MAX_WINDOW_MS) {
        return BCG_ERR_PARAM;
    }
    memset(st, 0, sizeof *st);
    st->fs = fs;
    st->window_s = window_s;
    win = floor(window_s * fs + 0.5);
    st->win_len = win < 1.0 ? 1 : (int64_t)win;
    st->relearn_windows = (int64_t)ceil(BCG_MOTION_RELEARN_S / window_s);
    high_hz = BCG_MOTION_HIGH_MHZ / 1000.0;
    if (high_hz > 0.45 * fs) {
        high_hz = 0.45 * fs;
    }
    rc = bcg_sos_init_bandpass(&st->bp, BCG_MOTION_ORDER, BCG_MOTION_LOW_MHZ / 1000.0, high_hz,
                               fs);
    if (rc != BCG_OK) {
        return rc;
    }
    bcg_motion_reset(st);
    return BCG_OK;
}

void bcg_motion_reset(bcg_motion *st)
{
    if (st == NULL) {
        return;
    }
    bcg_sos_reset(&st->bp);
    st->started = 0;
    st->phase = 0;
    st->sumsq = 0.0;
    st->n_windows = 0;
    memset(st->history, 0, sizeof st->history);
    st->n_history = 0;
    st->next_history = 0;
    st->run = 0;
}

int64_t bcg_motion_window_len(const bcg_motion *st)
{
    return st == NULL ? 0 : st->win_len;
}

size_t bcg_motion_max_windows(const bcg_motion *st, size_t n)
{
    size_t len;

    if (st == NULL || st->win_len < 1) {
        return SIZE_MAX; /* NULL or not initialised: no buffer is big enough (bcg_dsp.h) */
    }
    /* (phase + n) / L without overflow for any n: phase + n % L < 2L */
    len = (size_t)st->win_len;
    return n / len + ((size_t)st->phase + n % len) / len;
}

/* Smallest baseline in input units (ADC counts RMS). */
static const double MIN_BASELINE = BCG_MOTION_MIN_BASELINE_MCOUNTS / 1000.0;

static double baseline(const bcg_motion *st)
{
    double v[BCG_MOTION_HISTORY];
    int n = st->n_history, i, j;

    for (i = 0; i < n; i++) {
        double a = st->history[i];
        for (j = i; j > 0 && v[j - 1] > a; j--) {
            v[j] = v[j - 1];
        }
        v[j] = a;
    }
    return (n % 2) ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Classify a completed window's energy and update the baseline; 1 if moving. */
static int classify(bcg_motion *st, double e)
{
    int moving = 0;

    if (st->n_history >= BCG_MOTION_WARMUP) {
        moving = e > BCG_MOTION_RATIO * fmax(baseline(st), MIN_BASELINE);
    }
    if (moving) {
        st->run++;
        if (st->run >= st->relearn_windows) {
            st->n_history = 0;
            st->next_history = 0;
            st->run = 0;
        }
    } else {
        st->run = 0;
        st->history[st->next_history] = e;
        st->next_history = (st->next_history + 1) % BCG_MOTION_HISTORY;
        if (st->n_history < BCG_MOTION_HISTORY) {
            st->n_history++;
        }
    }
    return moving;
}

bcg_status bcg_motion_process(bcg_motion *st, const double *x, size_t n,
                              double *energy, uint8_t *moving, size_t cap,
                              size_t *n_windows)
{
    size_t need, i;

    if (st == NULL || n_windows == NULL) {
        return BCG_ERR_NULL;
    }
    *n_windows = 0;
    if ((x == NULL && n > 0) || ((energy == NULL || moving == NULL) && cap > 0)) {
        return BCG_ERR_NULL;
    }
    need = bcg_motion_max_windows(st, n);
    if (cap < need) {
        return BCG_ERR_CAPACITY;
    }
    if (!bcg_samples_valid(x, n)) {
        return BCG_ERR_PARAM;
    }

    for (i = 0; i < n; i++) {
        double y;
        if (!st->started) {
            (void)bcg_sos_prime(&st->bp, x[i]); /* x[i] is valid: cannot fail */
            st->started = 1;
        }
        bcg_sos_run(&st->bp, &x[i], &y, 1);
        st->sumsq += y * y;
        st->phase++;
        if (st->phase == st->win_len) {
            double e = sqrt(st->sumsq / (double)st->win_len);
            energy[*n_windows] = e;
            moving[*n_windows] = (uint8_t)classify(st, e);
            (*n_windows)++;
            st->n_windows++;
            st->sumsq = 0.0;
            st->phase = 0;
        }
    }
    return BCG_OK;
}
