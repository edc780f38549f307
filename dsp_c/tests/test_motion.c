/* Unit tests for the motion meter (bcg_motion_*). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcg_dsp.h"
#include "check.h"



#define PI 3.14159265358979323846

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static double noise(void)
{
    return check_noise(&rng_state);
}

/*
 * Lying still: DC offset + slow drift + breathing + a cardiac-like pulse
 * train (a short 8 Hz burst every 0.9 s) + noise. With burst_from < burst_to
 * (seconds), gross movement (large broadband noise) is added in between.
 */
static double *bed_signal(double fs, double seconds, double burst_from, double burst_to,
                          size_t *n)
{
    size_t len = (size_t)(fs * seconds), i;
    double *x = malloc(len * sizeof *x);
    for (i = 0; i < len; i++) {
        double t = (double)i / fs;
        double tb = fmod(t, 0.9);
        double beat = tb < 0.125 ? 10.0 * sin(2.0 * PI * 8.0 * tb) : 0.0;
        x[i] = 30000.0 + 50.0 * t + 400.0 * sin(2.0 * PI * 0.005 * t) +
               100.0 * sin(2.0 * PI * 0.25 * t) + beat + 1.0 * noise();
        if (t >= burst_from && t < burst_to) {
            x[i] += 300.0 * noise() + 200.0 * sin(2.0 * PI * 3.0 * t);
        }
    }
    *n = len;
    return x;
}

static void test_init_errors(void)
{
    bcg_motion st;
    CHECK(bcg_motion_init(NULL, 250.0, 1.0) == BCG_ERR_NULL);
    CHECK(bcg_motion_init(&st, 0.0, 1.0) == BCG_ERR_FS);
    CHECK(bcg_motion_init(&st, NAN, 1.0) == BCG_ERR_FS);
    CHECK(bcg_motion_init(&st, BCG_MAX_FS * 2.0, 1.0) == BCG_ERR_FS);
    CHECK(bcg_motion_init(&st, 250.0, 0.0) == BCG_ERR_PARAM);
    CHECK(bcg_motion_init(&st, 250.0, -1.0) == BCG_ERR_PARAM);
    CHECK(bcg_motion_init(&st, 250.0, NAN) == BCG_ERR_PARAM);
    CHECK(bcg_motion_init(&st, 250.0, 0.05) == BCG_ERR_PARAM);
    CHECK(bcg_motion_init(&st, 250.0, 61.0) == BCG_ERR_PARAM);
    CHECK(bcg_motion_init(&st, 250.0, 1.0) == BCG_OK && st.win_len == 250);
    CHECK(bcg_motion_init(&st, 250.0, 0.1) == BCG_OK && st.win_len == 25);
    CHECK(bcg_motion_init(&st, 250.0, 60.0) == BCG_OK && st.win_len == 15000);
    CHECK(bcg_motion_init(&st, BCG_MIN_FS, 0.1) == BCG_OK && st.win_len == 1);
    CHECK(bcg_motion_init(&st, BCG_MAX_FS, 1.0) == BCG_OK);
}

static void test_process_errors(void)
{
    bcg_motion st, before;
    double x[100] = {0}, e[4];
    uint8_t m[4];
    size_t nw = 99;

    bcg_motion_init(&st, 100.0, 0.25); /* 25-sample windows: 100 samples -> 4 */
    CHECK(bcg_motion_process(NULL, x, 100, e, m, 4, &nw) == BCG_ERR_NULL);
    CHECK(bcg_motion_process(&st, NULL, 100, e, m, 4, &nw) == BCG_ERR_NULL);
    CHECK(bcg_motion_process(&st, x, 100, NULL, m, 4, &nw) == BCG_ERR_NULL);
    CHECK(bcg_motion_process(&st, x, 100, e, NULL, 4, &nw) == BCG_ERR_NULL);
    CHECK(bcg_motion_process(&st, x, 100, e, m, 4, NULL) == BCG_ERR_NULL);
    CHECK(bcg_motion_process(&st, x, 100, e, m, 3, &nw) == BCG_ERR_CAPACITY);
    memcpy(&before, &st, sizeof st);
    x[10] = NAN;
    CHECK(bcg_motion_process(&st, x, 100, e, m, 4, &nw) == BCG_ERR_PARAM);
    x[10] = -INFINITY;
    CHECK(bcg_motion_process(&st, x, 100, e, m, 4, &nw) == BCG_ERR_PARAM);
    x[10] = 1e307; /* finite, but its square overflows the energy to inf */
    CHECK(bcg_motion_process(&st, x, 100, e, m, 4, &nw) == BCG_ERR_PARAM);
    x[10] = 1.0000001e15;
    CHECK(bcg_motion_process(&st, x, 100, e, m, 4, &nw) == BCG_ERR_PARAM);
    CHECK(memcmp(&before, &st, sizeof st) == 0);
    x[10] = 0.0;
    CHECK(bcg_motion_process(&st, NULL, 0, NULL, NULL, 0, &nw) == BCG_OK && nw == 0);
    /* NULL outputs with capacity 0 while no window completes */
    CHECK(bcg_motion_process(&st, x, 24, NULL, NULL, 0, &nw) == BCG_OK && nw == 0);
    CHECK(bcg_motion_process(&st, x, 1, NULL, NULL, 0, &nw) == BCG_ERR_CAPACITY);
    CHECK(bcg_motion_process(&st, x, 76, e, m, 4, &nw) == BCG_OK && nw == 4);
    /* the limit itself is accepted, and the energy stays finite */
    x[10] = 1e15;
    CHECK(bcg_motion_process(&st, x, 100, e, m, 4, &nw) == BCG_OK && nw == 4);
    CHECK(isfinite(e[0]) && e[0] > 0.0);
    x[10] = 0.0;
    bcg_motion_init(&st, 100.0, 0.25);
    CHECK(bcg_motion_process(&st, x, 100, e, m, 4, &nw) == BCG_OK && nw == 4);
    CHECK(e[0] == 0.0 && m[0] == 0); /* constant input has no energy */
}

static size_t run(double fs, double window_s, const double *x, size_t n, double **e,
                  uint8_t **m)
{
    bcg_motion st;
    size_t cap, nw = 0;
    bcg_motion_init(&st, fs, window_s);
    cap = n / (size_t)st.win_len + 1;
    *e = malloc(cap * sizeof **e);
    *m = malloc(cap * sizeof **m);
    CHECK(bcg_motion_process(&st, x, n, *e, *m, cap, &nw) == BCG_OK);
    return nw;
}

static void test_quiet_not_flagged(double fs)
{
    size_t n, nw, i, flagged = 0;
    double *x = bed_signal(fs, 120.0, 0.0, 0.0, &n), *e;
    uint8_t *m;
    nw = run(fs, 1.0, x, n, &e, &m);
    CHECK(nw == 120);
    for (i = 0; i < nw; i++) {
        flagged += m[i];
    }
    if (flagged) {
        fprintf(stderr, "quiet fs %.0f: %zu windows flagged\n", fs, flagged);
    }
    CHECK(flagged == 0);
    free(x);
    free(e);
    free(m);
}

static void test_burst_flagged(double fs)
{
    size_t n, nw, i, in_burst = 0, outside = 0;
    double *x = bed_signal(fs, 120.0, 60.0, 70.0, &n), *e;
    uint8_t *m;
    nw = run(fs, 1.0, x, n, &e, &m);
    for (i = 0; i < nw; i++) {
        if (i >= 60 && i < 70) {
            in_burst += m[i];
        } else if (i < 59 || i > 74) { /* the band-pass rings a few windows */
            outside += m[i];
        }
    }
    if (in_burst != 10 || outside) {
        fprintf(stderr, "burst fs %.0f: %zu/10 in burst, %zu outside\n", fs, in_burst, outside);
    }
    CHECK(in_burst == 10);
    CHECK(outside == 0);
    CHECK(e[65] > 10.0 * e[30]);
    free(x);
    free(e);
    free(m);
}

static void test_chunked_equals_one_shot(void)
{
    const double fs = 250.0;
    const size_t sizes[] = {1, 3, 249, 250, 251, 1000, 7777};
    size_t n, nw1, s;
    double *x = bed_signal(fs, 100.0, 40.0, 50.0, &n), *e1;
    uint8_t *m1;

    nw1 = run(fs, 1.0, x, n, &e1, &m1);
    for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        bcg_motion st;
        size_t pos = 0, nw = 0, cap;
        double *e = malloc((nw1 + 1) * sizeof *e);
        uint8_t *m = malloc(nw1 + 1);
        int ok = 1;
        bcg_motion_init(&st, fs, 1.0);
        cap = sizes[s] / (size_t)st.win_len + 1;
        while (pos < n) {
            size_t len = sizes[s] < n - pos ? sizes[s] : n - pos, d;
            ok &= bcg_motion_process(&st, x + pos, len, e + nw, m + nw, cap, &d) == BCG_OK;
            nw += d;
            pos += len;
        }
        CHECK(ok);
        CHECK(nw == nw1);
        CHECK(memcmp(e, e1, nw1 * sizeof *e) == 0);
        CHECK(memcmp(m, m1, nw1) == 0);
        free(e);
        free(m);
    }
    free(x);
    free(e1);
    free(m1);
}

static void test_relearn_and_reset(void)
{
    /* 200 s of continuous movement: flagged at first, relearned after 60 s */
    const double fs = 100.0;
    size_t n, nw, i, late = 0;
    double *x = bed_signal(fs, 300.0, 60.0, 300.0, &n), *e;
    uint8_t *m;
    bcg_motion a, b;

    nw = run(fs, 1.0, x, n, &e, &m);
    CHECK(m[61] && m[100]);
    for (i = 200; i < nw; i++) {
        late += m[i];
    }
    CHECK(late == 0);
    free(e);
    free(m);

    bcg_motion_init(&a, fs, 1.0);
    bcg_motion_init(&b, fs, 1.0);
    e = malloc((n / 100 + 1) * sizeof *e);
    m = malloc(n / 100 + 1);
    bcg_motion_process(&a, x, n, e, m, n / 100 + 1, &nw);
    bcg_motion_reset(&a);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    bcg_motion_reset(NULL);
    free(x);
    free(e);
    free(m);
}

/* bcg_motion_max_windows never overflows, whatever n and the pending phase. */
static void test_bound_for_huge_n(void)
{
    bcg_motion st;
    double x[10] = {0}, e[1];
    uint8_t m[1];
    size_t nw;

    /* NULL or not initialised: SIZE_MAX, so no process call can run (bcg_dsp.h) */
    CHECK(bcg_motion_max_windows(NULL, 100) == SIZE_MAX);
    memset(&st, 0, sizeof st);
    CHECK(bcg_motion_max_windows(&st, 0) == SIZE_MAX);
    CHECK(bcg_motion_process(&st, x, 10, e, m, 1, &nw) == BCG_ERR_CAPACITY && nw == 0);
    bcg_motion_init(&st, 100.0, 0.25); /* 25-sample windows */
    CHECK(bcg_motion_max_windows(&st, SIZE_MAX) == SIZE_MAX / 25);
    CHECK(bcg_motion_process(&st, x, 10, e, m, 1, &nw) == BCG_OK && nw == 0);
    /* phase 10: (10 + SIZE_MAX) / 25 exactly (SIZE_MAX % 25 == 15) */
    CHECK(bcg_motion_max_windows(&st, SIZE_MAX) == SIZE_MAX / 25 + 1);
    CHECK(bcg_motion_max_windows(&st, (size_t)INT64_MAX + 1) ==
          ((size_t)INT64_MAX + 11) / 25);
    bcg_motion_init(&st, BCG_MIN_FS, 0.1); /* 1-sample windows */
    CHECK(bcg_motion_max_windows(&st, SIZE_MAX) == SIZE_MAX);
}

/* A perfectly flat signal has a baseline of ~0: a 1-count step must not be
 * movement (it flagged 6 to 30 windows before the baseline floor). */
static void test_step_on_flat_signal_not_flagged(double fs)
{
    size_t n = (size_t)(60.0 * fs), i, nw, flagged = 0;
    double *x = malloc(n * sizeof *x), *e;
    uint8_t *m;

    for (i = 0; i < n; i++) {
        x[i] = 30000.0 + (i >= n / 2 ? 1.0 : 0.0);
    }
    nw = run(fs, 1.0, x, n, &e, &m);
    CHECK(nw == 60);
    for (i = 0; i < nw; i++) {
        flagged += m[i];
    }
    CHECK(flagged == 0);
    CHECK(e[30] > 0.05 && e[30] < 0.5); /* the step's energy is reported as it is */
    free(x);
    free(e);
    free(m);
}

int main(void)
{
    const double fss[] = {BCG_MIN_FS, 50.0, 250.0, 1000.0};
    size_t i;

    test_init_errors();
    test_process_errors();
    for (i = 0; i < sizeof fss / sizeof fss[0]; i++) {
        test_quiet_not_flagged(fss[i]);
        test_burst_flagged(fss[i]);
    }
    test_chunked_equals_one_shot();
    test_relearn_and_reset();
    test_bound_for_huge_n();
    for (i = 0; i < sizeof fss / sizeof fss[0]; i++) {
        test_step_on_flat_signal_not_flagged(fss[i]);
    }
    return check_report("test_motion");
}
