/*
 * fuzz_dsp_c.c - libFuzzer harness for the public C API of dsp_c.
 *
 * Build and run (tests/fuzz/run.py does this for `make fuzz`):
 *   clang -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -g -O1 \
 *     -Idsp_c/include tests/fuzz/fuzz_dsp_c.c <every dsp_c/src C file> -lm \
 *     -o build/fuzz/fuzz_dsp_c
 *   build/fuzz/fuzz_dsp_c -max_total_time=60 tests/fuzz/corpus/dsp_c
 *
 * The first input byte picks an object (SOS filter from a design or from raw
 * coefficients, J-peak detector, respiration, motion), the next bytes its
 * parameters (raw doubles or values in a plausible range) and the rest a
 * sample stream cut into fuzzer-chosen chunks, with NaN, infinities and
 * out-of-range values injected where the input says. Besides ASan/UBSan, the
 * harness aborts (a finding) when the documented contract does not hold:
 *  - init accepts exactly the documented parameter ranges;
 *  - process rejects a chunk with a bad sample (BCG_ERR_PARAM) or a short
 *    buffer (BCG_ERR_CAPACITY) and then leaves the state byte-for-byte
 *    unchanged, and accepts every other chunk;
 *  - outputs stay within the documented bounds (counts, increasing indices,
 *    rates, flags), and the accepted chunks give, bit for bit, the output of
 *    one call on their concatenation.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcg_dsp.h"

#define MAX_SAMPLES 4096
#define SAMPLE_LIMIT 1e15 /* the sample rule of every streaming object */

/* A contract violation: print it and abort, which libFuzzer reports as a crash. */
#define REQUIRE(cond)                                                                   \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: contract violated: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* The fuzzer's bytes, consumed front to back; reads past the end give zeros. */
typedef struct {
    const uint8_t *p;
    size_t n;
} input;

static uint8_t take_u8(input *in)
{
    uint8_t v = 0;
    if (in->n > 0) {
        v = in->p[0];
        in->p++;
        in->n--;
    }
    return v;
}

static uint16_t take_u16(input *in)
{
    uint16_t lo = take_u8(in);
    return (uint16_t)(lo | (uint16_t)take_u8(in) << 8);
}

static double take_raw_double(input *in)
{
    uint64_t bits = 0;
    double v;
    for (int i = 0; i < 8; i++) {
        bits |= (uint64_t)take_u8(in) << (8 * i);
    }
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* A parameter: mostly spread over [lo, hi] (with a fraction), sometimes raw bits. */
static double take_param(input *in, double lo, double hi)
{
    uint8_t mode = take_u8(in);
    if (mode < 32) {
        return take_raw_double(in);
    }
    return lo + (hi - lo) * (take_u16(in) / 65535.0);
}

/* One sample: an int16 times the stream's scale; the int16 minimum marks a bad value. */
static double take_sample(input *in, double scale)
{
    static const double special[] = {NAN, INFINITY, -INFINITY, 2e15, -2e15, 1e15, -1e15, 0.0};
    int16_t v = (int16_t)take_u16(in);
    if (v == INT16_MIN) {
        return special[take_u8(in) % (sizeof special / sizeof special[0])];
    }
    return v * scale;
}

static int sample_ok(double x)
{
    return isfinite(x) && fabs(x) <= SAMPLE_LIMIT;
}

/* The stream: n samples and the chunk boundaries the fuzzer chose. */
typedef struct {
    double x[MAX_SAMPLES];
    size_t n;
    size_t chunk_end[MAX_SAMPLES];
    size_t n_chunks;
} stream;

static void take_stream(input *in, stream *s)
{
    static const double scales[] = {1.0, 1e-3, 1e3, 1e9, 1e-9, 0.5};
    double scale = scales[take_u8(in) % (sizeof scales / sizeof scales[0])];
    s->n = 0;
    s->n_chunks = 0;
    while (in->n > 0 && s->n < MAX_SAMPLES) {
        size_t len = 1 + (size_t)take_u16(in) % 700;
        if (len > MAX_SAMPLES - s->n) {
            len = MAX_SAMPLES - s->n;
        }
        for (size_t i = 0; i < len; i++) {
            s->x[s->n++] = take_sample(in, scale);
        }
        s->chunk_end[s->n_chunks++] = s->n;
    }
}

static int chunk_ok(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!sample_ok(x[i])) {
            return 0;
        }
    }
    return 1;
}

/* ---- SOS filter -------------------------------------------------------- */

static void run_sos(const bcg_sos_filter *initial, const stream *s)
{
    static bcg_sos_filter f, before, whole;
    static double y[MAX_SAMPLES], accepted[MAX_SAMPLES], y_whole[MAX_SAMPLES];
    size_t start = 0, n_acc = 0;

    f = *initial;
    for (size_t c = 0; c < s->n_chunks; c++) {
        size_t len = s->chunk_end[c] - start;
        const double *x = s->x + start;
        int ok = chunk_ok(x, len);
        before = f;
        for (size_t i = 0; i < len; i++) {
            y[n_acc + i] = 12345.0; /* sentinel: a rejected call writes nothing */
        }
        bcg_status rc = bcg_sos_process(&f, x, y + n_acc, len);
        if (ok) {
            REQUIRE(rc == BCG_OK);
            memcpy(accepted + n_acc, x, len * sizeof *x);
            n_acc += len;
        } else {
            REQUIRE(rc == BCG_ERR_PARAM);
            REQUIRE(memcmp(&before, &f, sizeof f) == 0);
            for (size_t i = 0; i < len; i++) {
                REQUIRE(y[n_acc + i] == 12345.0);
            }
        }
        start = s->chunk_end[c];
    }
    whole = *initial;
    REQUIRE(bcg_sos_process(&whole, accepted, y_whole, n_acc) == BCG_OK);
    REQUIRE(memcmp(y, y_whole, n_acc * sizeof *y) == 0);
    REQUIRE(memcmp(&f, &whole, sizeof f) == 0);
    REQUIRE(bcg_sos_process(&f, NULL, NULL, 0) == BCG_OK);
    REQUIRE(bcg_sos_process(NULL, accepted, y, 1) == BCG_ERR_NULL);
}

static void fuzz_sos_design(input *in)
{
    static bcg_sos_filter f;
    static stream s;
    int order = (int)(take_u8(in) % (BCG_MAX_ORDER + 3)) - 1;
    double fs = take_param(in, 1.0, 25000.0);
    double low = take_param(in, -1.0, fs / 2 + 1.0);
    double high = take_param(in, low, fs / 2 + 1.0);
    int valid_args = order >= 1 && order <= BCG_MAX_ORDER && isfinite(fs) && fs >= BCG_MIN_FS &&
                     fs <= BCG_MAX_FS && isfinite(low) && isfinite(high) && low > 0 &&
                     low < high && high < fs / 2;
    bcg_status rc = bcg_sos_init_bandpass(&f, order, low, high, fs);
    if (!valid_args) {
        REQUIRE(rc != BCG_OK);
        return;
    }
    /* Valid edges may still be numerically degenerate (documented BCG_ERR_BAND). */
    REQUIRE(rc == BCG_OK || rc == BCG_ERR_BAND);
    if (rc != BCG_OK) {
        return;
    }
    REQUIRE(f.n_sections == order);
    for (int i = 0; i < order; i++) {
        REQUIRE(f.sos[i][3] == 1.0);
        for (int c = 0; c < 6; c++) {
            REQUIRE(isfinite(f.sos[i][c]));
        }
    }
    double x0 = take_sample(in, 1.0);
    rc = bcg_sos_prime(&f, x0);
    REQUIRE(sample_ok(x0) ? (rc == BCG_OK || rc == BCG_ERR_COEF) : rc == BCG_ERR_PARAM);
    take_stream(in, &s);
    run_sos(&f, &s);
}

static void fuzz_sos_raw(input *in)
{
    static bcg_sos_filter f, before;
    static stream s;
    static double sos[6 * (BCG_MAX_SECTIONS + 1)];
    int n_sections = (int)(take_u8(in) % (BCG_MAX_SECTIONS + 2));
    int valid = n_sections >= 1 && n_sections <= BCG_MAX_SECTIONS;
    for (int i = 0; i < 6 * n_sections; i++) {
        sos[i] = (i % 6 == 3 && take_u8(in) < 240) ? 1.0 : take_param(in, -2.0, 2.0);
        if (i % 6 == 3) {
            valid = valid && sos[i] == 1.0;
        }
        valid = valid && isfinite(sos[i]);
    }
    bcg_status rc = bcg_sos_init(&f, sos, n_sections);
    REQUIRE(valid ? rc == BCG_OK : rc != BCG_OK);
    if (!valid) {
        return;
    }
    double x0 = take_sample(in, 1.0);
    before = f;
    rc = bcg_sos_prime(&f, x0);
    REQUIRE(rc == BCG_OK || rc == BCG_ERR_PARAM || rc == BCG_ERR_COEF);
    if (!sample_ok(x0)) {
        REQUIRE(rc == BCG_ERR_PARAM);
    }
    if (rc != BCG_OK) {
        REQUIRE(memcmp(&before, &f, sizeof f) == 0);
    }
    take_stream(in, &s);
    run_sos(&f, &s);
}

/* ---- J-peak detector ---------------------------------------------------- */

static void fuzz_jpeak(input *in)
{
    static bcg_jpeak d, before, whole;
    static stream s;
    static double accepted[MAX_SAMPLES];
    static int64_t beats[MAX_SAMPLES], beats_whole[MAX_SAMPLES], chunk_beats[MAX_SAMPLES];
    size_t n_beats = 0, n_whole = 0, start = 0, n_acc = 0, got;

    double fs = take_param(in, 5.0, 2100.0);
    bcg_status rc = bcg_jpeak_init(&d, fs);
    int valid = isfinite(fs) && fs >= BCG_JPEAK_MIN_FS && fs <= BCG_JPEAK_MAX_FS;
    REQUIRE(valid ? rc == BCG_OK : rc == BCG_ERR_FS);
    if (!valid) {
        return;
    }
    whole = d;
    take_stream(in, &s);
    for (size_t c = 0; c < s.n_chunks; c++) {
        size_t len = s.chunk_end[c] - start;
        const double *x = s.x + start;
        size_t cap = bcg_jpeak_max_beats(&d, len);
        REQUIRE(cap <= MAX_SAMPLES);
        before = d;
        if (cap > 0) { /* one short: refused, nothing consumed */
            REQUIRE(bcg_jpeak_process(&d, x, len, chunk_beats, cap - 1, &got) ==
                    BCG_ERR_CAPACITY);
            REQUIRE(memcmp(&before, &d, sizeof d) == 0);
        }
        rc = bcg_jpeak_process(&d, x, len, chunk_beats, cap, &got);
        if (chunk_ok(x, len)) {
            REQUIRE(rc == BCG_OK);
            REQUIRE(got <= cap);
            memcpy(accepted + n_acc, x, len * sizeof *x);
            n_acc += len;
            memcpy(beats + n_beats, chunk_beats, got * sizeof *beats);
            n_beats += got;
        } else {
            REQUIRE(rc == BCG_ERR_PARAM);
            REQUIRE(memcmp(&before, &d, sizeof d) == 0);
        }
        start = s.chunk_end[c];
        double interval = bcg_jpeak_interval(&d);
        /* 0.3-2.0 s (30-200 bpm), counted in whole samples (past findings:
         * tests/fuzz/findings/dsp_c/jpeak_ibi_*). */
        double ibi = interval * d.fs;
        REQUIRE(interval == 0.0 ||
                (ibi >= (double)d.refractory - 1e-6 && ibi <= (double)d.max_ibi + 1e-6));
        REQUIRE(interval >= 0.0 && isfinite(interval));
    }
    size_t cap = bcg_jpeak_max_beats(&d, 0);
    REQUIRE(bcg_jpeak_flush(&d, chunk_beats, cap, &got) == BCG_OK);
    memcpy(beats + n_beats, chunk_beats, got * sizeof *beats);
    n_beats += got;
    int64_t spacing = (int64_t)floor(fs * BCG_JPEAK_MIN_SPACING_MS / 1000.0);
    for (size_t i = 0; i < n_beats; i++) {
        REQUIRE(beats[i] >= 0 && beats[i] < (int64_t)n_acc);
        if (i > 0) {
            REQUIRE(beats[i] - beats[i - 1] >= spacing);
        }
    }
    /* The same samples in one call, then a flush: the same beats. */
    size_t cap_whole = bcg_jpeak_max_beats(&whole, n_acc);
    REQUIRE(cap_whole <= MAX_SAMPLES);
    REQUIRE(bcg_jpeak_process(&whole, accepted, n_acc, beats_whole, cap_whole, &got) == BCG_OK);
    n_whole = got;
    REQUIRE(bcg_jpeak_flush(&whole, beats_whole + n_whole, cap, &got) == BCG_OK);
    n_whole += got;
    REQUIRE(n_whole == n_beats);
    REQUIRE(memcmp(beats, beats_whole, n_beats * sizeof *beats) == 0);
}

/* ---- respiration -------------------------------------------------------- */

static void fuzz_resp(input *in)
{
    static bcg_resp st, before, whole;
    static stream s;
    static double accepted[MAX_SAMPLES], resp[MAX_SAMPLES + 1], resp_whole[MAX_SAMPLES + 1];
    static int64_t breaths[MAX_SAMPLES + 1], breaths_whole[MAX_SAMPLES + 1];
    size_t n_resp = 0, n_breaths = 0, start = 0, n_acc = 0, got_r, got_b;

    double fs = take_param(in, 5.0, 21000.0);
    bcg_status rc = bcg_resp_init(&st, fs);
    int valid = isfinite(fs) && fs >= BCG_MIN_FS && fs <= BCG_MAX_FS;
    REQUIRE(valid ? rc == BCG_OK : rc == BCG_ERR_FS);
    if (!valid) {
        return;
    }
    whole = st;
    take_stream(in, &s);
    for (size_t c = 0; c < s.n_chunks; c++) {
        size_t len = s.chunk_end[c] - start;
        const double *x = s.x + start;
        size_t cap = bcg_resp_max_out(&st, len);
        REQUIRE(cap <= len / (size_t)st.decim + 1);
        before = st;
        if (cap > 0) {
            REQUIRE(bcg_resp_process(&st, x, len, resp + n_resp, cap - 1, &got_r,
                                     breaths + n_breaths, cap, &got_b) == BCG_ERR_CAPACITY);
            REQUIRE(memcmp(&before, &st, sizeof st) == 0);
        }
        rc = bcg_resp_process(&st, x, len, resp + n_resp, cap, &got_r, breaths + n_breaths, cap,
                              &got_b);
        if (chunk_ok(x, len)) {
            REQUIRE(rc == BCG_OK);
            REQUIRE(got_r == cap && got_b <= cap);
            memcpy(accepted + n_acc, x, len * sizeof *x);
            n_acc += len;
            n_resp += got_r;
            n_breaths += got_b;
        } else {
            REQUIRE(rc == BCG_ERR_PARAM);
            REQUIRE(memcmp(&before, &st, sizeof st) == 0);
        }
        start = s.chunk_end[c];
        double rate = bcg_resp_rate(&st);
        REQUIRE(rate == -1.0 || (rate >= 5.0 - 1e-9 && rate <= 48.0 + 1e-9));
    }
    for (size_t i = 0; i < n_breaths; i++) {
        REQUIRE(breaths[i] >= 0 && breaths[i] <= (int64_t)n_acc);
        REQUIRE(i == 0 || breaths[i] > breaths[i - 1]);
    }
    size_t cap = bcg_resp_max_out(&whole, n_acc);
    REQUIRE(bcg_resp_process(&whole, accepted, n_acc, resp_whole, cap, &got_r, breaths_whole, cap,
                             &got_b) == BCG_OK);
    REQUIRE(got_r == n_resp && got_b == n_breaths);
    REQUIRE(memcmp(resp, resp_whole, n_resp * sizeof *resp) == 0);
    REQUIRE(memcmp(breaths, breaths_whole, n_breaths * sizeof *breaths) == 0);
}

/* ---- motion ------------------------------------------------------------- */

static void fuzz_motion(input *in)
{
    static bcg_motion st, before, whole;
    static stream s;
    static double accepted[MAX_SAMPLES], energy[MAX_SAMPLES + 1], energy_whole[MAX_SAMPLES + 1];
    static uint8_t moving[MAX_SAMPLES + 1], moving_whole[MAX_SAMPLES + 1];
    size_t n_win = 0, start = 0, n_acc = 0, got;

    double fs = take_param(in, 5.0, 21000.0);
    double window_s = take_param(in, 0.05, 61.0);
    bcg_status rc = bcg_motion_init(&st, fs, window_s);
    if (!(isfinite(fs) && fs >= BCG_MIN_FS && fs <= BCG_MAX_FS)) {
        REQUIRE(rc == BCG_ERR_FS);
        return;
    }
    if (!(isfinite(window_s) && window_s * 1000.0 >= BCG_MOTION_MIN_WINDOW_MS &&
          window_s * 1000.0 <= BCG_MOTION_MAX_WINDOW_MS)) {
        REQUIRE(rc == BCG_ERR_PARAM);
        return;
    }
    REQUIRE(rc == BCG_OK);
    int64_t len_win = bcg_motion_window_len(&st);
    REQUIRE(len_win >= 1);
    whole = st;
    take_stream(in, &s);
    for (size_t c = 0; c < s.n_chunks; c++) {
        size_t len = s.chunk_end[c] - start;
        const double *x = s.x + start;
        size_t cap = bcg_motion_max_windows(&st, len);
        before = st;
        if (cap > 0) {
            REQUIRE(bcg_motion_process(&st, x, len, energy + n_win, moving + n_win, cap - 1,
                                       &got) == BCG_ERR_CAPACITY);
            REQUIRE(memcmp(&before, &st, sizeof st) == 0);
        }
        rc = bcg_motion_process(&st, x, len, energy + n_win, moving + n_win, cap, &got);
        if (chunk_ok(x, len)) {
            REQUIRE(rc == BCG_OK);
            REQUIRE(got == cap);
            memcpy(accepted + n_acc, x, len * sizeof *x);
            n_acc += len;
            n_win += got;
        } else {
            REQUIRE(rc == BCG_ERR_PARAM);
            REQUIRE(memcmp(&before, &st, sizeof st) == 0);
        }
        start = s.chunk_end[c];
    }
    REQUIRE(n_win == n_acc / (size_t)len_win);
    for (size_t i = 0; i < n_win; i++) {
        REQUIRE(energy[i] >= 0.0 && !isnan(energy[i]));
        REQUIRE(moving[i] <= 1);
    }
    size_t cap = bcg_motion_max_windows(&whole, n_acc);
    REQUIRE(bcg_motion_process(&whole, accepted, n_acc, energy_whole, moving_whole, cap, &got) ==
            BCG_OK);
    REQUIRE(got == n_win);
    REQUIRE(memcmp(energy, energy_whole, n_win * sizeof *energy) == 0);
    REQUIRE(memcmp(moving, moving_whole, n_win) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in = {data, size};
    switch (take_u8(&in) % 5) {
    case 0:
        fuzz_sos_design(&in);
        break;
    case 1:
        fuzz_sos_raw(&in);
        break;
    case 2:
        fuzz_jpeak(&in);
        break;
    case 3:
        fuzz_resp(&in);
        break;
    default:
        fuzz_motion(&in);
        break;
    }
    REQUIRE(strlen(bcg_strerror((bcg_status)(size % 12))) > 0);
    return 0;
}
