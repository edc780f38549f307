/*
 * respiration.c - streaming respiration extractor (see bcg_dsp.h).
 *
 * raw x --[2nd-order CIC, decimate by M]--> d --[band-pass 0.1..0.7 Hz]--> y
 *       --[Schmitt trigger on y, zero-crossing time]--> breaths, rate
 *
 * The CIC output for block k (input samples kM .. kM+M-1) is the triangular
 * FIR  y_k = (sum_i (M - i) x[kM + i] + sum_i i x[(k-1)M + i]) / M^2,
 * i = 0..M-1, so two running sums per block are all the state it needs.
 */
#include <math.h>
#include <string.h>

#include "bcg_dsp.h"
#include "internal.h"

/* Hysteresis threshold as a fraction of the running mean |y|. */
static const double HYST_FRACTION = 0.3;
/* Time constant of the running means of |y| and |input|, seconds. */
static const double AMP_TAU_S = 20.0;
/* Smallest h as a fraction of the running mean |input| (rounding noise). */
static const double FLOOR_FRACTION = 1e-9;
/* Smallest h in input units (ADC counts): half an ADC step. */
static const double MIN_H = BCG_RESP_MIN_SWING_MCOUNTS / 1000.0;

bcg_status bcg_resp_init(bcg_resp *st, double fs)
{
    bcg_status rc;

    if (st == NULL) {
        return BCG_ERR_NULL;
    }
    if (!isfinite(fs) || fs < BCG_MIN_FS || fs > BCG_MAX_FS) {
        return BCG_ERR_FS;
    }
    memset(st, 0, sizeof *st);
    st->fs = fs;
    st->decim = (int)floor(fs / BCG_RESP_TARGET_FS);
    if (st->decim < 1) {
        st->decim = 1;
    }
    st->fs_out = fs / st->decim;
    rc = bcg_sos_init_bandpass(&st->bp, BCG_RESP_ORDER, BCG_RESP_LOW_MHZ / 1000.0,
                               BCG_RESP_HIGH_MHZ / 1000.0, st->fs_out);
    if (rc != BCG_OK) {
        return rc;
    }
    bcg_resp_reset(st);
    return BCG_OK;
}

void bcg_resp_reset(bcg_resp *st)
{
    if (st == NULL) {
        return;
    }
    bcg_sos_reset(&st->bp);
    st->started = 0;
    st->phase = 0;
    st->acc_cur = 0.0;
    st->acc_next = 0.0;
    st->acc_prev = 0.0;
    st->n_out = 0;
    st->y_prev = 0.0;
    st->amp = 0.0;
    st->level_in = 0.0;
    st->level = 0;
    st->cross_t = -1.0;
    st->last_t = -1.0;
    memset(st->intervals, 0, sizeof st->intervals);
    st->n_intervals = 0;
    st->next_interval = 0;
}

double bcg_resp_output_rate(const bcg_resp *st)
{
    return st == NULL ? 0.0 : st->fs_out;
}

size_t bcg_resp_max_out(const bcg_resp *st, size_t n)
{
    size_t m;

    if (st == NULL || st->decim < 1) {
        return SIZE_MAX; /* NULL or not initialised: no buffer is big enough (bcg_dsp.h) */
    }
    /* (phase + n) / M without overflow for any n: phase + n % M < 2M */
    m = (size_t)st->decim;
    return n / m + ((size_t)st->phase + n % m) / m;
}

/* Record a confirmed breath at output-sample time t; 1 if reported. */
static int accept_breath(bcg_resp *st, double t)
{
    if (st->last_t >= 0.0) {
        double interval_s = (t - st->last_t) / st->fs_out;
        if (interval_s * 1000.0 < BCG_RESP_REFRACTORY_MS) {
            return 0;
        }
        if (interval_s * 1000.0 <= BCG_RESP_MAX_INTERVAL_MS) {
            st->intervals[st->next_interval] = interval_s;
            st->next_interval = (st->next_interval + 1) % BCG_RESP_HISTORY;
            if (st->n_intervals < BCG_RESP_HISTORY) {
                st->n_intervals++;
            }
        } else {
            st->n_intervals = 0;
            st->next_interval = 0;
        }
    }
    st->last_t = t;
    return 1;
}

/*
 * Feed one decimated input sample d and its band-passed output y; returns 1
 * and sets *breath_t if a breath is confirmed.
 */
static int detect(bcg_resp *st, double d, double y, double *breath_t)
{
    double k = (double)st->n_out;
    double alpha = 1.0 / (k + 1.0);
    double alpha_min = 1.0 / (AMP_TAU_S * st->fs_out);
    double h;
    int found = 0;

    if (alpha < alpha_min) {
        alpha = alpha_min;
    }
    st->amp += alpha * (fabs(y) - st->amp);
    st->level_in += alpha * (fabs(d) - st->level_in);
    h = fmax(fmax(HYST_FRACTION * st->amp, FLOOR_FRACTION * st->level_in), MIN_H);

    if (st->n_out > 0 && st->y_prev < 0.0 && y >= 0.0) {
        st->cross_t = (k - 1.0) + st->y_prev / (st->y_prev - y);
    }
    if (y < -h) {
        st->level = -1;
    } else if (y > h) {
        if (st->level == -1 && st->cross_t >= 0.0) {
            if (accept_breath(st, st->cross_t)) {
                *breath_t = st->cross_t;
                found = 1;
            }
        }
        st->level = 1;
    }
    st->y_prev = y;
    return found;
}

bcg_status bcg_resp_process(bcg_resp *st, const double *x, size_t n,
                            double *resp, size_t resp_cap, size_t *n_resp,
                            int64_t *breaths, size_t breath_cap, size_t *n_breaths)
{
    size_t need, i;
    size_t m;
    double norm;

    if (st == NULL || n_resp == NULL || n_breaths == NULL) {
        return BCG_ERR_NULL;
    }
    *n_resp = 0;
    *n_breaths = 0;
    if ((x == NULL && n > 0) || (resp == NULL && resp_cap > 0) ||
        (breaths == NULL && breath_cap > 0)) {
        return BCG_ERR_NULL;
    }
    m = (size_t)st->decim;
    need = bcg_resp_max_out(st, n);
    if (resp_cap < need || breath_cap < need) {
        return BCG_ERR_CAPACITY;
    }
    if (!bcg_samples_valid(x, n)) {
        return BCG_ERR_PARAM;
    }

    norm = 1.0 / ((double)m * (double)m);
    for (i = 0; i < n; i++) {
        double v = x[i];
        double p = (double)st->phase;
        if (!st->started) {
            /* the block before the first one is taken as constant x[0] */
            st->acc_prev = v * (double)m * ((double)m - 1.0) / 2.0;
            st->started = 1;
        }
        st->acc_cur += ((double)m - p) * v;
        st->acc_next += p * v;
        st->phase++;
        if ((size_t)st->phase == m) {
            double d = (st->acc_cur + st->acc_prev) * norm;
            double y, t;
            st->acc_prev = st->acc_next;
            st->acc_cur = 0.0;
            st->acc_next = 0.0;
            st->phase = 0;
            if (st->n_out == 0) {
                (void)bcg_sos_prime(&st->bp, d); /* d is valid: cannot fail */
            }
            bcg_sos_run(&st->bp, &d, &y, 1);
            resp[(*n_resp)++] = y;
            if (detect(st, d, y, &t)) {
                breaths[(*n_breaths)++] = (int64_t)llround(t * (double)m);
            }
            st->n_out++;
        }
    }
    return BCG_OK;
}

double bcg_resp_rate(const bcg_resp *st)
{
    double v[BCG_RESP_HISTORY];
    double now, median;
    int n, i, j;

    if (st == NULL || st->n_intervals < BCG_RESP_MIN_INTERVALS || st->last_t < 0.0) {
        return -1.0;
    }
    now = (double)st->n_out;
    if ((now - st->last_t) / st->fs_out * 1000.0 > 2.0 * BCG_RESP_MAX_INTERVAL_MS) {
        return -1.0;
    }
    n = st->n_intervals;
    for (i = 0; i < n; i++) {
        double a = st->intervals[i];
        for (j = i; j > 0 && v[j - 1] > a; j--) {
            v[j] = v[j - 1];
        }
        v[j] = a;
    }
    median = (n % 2) ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    return 60.0 / median;
}
