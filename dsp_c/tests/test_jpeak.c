/* Unit tests of the J-peak detector (jpeak.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bcg_dsp.h"
#include "check.h"



#define MAX_SAMPLES 120000
#define MAX_BEATS 2000

static double signal_buf[MAX_SAMPLES];
static int64_t truth[MAX_BEATS];
static int64_t found[MAX_BEATS];
static int64_t scratch[MAX_BEATS];

static uint64_t rng_state;
static double noise(void)
{
    return check_noise(&rng_state);
}

static double gauss(double t, double centre, double width)
{
    double z = (t - centre) / width;
    return exp(-0.5 * z * z);
}

/* The I-J-K complex of a beat whose J-peak is at t_beat (s), at time t. */
static double ijk_complex(double t, double t_beat)
{
    return -0.4 * gauss(t, t_beat - 0.05, 0.018) + gauss(t, t_beat, 0.02) -
           0.5 * gauss(t, t_beat + 0.06, 0.02);
}

/*
 * A BCG-like beat train: I-J-K complex around each J-peak and a secondary
 * wave of height `secondary` halfway between beats (the classic bait for a
 * double-rate lock). Heart rate bpm, jitter of intervals +-5 %.
 * Returns the number of beats; their J-peak indices go to truth[].
 */
static int make_signal(double fs, double bpm, double secondary, double noise_amp, int n)
{
    int n_beats = 0;
    double ibi = 60.0 / bpm;
    double t_beat = 0.5;
    rng_state = 12345;
    memset(signal_buf, 0, sizeof(double) * (size_t)n);
    while (t_beat < n / fs - 0.3 && n_beats < MAX_BEATS) {
        truth[n_beats++] = (int64_t)floor(t_beat * fs + 0.5);
        double this_ibi = ibi * (1.0 + 0.05 * noise());
        for (int k = 0; k < n; k++) {
            double t = k / fs;
            if (fabs(t - t_beat) > 1.2 * this_ibi)
                continue;
            signal_buf[k] +=
                ijk_complex(t, t_beat) + secondary * gauss(t, t_beat + 0.5 * this_ibi, 0.03);
        }
        t_beat += this_ibi;
    }
    for (int k = 0; k < n; k++)
        signal_buf[k] += noise_amp * noise();
    return n_beats;
}

/* Run the detector over n samples in chunks of `chunk`; returns beats found. */
static int detect(double fs, int n, int chunk)
{
    bcg_jpeak d;
    size_t got = 0, total = 0;
    if (bcg_jpeak_init(&d, fs) != BCG_OK)
        return -1;
    for (int pos = 0; pos < n; pos += chunk) {
        size_t len = (size_t)((n - pos < chunk) ? n - pos : chunk);
        if (bcg_jpeak_process(&d, signal_buf + pos, len, scratch, MAX_BEATS, &got) != BCG_OK)
            return -1;
        memcpy(found + total, scratch, got * sizeof(int64_t));
        total += got;
    }
    if (bcg_jpeak_flush(&d, scratch, MAX_BEATS, &got) != BCG_OK)
        return -1;
    memcpy(found + total, scratch, got * sizeof(int64_t));
    return (int)(total + got);
}

/* Count true beats with a detection within tol samples (each used once). */
static int matched(int n_truth, int n_found, int64_t tol)
{
    int hits = 0, j = 0;
    for (int i = 0; i < n_truth; i++) {
        while (j < n_found && found[j] < truth[i] - tol)
            j++;
        if (j < n_found && found[j] <= truth[i] + tol) {
            hits++;
            j++;
        }
    }
    return hits;
}

static void test_arguments(void)
{
    bcg_jpeak d;
    size_t got;
    double x[4] = {0};
    int64_t beats[64];
    CHECK(bcg_jpeak_init(NULL, 250) == BCG_ERR_NULL);
    CHECK(bcg_jpeak_init(&d, 0) == BCG_ERR_FS);
    CHECK(bcg_jpeak_init(&d, -250) == BCG_ERR_FS);
    CHECK(bcg_jpeak_init(&d, NAN) == BCG_ERR_FS);
    CHECK(bcg_jpeak_init(&d, INFINITY) == BCG_ERR_FS);
    CHECK(bcg_jpeak_init(&d, BCG_JPEAK_MAX_FS + 1) == BCG_ERR_FS);
    CHECK(bcg_jpeak_init(&d, 250) == BCG_OK);
    CHECK(bcg_jpeak_process(&d, NULL, 4, beats, 64, &got) == BCG_ERR_NULL);
    CHECK(bcg_jpeak_process(&d, x, 4, NULL, 64, &got) == BCG_ERR_NULL);
    CHECK(bcg_jpeak_process(&d, x, 4, beats, 64, NULL) == BCG_ERR_NULL);
    CHECK(bcg_jpeak_process(&d, NULL, 0, beats, 64, &got) == BCG_OK && got == 0);
    CHECK(bcg_jpeak_process(&d, x, 4, beats, 1, &got) == BCG_ERR_CAPACITY && got == 0);
    CHECK(d.n == 0); /* nothing consumed on a capacity error */
    CHECK(bcg_jpeak_max_beats(&d, 250) <= 64);
    CHECK(bcg_jpeak_process(&d, x, 4, beats, 64, &got) == BCG_OK && got == 0);
    CHECK(bcg_jpeak_flush(&d, beats, 1, &got) == BCG_ERR_CAPACITY);
    CHECK(bcg_jpeak_flush(&d, beats, 64, &got) == BCG_OK && got == 0);
    CHECK(bcg_jpeak_interval(&d) == 0.0);
}

static void test_rates(void)
{
    const double rates[] = {32, 35, 45, 60, 85, 110, 150, 180};
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        double fs = 250;
        int n = 60 * 250;
        int n_truth = make_signal(fs, rates[r], 0.6, 0.05, n);
        int n_found = detect(fs, n, n);
        int hits = matched(n_truth, n_found, 5);
        if (hits != n_truth || n_found != n_truth)
            fprintf(stderr, "  %g bpm: %d true, %d found, %d matched\n", rates[r], n_truth,
                    n_found, hits);
        CHECK(hits == n_truth);   /* no half rate, nothing missed */
        CHECK(n_found == n_truth); /* no double rate */
    }
}

static void test_chunking_is_invisible(void)
{
    static int64_t whole[MAX_BEATS];
    double fs = 100;
    int n = 90 * 100;
    make_signal(fs, 72, 0.5, 0.2, n);
    int n_whole = detect(fs, n, n);
    CHECK(n_whole > 90);
    memcpy(whole, found, sizeof(int64_t) * (size_t)n_whole);
    const int chunks[] = {1, 7, 100, 333, 4096};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        int n_chunked = detect(fs, n, chunks[c]);
        CHECK(n_chunked == n_whole);
        CHECK(memcmp(found, whole, sizeof(int64_t) * (size_t)n_whole) == 0);
    }
    for (int i = 1; i < n_whole; i++)
        CHECK(whole[i] > whole[i - 1]);
}

static void test_latency_bound(void)
{
    /* Every beat is reported at most 3.5 s after its J-peak. */
    bcg_jpeak d;
    size_t got;
    double fs = 200;
    int n = 60 * 200;
    make_signal(fs, 40, 0.3, 0.05, n);
    bcg_jpeak_init(&d, fs);
    int64_t worst = 0;
    int reported = 0;
    for (int k = 0; k < n; k++) {
        bcg_jpeak_process(&d, signal_buf + k, 1, scratch, MAX_BEATS, &got);
        for (size_t i = 0; i < got; i++) {
            if (k - scratch[i] > worst)
                worst = k - scratch[i];
            reported++;
        }
    }
    CHECK(reported > 30);
    CHECK(worst <= (int64_t)(3.5 * fs));
    CHECK(fabs(bcg_jpeak_interval(&d) - 1.5) < 0.1);
}

static void test_silence_and_bad_samples(void)
{
    /* Flat input: no beats. Non-finite or absurd samples: refused, nothing consumed. */
    double fs = 250;
    int n = 20 * 250;
    for (int k = 0; k < n; k++)
        signal_buf[k] = 0.0;
    CHECK(detect(fs, n, n) == 0);
    bcg_jpeak d;
    size_t got = 99;
    const double bad[] = {NAN, INFINITY, -INFINITY, 1e16, -2e15};
    bcg_jpeak_init(&d, fs);
    bcg_jpeak_process(&d, signal_buf, 100, scratch, MAX_BEATS, &got);
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        signal_buf[50] = bad[b];
        CHECK(bcg_jpeak_process(&d, signal_buf, 100, scratch, MAX_BEATS, &got) == BCG_ERR_PARAM);
        CHECK(got == 0 && d.n == 100);
    }
    signal_buf[50] = 1e15; /* the largest magnitude accepted */
    CHECK(bcg_jpeak_process(&d, signal_buf, 100, scratch, MAX_BEATS, &got) == BCG_OK);
    CHECK(d.n == 200);
}

static void test_bounds_and_null_safety(void)
{
    bcg_jpeak d;
    size_t got;
    bcg_jpeak_init(&d, BCG_JPEAK_MAX_FS);
    CHECK(bcg_jpeak_max_beats(&d, SIZE_MAX) >= SIZE_MAX / (size_t)d.refractory);
    CHECK(bcg_jpeak_max_beats(NULL, 10) == SIZE_MAX);
    CHECK(bcg_jpeak_process(&d, signal_buf, 10, NULL, 0, &got) == BCG_ERR_CAPACITY);
    /* the check order of bcg_dsp.h: NULL pointers before the capacity */
    CHECK(bcg_jpeak_process(&d, signal_buf, 10, NULL, 1, &got) == BCG_ERR_NULL && got == 0);
    CHECK(bcg_jpeak_process(&d, NULL, 10, NULL, 0, &got) == BCG_ERR_NULL && got == 0);
    CHECK(bcg_jpeak_flush(&d, NULL, 1, &got) == BCG_ERR_NULL && got == 0);
    CHECK(bcg_jpeak_flush(&d, NULL, 0, &got) == BCG_ERR_CAPACITY && got == 0);
    /* not initialised (zeroed): SIZE_MAX, so no process call can run */
    memset(&d, 0, sizeof d);
    CHECK(bcg_jpeak_max_beats(&d, 0) == SIZE_MAX);
    CHECK(bcg_jpeak_process(&d, signal_buf, 10, scratch, MAX_BEATS, &got) == BCG_ERR_CAPACITY);
    bcg_jpeak_reset(NULL); /* does nothing */
    CHECK(bcg_jpeak_interval(NULL) == 0.0);
}

static void test_flush_resets(void)
{
    bcg_jpeak d;
    size_t got, got2;
    double fs = 250;
    int n = 10 * 250;
    make_signal(fs, 60, 0.0, 0.0, n);
    bcg_jpeak_init(&d, fs);
    bcg_jpeak_process(&d, signal_buf, (size_t)n, found, MAX_BEATS, &got);
    bcg_jpeak_flush(&d, found + got, MAX_BEATS, &got2);
    CHECK(got + got2 >= 9);
    CHECK(d.n == 0 && d.learning == 1 && d.last_beat == -1);
}

static void test_search_back_after_a_long_silence_stays_in_bounds(void)
{
    /* Two huge jolts while learning, then small beats: the signal level decays
     * for tens of seconds; the search-back must not then report a burst of old
     * candidates (once more beats than bcg_jpeak_max_beats, an overflow). */
    double fs = 250;
    int n = 90 * 250;
    memset(signal_buf, 0, sizeof(double) * (size_t)n);
    signal_buf[125] = 1e6;
    signal_buf[250] = 1e6;
    for (int k = 375; k < n; k += 200)
        signal_buf[k] = 1.0;
    bcg_jpeak d;
    bcg_jpeak_init(&d, fs);
    int64_t worst_age = 0;
    for (int pos = 0; pos < n; pos += 150) {
        size_t len = (size_t)((n - pos < 150) ? n - pos : 150);
        size_t cap = bcg_jpeak_max_beats(&d, len), got = 0;
        CHECK(cap <= MAX_BEATS);
        CHECK(bcg_jpeak_process(&d, signal_buf + pos, len, scratch, cap, &got) == BCG_OK);
        CHECK(got <= cap);
        for (size_t i = 0; i < got; i++)
            if (scratch[i] > 5 * 250 && pos + (int64_t)len - scratch[i] > worst_age)
                worst_age = pos + (int64_t)len - scratch[i];
    }
    CHECK(worst_age <= (int64_t)(4.54 * fs) + 150); /* the documented bound, + one chunk */
}

/*
 * Mean absolute error (samples) of the intervals between consecutive true
 * beats that are both matched within tol; *pairs gets their number.
 */
static double interval_error(int n_truth, int n_found, int64_t tol, int *pairs)
{
    double sum = 0.0;
    int count = 0, j = 0;
    int64_t prev_truth = -1, prev_found = -1;
    for (int i = 0; i < n_truth; i++) {
        while (j < n_found && found[j] < truth[i] - tol)
            j++;
        if (j < n_found && found[j] <= truth[i] + tol) {
            if (i > 0 && prev_truth == truth[i - 1]) {
                sum += fabs((double)((found[j] - prev_found) - (truth[i] - prev_truth)));
                count++;
            }
            prev_truth = truth[i];
            prev_found = found[j++];
        } else {
            prev_truth = -1;
        }
    }
    *pairs = count;
    return count ? sum / count : INFINITY;
}

/* Template alignment: on a noisy train every beat is timed on the same
 * point of its shape, so intervals jitter less than the samples do (0.33
 * samples measured; 0.83 when a beat was the centre of its strongest 80 ms
 * stretch). */
static void test_noisy_beats_are_timed_consistently(void)
{
    const double fs = 250.0;
    int n = (int)(120 * fs);
    int n_truth = make_signal(fs, 70, 0.3, 0.2, n);
    int n_found = detect(fs, n, 1000);
    int pairs = 0;
    double error = interval_error(n_truth, n_found, 10, &pairs);
    CHECK(n_found == n_truth && pairs == n_truth - 1);
    CHECK(error < 0.5);
    for (int i = 1; i < n_found; i++) /* BCG_JPEAK_MIN_SPACING_MS apart */
        CHECK(found[i] - found[i - 1] >= (int64_t)(0.2 * fs));
}

/* The template is averaged at the beats' candidate times: it, and the
 * reported times with it, cannot wander off the J-peaks over a long night.
 * (Averaged at the aligned times instead, it wandered: after 8 min at
 * 110 bpm 674 of 878 beats were over 2 samples late, on average 3.3.) */
static void test_aligned_times_stay_on_the_j_peaks(void)
{
    const double fs = 250.0;
    int n = MAX_SAMPLES;
    int n_truth = make_signal(fs, 110, 0.6, 0.3, n);
    int n_found = detect(fs, n, 4096);
    int hits = 0, off = 0, j = 0;
    double sum = 0.0;
    for (int i = 0; i < n_truth; i++) {
        while (j < n_found && found[j] < truth[i] - 15)
            j++;
        if (j < n_found && found[j] <= truth[i] + 15) {
            int64_t offset = found[j++] - truth[i];
            sum += (double)offset;
            off += offset > 2 || offset < -2;
            hits++;
        }
    }
    CHECK(hits == n_truth && n_found == n_truth);
    CHECK(off <= n_truth / 100);
    CHECK(fabs(sum / hits) < 1.0);
}

/*
 * A beat train for the rhythm tests: J-peaks every `ibi` s (+-5 %) from 0.5 s,
 * every other J-wave scaled by `alt`, and a secondary wave (a peak of height
 * `sec` and a trough after it, like a diastolic complex) at `sec_frac` of
 * each interval. Returns the number of beats (truth[]); noise 0.02.
 */
static int make_train(double fs, int n, double ibi, double alt, double sec, double sec_frac)
{
    int n_beats = 0;
    double t_beat = 0.5;
    rng_state = 777;
    memset(signal_buf, 0, sizeof(double) * (size_t)n);
    while (t_beat < n / fs - 0.3 && n_beats < MAX_BEATS) {
        double this_ibi = ibi * (1.0 + 0.05 * noise());
        double a = (n_beats % 2) ? alt : 1.0;
        double d = t_beat + sec_frac * this_ibi;
        truth[n_beats++] = (int64_t)floor(t_beat * fs + 0.5);
        for (int k = 0; k < n; k++) {
            double t = k / fs;
            if (fabs(t - t_beat) > 1.5)
                continue;
            signal_buf[k] += a * ijk_complex(t, t_beat) +
                             sec * (gauss(t, d, 0.02) - 0.5 * gauss(t, d + 0.06, 0.02));
        }
        t_beat += this_ibi;
    }
    for (int k = 0; k < n; k++)
        signal_buf[k] += 0.02 * noise();
    return n_beats;
}

/* Detections within tol samples of a true beat, of those after sample `from`. */
static double ppv_after(int n_truth, int n_found, int64_t from, int64_t tol)
{
    int total = 0, good = 0;
    for (int j = 0; j < n_found; j++) {
        if (found[j] < from)
            continue;
        total++;
        for (int i = 0; i < n_truth; i++)
            if (found[j] >= truth[i] - tol && found[j] <= truth[i] + tol) {
                good++;
                break;
            }
    }
    return total ? (double)good / total : 0.0;
}

/* A diastolic wave 0.8 x as high as the J-wave seeds a double rate while
 * learning; the heights alternate (not below 0.75 x) and the intervals pair
 * up (J to D 0.42, D to J 0.58 of the beat interval): re-locked to half. */
static void test_double_rate_on_a_high_diastolic_wave_relocks(void)
{
    const double fs = 250.0;
    int n = (int)(60 * fs);
    int n_truth = make_train(fs, n, 0.75, 1.0, 0.8, 0.42);
    int n_found = detect(fs, n, 250);
    CHECK(ppv_after(n_truth, n_found, (int64_t)(15 * fs), 5) > 0.97);
    CHECK(matched(n_truth, n_found, 5) >= n_truth - 3);
}

/* The converse: true beats alternating in height (0.8 x) at a steady rhythm
 * are all beats; without the paired intervals the rate is not halved. */
static void test_alternating_heights_alone_keep_the_rate(void)
{
    const double fs = 250.0;
    int n = (int)(60 * fs);
    int n_truth = make_train(fs, n, 0.75, 0.8, 0.0, 0.5);
    int n_found = detect(fs, n, 250);
    CHECK(matched(n_truth, n_found, 5) >= n_truth - 1);
    CHECK(n_found <= n_truth + 1);
}

/* A stream that starts inside a beat: its late wave (half as high, 0.32 s
 * before the first J-wave) is not reported as a beat. */
static void test_the_wave_of_a_beat_cut_at_the_start_is_no_beat(void)
{
    const double fs = 250.0;
    int n = (int)(20 * fs);
    int n_truth = make_train(fs, n, 0.7, 1.0, 0.0, 0.5);
    for (int k = 0; k < n; k++) { /* the tail of the beat before the recording */
        double t = k / fs;
        signal_buf[k] += 0.5 * gauss(t, 0.18, 0.02) - 0.25 * gauss(t, 0.24, 0.02);
    }
    int n_found = detect(fs, n, 100);
    CHECK(n_found > 0 && found[0] >= truth[0] - 5);
    CHECK(matched(n_truth, n_found, 5) == n_truth);
    CHECK(n_found == n_truth);
}

/* Learning sees every third beat clearly (the two between are 0.55 x as
 * high): the rhythm is seeded at a third of the rate; once all beats are
 * alike, the skipped ones (a third and two thirds of the way, as high as
 * the beats) re-lock it to the full rate. */
static void test_a_lock_at_a_third_of_the_rate_recovers(void)
{
    const double fs = 250.0;
    int n = (int)(40 * fs);
    int n_truth = make_train(fs, n, 0.62, 1.0, 0.0, 0.5);
    for (int i = 0; i < n_truth && truth[i] < (int64_t)(4.6 * fs); i++) {
        if (i % 3 == 0)
            continue;
        double tb = (double)truth[i] / fs;
        for (int k = 0; k < n; k++) {
            double t = k / fs;
            if (fabs(t - tb) < 0.3)
                signal_buf[k] -= 0.45 * ijk_complex(t, tb);
        }
    }
    int n_found = detect(fs, n, 250);
    int late = 0, late_found = 0; /* the last 20 s */
    for (int i = 0; i < n_truth; i++)
        late += truth[i] >= (int64_t)(20 * fs);
    for (int j = 0; j < n_found; j++)
        late_found += found[j] >= (int64_t)(20 * fs);
    CHECK(late_found >= late - 1 && late_found <= late + 1);
    CHECK(matched(n_truth, n_found, 5) >= n_truth - 15);
}

/*
 * A bed left empty, then occupied again: the signal level decays in the
 * empty bed to a fraction of the returning beats, which all look like
 * artifacts to it at first. A steady run of them relearns level and rhythm
 * (the person is back at another rate) within a few beats, instead of
 * inching the level up for some 150 beats with the old rhythm kept.
 */
static void test_beats_after_an_empty_bed_relearn_level_and_rhythm(void)
{
    double fs = 250;
    int n = 120 * 250;
    rng_state = 777;
    memset(signal_buf, 0, sizeof(double) * (size_t)n);
    for (int k = 0; k < n; k++)
        signal_buf[k] = 0.01 * noise();
    double segments[2][3] = {{0.5, 40.0, 60.0}, {80.0, 119.0, 80.0}}; /* from, to (s), bpm */
    for (int s = 0; s < 2; s++) {
        double ibi = 60.0 / segments[s][2];
        for (double t_beat = segments[s][0]; t_beat < segments[s][1]; t_beat += ibi)
            for (int k = (int)((t_beat - 0.2) * fs); k < (int)((t_beat + 0.2) * fs); k++)
                signal_buf[k] += ijk_complex(k / fs, t_beat);
    }
    bcg_jpeak d;
    bcg_jpeak_init(&d, fs);
    size_t got = 0, after_return = 0;
    for (int pos = 0; pos < n; pos += 250) {
        CHECK(bcg_jpeak_process(&d, signal_buf + pos, 250, scratch, MAX_BEATS, &got) == BCG_OK);
        for (size_t i = 0; i < got; i++)
            after_return += scratch[i] >= (int64_t)(80.0 * fs);
        if (pos == 79 * 250)
            CHECK(d.signal_level < 0.1); /* decayed in the empty bed */
        if (pos == 86 * 250) {            /* 6 s (8 beats) after the return */
            CHECK(fabs(bcg_jpeak_interval(&d) - 0.75) < 0.02);
            CHECK(d.signal_level > 0.5);
        }
    }
    CHECK(bcg_jpeak_flush(&d, scratch, MAX_BEATS, &got) == BCG_OK);
    after_return += got;
    CHECK(after_return == 52); /* every beat from 80 s to 119 s at 80 bpm, nothing else */
}

int main(void)
{
    test_arguments();
    test_rates();
    test_chunking_is_invisible();
    test_latency_bound();
    test_silence_and_bad_samples();
    test_bounds_and_null_safety();
    test_search_back_after_a_long_silence_stays_in_bounds();
    test_flush_resets();
    test_double_rate_on_a_high_diastolic_wave_relocks();
    test_alternating_heights_alone_keep_the_rate();
    test_the_wave_of_a_beat_cut_at_the_start_is_no_beat();
    test_a_lock_at_a_third_of_the_rate_recovers();
    test_noisy_beats_are_timed_consistently();
    test_aligned_times_stay_on_the_j_peaks();
    test_beats_after_an_empty_bed_relearn_level_and_rhythm();
    return check_report("test_jpeak");
}
