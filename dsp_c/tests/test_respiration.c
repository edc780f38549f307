/* Unit tests for the respiration extractor (bcg_resp_*). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcg_dsp.h"
#include "check.h"



#define PI 3.14159265358979323846

static uint64_t rng_state = 88172645463325252ULL;

static double noise(void)
{
    return check_noise(&rng_state);
}

/* Breathing at bpm on a DC offset, with a 1.2 Hz cardiac-like term and noise. */
static double *breathing(double fs, double seconds, double bpm, size_t *n)
{
    size_t len = (size_t)(fs * seconds), i;
    double *x = malloc(len * sizeof *x);
    for (i = 0; i < len; i++) {
        double t = (double)i / fs;
        x[i] = 2000.0 + 100.0 * sin(2.0 * PI * bpm / 60.0 * t) +
               20.0 * sin(2.0 * PI * 1.2 * t) + 5.0 * noise();
    }
    *n = len;
    return x;
}

static void test_init_errors(void)
{
    bcg_resp st;
    CHECK(bcg_resp_init(NULL, 250.0) == BCG_ERR_NULL);
    CHECK(bcg_resp_init(&st, 0.0) == BCG_ERR_FS);
    CHECK(bcg_resp_init(&st, -250.0) == BCG_ERR_FS);
    CHECK(bcg_resp_init(&st, BCG_MIN_FS - 0.5) == BCG_ERR_FS);
    CHECK(bcg_resp_init(&st, BCG_MAX_FS + 1.0) == BCG_ERR_FS);
    CHECK(bcg_resp_init(&st, NAN) == BCG_ERR_FS);
    CHECK(bcg_resp_init(&st, INFINITY) == BCG_ERR_FS);
    CHECK(bcg_resp_init(&st, BCG_MIN_FS) == BCG_OK);
    CHECK(st.decim == 1);
    CHECK(bcg_resp_init(&st, BCG_MAX_FS) == BCG_OK);
    CHECK(st.decim == BCG_MAX_FS / BCG_RESP_TARGET_FS);
    CHECK(bcg_resp_init(&st, 250.0) == BCG_OK);
    CHECK(st.decim == 25);
    CHECK(fabs(st.fs_out - 10.0) < 1e-12);
    CHECK(bcg_resp_init(&st, 256.0) == BCG_OK);
    CHECK(st.decim == 25 && st.fs_out >= 10.0 && st.fs_out < 20.0);
    CHECK(bcg_resp_rate(&st) < 0.0);
    CHECK(bcg_resp_rate(NULL) < 0.0);
}

static void test_process_errors(void)
{
    bcg_resp st, before;
    double x[100] = {0};
    double y[8];
    int64_t b[8];
    size_t nr = 99, nb = 99;

    bcg_resp_init(&st, 250.0); /* decim 25: 100 samples -> 4 outputs */
    CHECK(bcg_resp_process(NULL, x, 100, y, 8, &nr, b, 8, &nb) == BCG_ERR_NULL);
    CHECK(bcg_resp_process(&st, NULL, 100, y, 8, &nr, b, 8, &nb) == BCG_ERR_NULL);
    CHECK(bcg_resp_process(&st, x, 100, NULL, 8, &nr, b, 8, &nb) == BCG_ERR_NULL);
    CHECK(bcg_resp_process(&st, x, 100, y, 8, NULL, b, 8, &nb) == BCG_ERR_NULL);
    CHECK(bcg_resp_process(&st, x, 100, y, 8, &nr, NULL, 8, &nb) == BCG_ERR_NULL);
    CHECK(bcg_resp_process(&st, x, 100, y, 8, &nr, b, 8, NULL) == BCG_ERR_NULL);
    CHECK(bcg_resp_process(&st, x, 100, y, 3, &nr, b, 8, &nb) == BCG_ERR_CAPACITY);
    CHECK(bcg_resp_process(&st, x, 100, y, 8, &nr, b, 3, &nb) == BCG_ERR_CAPACITY);
    x[50] = NAN;
    memcpy(&before, &st, sizeof st);
    CHECK(bcg_resp_process(&st, x, 100, y, 8, &nr, b, 8, &nb) == BCG_ERR_PARAM);
    x[50] = INFINITY;
    CHECK(bcg_resp_process(&st, x, 100, y, 8, &nr, b, 8, &nb) == BCG_ERR_PARAM);
    x[50] = 1e307; /* finite, but would overflow the state to inf */
    CHECK(bcg_resp_process(&st, x, 100, y, 8, &nr, b, 8, &nb) == BCG_ERR_PARAM);
    x[50] = -1.0000001e15;
    CHECK(bcg_resp_process(&st, x, 100, y, 8, &nr, b, 8, &nb) == BCG_ERR_PARAM);
    CHECK(memcmp(&before, &st, sizeof st) == 0); /* untouched on error */
    x[50] = 0.0;
    /* empty input: fine with NULL buffers and zero capacity */
    CHECK(bcg_resp_process(&st, NULL, 0, NULL, 0, &nr, NULL, 0, &nb) == BCG_OK);
    CHECK(nr == 0 && nb == 0);
    /* NULL buffers with capacity 0 while no output sample completes */
    CHECK(bcg_resp_process(&st, x, 24, NULL, 0, &nr, NULL, 0, &nb) == BCG_OK && nr == 0);
    CHECK(bcg_resp_process(&st, x, 1, NULL, 0, &nr, NULL, 0, &nb) == BCG_ERR_CAPACITY);
    CHECK(bcg_resp_process(&st, x, 1, y, 1, &nr, b, 1, &nb) == BCG_OK && nr == 1);
    /* the limit itself is accepted */
    x[50] = 1e15;
    x[51] = -1e15;
    CHECK(bcg_resp_process(&st, x, 100, y, 8, &nr, b, 8, &nb) == BCG_OK && nr == 4);
    CHECK(isfinite(y[0]) && isfinite(y[3]));
    x[50] = 0.0;
    x[51] = 0.0;
    /* exact capacity (documented bound n / decim + 1 = 5; exact need 4) */
    CHECK(bcg_resp_process(&st, x, 100, y, 4, &nr, b, 4, &nb) == BCG_OK);
    CHECK(nr == 4 && nb == 0);
    /* 24 pending samples + 1 -> one output */
    CHECK(bcg_resp_process(&st, x, 24, y, 0, &nr, b, 0, &nb) == BCG_OK && nr == 0);
    CHECK(bcg_resp_process(&st, x, 1, y, 0, &nr, b, 0, &nb) == BCG_ERR_CAPACITY);
    CHECK(bcg_resp_process(&st, x, 1, y, 1, &nr, b, 1, &nb) == BCG_OK && nr == 1);
}

/* Run a whole signal in one call; returns breath count, fills rate. */
static size_t run_one_shot(double fs, const double *x, size_t n, double *rate,
                           int64_t **breaths_out, double **resp_out, size_t *n_resp_out)
{
    bcg_resp st;
    size_t cap, nr = 0, nb = 0;
    double *y;
    int64_t *b;

    bcg_resp_init(&st, fs);
    cap = n / (size_t)st.decim + 1;
    y = malloc(cap * sizeof *y);
    b = malloc(cap * sizeof *b);
    CHECK(bcg_resp_process(&st, x, n, y, cap, &nr, b, cap, &nb) == BCG_OK);
    *rate = bcg_resp_rate(&st);
    *breaths_out = b;
    *resp_out = y;
    *n_resp_out = nr;
    return nb;
}

static void test_rate(double fs, double bpm)
{
    size_t n, nb, nr, i;
    double rate;
    int64_t *b;
    double *y;
    double seconds = 120.0;
    double *x = breathing(fs, seconds, bpm, &n);
    size_t expected = (size_t)(seconds * bpm / 60.0);
    int monotonic = 1;

    nb = run_one_shot(fs, x, n, &rate, &b, &y, &nr);
    if (fabs(rate - bpm) >= 0.5 || nb + 2 < expected || nb > expected + 1) {
        fprintf(stderr, "fs %.0f bpm %.0f: %zu breaths (expect ~%zu), rate %.3f\n", fs, bpm, nb,
                expected, rate);
    }
    CHECK(fabs(rate - bpm) < 0.5);
    CHECK(nb + 2 >= expected && nb <= expected + 1);
    for (i = 1; i < nb; i++) {
        monotonic &= b[i] > b[i - 1];
    }
    CHECK(monotonic);
    CHECK(nb == 0 || (b[0] >= 0 && b[nb - 1] < (int64_t)n));
    free(b);
    free(y);
    free(x);
}

static void test_chunked_equals_one_shot(void)
{
    const double fs = 250.0;
    const size_t sizes[] = {1, 2, 7, 24, 25, 26, 100, 997, 4096};
    size_t n, nb1, nr1, s;
    double rate1;
    int64_t *b1;
    double *y1;
    double *x = breathing(fs, 90.0, 15.0, &n);

    nb1 = run_one_shot(fs, x, n, &rate1, &b1, &y1, &nr1);
    for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        bcg_resp st;
        size_t pos = 0, nr = 0, nb = 0, cap;
        double *y = malloc((nr1 + 1) * sizeof *y);
        int64_t *b = malloc((nr1 + 1) * sizeof *b);
        int ok = 1;
        bcg_resp_init(&st, fs);
        cap = sizes[s] / (size_t)st.decim + 1;
        while (pos < n) {
            size_t len = sizes[s] < n - pos ? sizes[s] : n - pos, dr, db;
            ok &= bcg_resp_process(&st, x + pos, len, y + nr, cap, &dr, b + nb, cap, &db) ==
                  BCG_OK;
            nr += dr;
            nb += db;
            pos += len;
        }
        CHECK(ok);
        CHECK(nr == nr1 && nb == nb1);
        CHECK(memcmp(y, y1, nr1 * sizeof *y) == 0);
        CHECK(memcmp(b, b1, nb1 * sizeof *b) == 0);
        CHECK(bcg_resp_rate(&st) == rate1);
        free(y);
        free(b);
    }
    free(b1);
    free(y1);
    free(x);
}

static void test_reset(void)
{
    size_t n, nr = 0, nb = 0, cap;
    double *x = breathing(250.0, 60.0, 15.0, &n);
    bcg_resp a, b;
    double *y;
    int64_t *br;

    bcg_resp_init(&a, 250.0);
    bcg_resp_init(&b, 250.0);
    cap = n / (size_t)a.decim + 1;
    y = malloc(cap * sizeof *y);
    br = malloc(cap * sizeof *br);
    bcg_resp_process(&a, x, n, y, cap, &nr, br, cap, &nb);
    CHECK(nb > 0);
    bcg_resp_reset(&a);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    bcg_resp_reset(NULL); /* no crash */
    free(y);
    free(br);
    free(x);
}

static void test_flat_and_dc(void)
{
    /* constant input: no output transient, no breaths, no rate */
    size_t n = 250 * 60, i, nr = 0, nb = 0, cap;
    double *x = malloc(n * sizeof *x);
    double *y, peak = 0.0;
    int64_t *b;
    bcg_resp st;

    for (i = 0; i < n; i++) {
        x[i] = 123456.0;
    }
    bcg_resp_init(&st, 250.0);
    cap = n / (size_t)st.decim + 1;
    y = malloc(cap * sizeof *y);
    b = malloc(cap * sizeof *b);
    CHECK(bcg_resp_process(&st, x, n, y, cap, &nr, b, cap, &nb) == BCG_OK);
    for (i = 0; i < nr; i++) {
        peak = fmax(peak, fabs(y[i]));
    }
    CHECK(peak < 1e-6);
    CHECK(nb == 0);
    CHECK(bcg_resp_rate(&st) < 0.0);
    free(x);
    free(y);
    free(b);
}

/* bcg_resp_max_out never overflows, whatever n and the pending phase. */
static void test_bound_for_huge_n(void)
{
    bcg_resp st;
    double x[24] = {0}, y[1];
    int64_t b[1];
    size_t nr, nb;

    /* NULL or not initialised: SIZE_MAX, so no process call can run (bcg_dsp.h) */
    CHECK(bcg_resp_max_out(NULL, 100) == SIZE_MAX);
    memset(&st, 0, sizeof st);
    CHECK(bcg_resp_max_out(&st, 0) == SIZE_MAX);
    CHECK(bcg_resp_process(&st, x, 24, y, 1, &nr, b, 1, &nb) == BCG_ERR_CAPACITY && nr == 0);
    bcg_resp_init(&st, 250.0); /* decim 25 */
    CHECK(bcg_resp_max_out(&st, SIZE_MAX) == SIZE_MAX / 25);
    CHECK(bcg_resp_process(&st, x, 24, y, 1, &nr, b, 1, &nb) == BCG_OK && nr == 0);
    CHECK(bcg_resp_max_out(&st, 1) == 1);
    /* phase 24: (24 + SIZE_MAX) / 25 computed exactly, not wrapped to 0 */
    CHECK(bcg_resp_max_out(&st, SIZE_MAX) == SIZE_MAX / 25 + 1);
    CHECK(bcg_resp_max_out(&st, SIZE_MAX - 1) == SIZE_MAX / 25 + 1);
    bcg_resp_init(&st, BCG_MIN_FS); /* decim 1 */
    CHECK(bcg_resp_max_out(&st, SIZE_MAX) == SIZE_MAX);
}

/* Noise of +-1 ADC count on a flat signal: no breath, no rate (it used to
 * report a rate near 18/min), while breathing of 0.6 count is still found. */
static void test_adc_step_noise_gives_no_rate(void)
{
    const double fs = 250.0;
    size_t n = (size_t)(fs * 300.0), i, nr = 0, nb = 0, cap;
    double *x = malloc(n * sizeof *x), *y;
    int64_t *b;
    uint64_t state = 12345u;
    bcg_resp st;

    for (i = 0; i < n; i++) {
        x[i] = 30000.0 + floor(1.5 * check_noise(&state) + 0.5); /* -1, 0 or +1 */
    }
    bcg_resp_init(&st, fs);
    cap = n / (size_t)st.decim + 1;
    y = malloc(cap * sizeof *y);
    b = malloc(cap * sizeof *b);
    CHECK(bcg_resp_process(&st, x, n, y, cap, &nr, b, cap, &nb) == BCG_OK);
    CHECK(nb == 0);
    CHECK(bcg_resp_rate(&st) < 0.0);
    for (i = 0; i < n; i++) {
        x[i] = floor(30000.0 + 0.6 * sin(2.0 * PI * 0.25 * (double)i / fs) +
                     0.5 * check_noise(&state) + 0.5); /* integer samples */
    }
    bcg_resp_init(&st, fs);
    CHECK(bcg_resp_process(&st, x, n, y, cap, &nr, b, cap, &nb) == BCG_OK);
    CHECK(fabs(bcg_resp_rate(&st) - 15.0) < 0.5);
    free(x);
    free(y);
    free(b);
}

static void test_rate_goes_stale(void)
{
    /* breathing then 40 s flat: the rate becomes unknown */
    const double fs = 100.0;
    size_t n, nr, nb, cap, i, n2 = (size_t)(fs * 40.0);
    double *x = breathing(fs, 60.0, 15.0, &n);
    double *flat = malloc(n2 * sizeof *flat), *y;
    int64_t *b;
    bcg_resp st;

    for (i = 0; i < n2; i++) {
        flat[i] = 2000.0;
    }
    bcg_resp_init(&st, fs);
    cap = n / (size_t)st.decim + 1;
    y = malloc(cap * sizeof *y);
    b = malloc(cap * sizeof *b);
    bcg_resp_process(&st, x, n, y, cap, &nr, b, cap, &nb);
    CHECK(fabs(bcg_resp_rate(&st) - 15.0) < 0.5);
    bcg_resp_process(&st, flat, n2, y, cap, &nr, b, cap, &nb);
    CHECK(bcg_resp_rate(&st) < 0.0);
    free(x);
    free(flat);
    free(y);
    free(b);
}

int main(void)
{
    const double rates[] = {6.0, 12.0, 15.0, 20.0, 30.0, 42.0};
    const double fss[] = {50.0, 250.0, 1000.0};
    size_t i, j;

    test_init_errors();
    test_process_errors();
    for (i = 0; i < sizeof fss / sizeof fss[0]; i++) {
        for (j = 0; j < sizeof rates / sizeof rates[0]; j++) {
            test_rate(fss[i], rates[j]);
        }
    }
    test_rate(BCG_MIN_FS, 15.0);
    test_rate(15.0, 15.0);
    test_chunked_equals_one_shot();
    test_reset();
    test_flat_and_dc();
    test_rate_goes_stale();
    test_bound_for_huge_n();
    test_adc_step_noise_gives_no_rate();
    return check_report("test_respiration");
}
