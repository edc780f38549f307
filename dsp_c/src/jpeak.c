/*
 * jpeak.c - causal streaming J-peak (heartbeat) detector for BCG.
 * The algorithm and its latency are documented in bcg_dsp.h.
 */
#include <math.h>
#include <string.h>

#include "bcg_dsp.h"
#include "internal.h"

/* Fractions of the decision logic (see bcg_dsp.h). */
#define MIN_SWING 1e-6           /* input units (ADC counts): smaller swings are rounding noise */
#define THRESHOLD_FRACTION 0.25  /* threshold = noise + f * (signal - noise) */
#define REPLACE_RATIO 1.5        /* a later peak in the refractory period must be this x higher */
#define EARLIER_WAVE_FRACTION 0.8 /* an earlier peak this x as high is the beat's J-wave ... */
#define EARLIER_WAVE_MIN_MS 100   /* ... when it lies 100 to 200 ms before the accepted one ... */
#define EARLIER_WAVE_MAX_MS 200
#define EARLIER_WAVE_GAP 0.6      /* ... and at least this x interval after the last beat */
#define LEVEL_RATE 0.125         /* running average weight of a new peak */
#define SEARCHBACK_RATE 0.25     /* ... of a beat found by search-back */
#define EARLY_FRACTION 0.7       /* earlier than this x interval: tentative */
#define WEAK_LATE_FRACTION 0.9  /* ... or earlier than this x interval ... */
#define WEAK_FRACTION 0.7        /* ... and below this x the signal level */
#define LATE_FRACTION 1.3        /* a tentative beat is kept after this x interval */
#define PLAUSIBLE_FRACTION 0.5   /* on-time candidate beats a tentative one this high */
#define SEARCHBACK_FRACTION 1.66 /* no beat for this x interval: search back */
#define HALF_RATE_HEIGHT 0.85    /* mid-interval candidates this high on average ... */
#define HALF_RATE_MIN_HEIGHT 0.6 /* ... each at least this high ... */
#define HALF_RATE_NEAR 0.45      /* ... 0.45-0.55 of the interval in ... */
#define HALF_RATE_COUNT 3        /* ... this many times in a row suggest half rate */
#define THIRD_RATE_NEAR 0.27     /* ... or a third of it, when 0.27-0.4 (or 0.6-0.73) in */
#define THIRD_RATE_FAR 0.4       /* (the upper end of that range) */
#define ARTIFACT_RATIO 2.0       /* a beat this x the signal level is an artifact */
#define ARTIFACT_RATE 0.02       /* running average weight of an artifact beat */
#define SEED_FRACTION 0.75       /* learning: peaks this x the dominant height set the rhythm */
#define SILENCE_DECAY 0.5        /* signal level x this per silence without a beat */
#define ALTERNATION_RATIO 0.75   /* big-small-big beats: small below this x neighbours */
#define PAIRED_ALTERNATION_RATIO 0.9 /* ... or below this x when the intervals pair up too */
#define PAIRED_INTERVAL_RATIO 0.9    /* ... each interval of one kind this x those of the other */
#define TEMPLATE_RATE 0.1        /* running average weight of a beat in the template */
#define OFF_RHYTHM 0.15          /* an interval this far (x median) off: not a template beat */
#define TALL_ALIKE 0.6           /* a run's beats within 0.6-1/0.6 x their median height */
#define LAG_STEP_MS 8            /* the alignment climbs in lag steps this long, then refines */

static int64_t ms_to_samples(double fs, int ms)
{
    return (int64_t)floor(fs * ms / 1000.0 + 0.5);
}

/* The sliding window must hold 2 * half window + 1 samples at the highest rate. */
typedef char timing_within_half_window[BCG_JPEAK_TIMING_MS <= BCG_JPEAK_HALF_WINDOW_MS ? 1 : -1];
typedef char swing_within_half_window[BCG_JPEAK_SWING_MS <= BCG_JPEAK_HALF_WINDOW_MS ? 1 : -1];
/* The ring of recent samples holds what the candidate window reads, and what
 * the alignment of a beat reported on time (after refractory + half window)
 * reads: the template span and the search before the beat. */
typedef char recent_cap_is_enough[(BCG_JPEAK_RECENT_CAP >= BCG_JPEAK_WINDOW_CAP) &&
                                          (BCG_JPEAK_RECENT_CAP >=
                                           BCG_JPEAK_MAX_FS *
                                                   (BCG_JPEAK_REFRACTORY_MS +
                                                    BCG_JPEAK_HALF_WINDOW_MS +
                                                    BCG_JPEAK_TEMPLATE_BEFORE_MS +
                                                    BCG_JPEAK_ALIGN_MS) /
                                                   1000 +
                                               2) &&
                                          (BCG_JPEAK_RECENT_CAP & (BCG_JPEAK_RECENT_CAP - 1)) == 0
                                      ? 1
                                      : -1];
typedef char window_cap_is_enough[(BCG_JPEAK_WINDOW_CAP >= 2 * BCG_JPEAK_MAX_FS *
                                                                 BCG_JPEAK_HALF_WINDOW_MS / 1000 +
                                                             1) &&
                                          (BCG_JPEAK_WINDOW_CAP & (BCG_JPEAK_WINDOW_CAP - 1)) == 0
                                      ? 1
                                      : -1];

void bcg_jpeak_reset(bcg_jpeak *st)
{
    if (st == NULL)
        return;
    double fs = st->fs;
    memset(st, 0, sizeof *st);
    st->fs = fs;
    st->half_window = ms_to_samples(fs, BCG_JPEAK_HALF_WINDOW_MS);
    if (st->half_window < 1)
        st->half_window = 1;
    st->refractory = ms_to_samples(fs, BCG_JPEAK_REFRACTORY_MS);
    st->learn = ms_to_samples(fs, BCG_JPEAK_LEARN_MS);
    st->learn_max = ms_to_samples(fs, BCG_JPEAK_LEARN_MAX_MS);
    st->max_ibi = ms_to_samples(fs, 2000);
    st->silence = 3 * st->max_ibi / 2;
    st->swing = ms_to_samples(fs, BCG_JPEAK_SWING_MS);
    st->timing = ms_to_samples(fs, BCG_JPEAK_TIMING_MS);
    st->learning = 1;
    st->last_beat = -1;
    st->prev_beat = -1;
    st->pending = -1;
    st->last_reported = -1;
    /* Template points: every templ_step-th sample, as few steps as fit the cap. */
    int64_t before = ms_to_samples(fs, BCG_JPEAK_TEMPLATE_BEFORE_MS);
    int64_t after = ms_to_samples(fs, BCG_JPEAK_TEMPLATE_AFTER_MS);
    int64_t step = 1;
    while (before / step + after / step + 1 > BCG_JPEAK_TEMPLATE_CAP)
        step++;
    st->templ_step = step;
    st->templ_before = (int)(before / step);
    st->templ_points = (int)(before / step + after / step + 1);
    st->align = ms_to_samples(fs, BCG_JPEAK_ALIGN_MS);
    st->lag_step = ms_to_samples(fs, LAG_STEP_MS);
    if (st->lag_step < 1)
        st->lag_step = 1;
}

bcg_status bcg_jpeak_init(bcg_jpeak *st, double fs)
{
    if (st == NULL)
        return BCG_ERR_NULL;
    if (!isfinite(fs) || fs < BCG_JPEAK_MIN_FS || fs > BCG_JPEAK_MAX_FS)
        return BCG_ERR_FS;
    st->fs = fs;
    bcg_jpeak_reset(st);
    return BCG_OK;
}

size_t bcg_jpeak_max_beats(const bcg_jpeak *st, size_t n)
{
    /* Reported beats are at least BCG_JPEAK_MIN_SPACING_MS apart and at most
     * learn_max + 2 * max_ibi + refractory + half_window samples old. */
    if (st == NULL || st->refractory < 1)
        return SIZE_MAX; /* NULL or not initialised: no buffer is big enough (bcg_dsp.h) */
    size_t latency = (size_t)(st->learn_max + 2 * st->max_ibi + st->refractory + st->half_window);
    size_t spacing = (size_t)ms_to_samples(st->fs, BCG_JPEAK_MIN_SPACING_MS);
    if (spacing < 1)
        spacing = 1;
    return n / spacing + latency / spacing + 4; /* no overflow for any n */
}

/* Median of v[0..n-1], n >= 1; sorts v in place (insertion sort: n is small). */
static double median_of(double *v, int n)
{
    for (int i = 1; i < n; i++) {
        double x = v[i];
        int j = i;
        while (j > 0 && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
    return (n % 2) ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Recompute the cached median interval after the interval ring changed. */
static void update_interval(bcg_jpeak *st)
{
    double v[BCG_JPEAK_IBI_CAP];
    int n = st->ibi_len;
    for (int i = 0; i < n; i++)
        v[i] = (double)st->ibi[(st->ibi_head + i) % BCG_JPEAK_IBI_CAP];
    st->interval = n == 0 ? 0.0 : median_of(v, n);
}

double bcg_jpeak_interval(const bcg_jpeak *st)
{
    return (st == NULL || st->fs <= 0) ? 0.0 : st->interval / st->fs;
}

/* Median beat interval in samples, 0 when unknown. */
static double interval_samples(const bcg_jpeak *st)
{
    return st->interval;
}

static double threshold(const bcg_jpeak *st)
{
    return st->noise_level + THRESHOLD_FRACTION * (st->signal_level - st->noise_level);
}

/*
 * The height a peak contributes to the running levels: capped, so that the
 * huge peaks of a movement cannot inflate the levels (and the threshold)
 * for long after it. A noise peak counts at most as the signal level.
 */
static double level_height(const bcg_jpeak *st, double height, double cap_ratio)
{
    double cap = cap_ratio * st->signal_level;
    return (st->signal_level > 0 && height > cap) ? cap : height;
}

static void add_noise_peak(bcg_jpeak *st, double height)
{
    st->noise_level += LEVEL_RATE * (level_height(st, height, 1.0) - st->noise_level);
}

/*
 * An interval as the rhythm estimate may hold it: within the refractory
 * period and the longest interval (30-200 bpm). A beat moved to its earlier
 * wave, or a re-lock that scales the remembered intervals, can step outside;
 * the median must not (the rate and every timer derive from it).
 */
static int64_t rhythm_interval(const bcg_jpeak *st, int64_t ibi)
{
    return ibi < st->refractory ? st->refractory : ibi > st->max_ibi ? st->max_ibi : ibi;
}

static void push_interval(bcg_jpeak *st, int64_t ibi)
{
    st->ibi[(st->ibi_head + st->ibi_len) % BCG_JPEAK_IBI_CAP] = rhythm_interval(st, ibi);
    if (st->ibi_len < BCG_JPEAK_IBI_CAP)
        st->ibi_len++;
    else
        st->ibi_head = (st->ibi_head + 1) % BCG_JPEAK_IBI_CAP;
    update_interval(st);
}

static void pop_interval(bcg_jpeak *st)
{
    if (st->ibi_len > 0)
        st->ibi_len--;
    update_interval(st);
}

/* Output buffer of one process/flush call. */
typedef struct {
    int64_t *beats;
    size_t n;
    size_t cap; /* the caller's buffer; bcg_jpeak_max_beats keeps n below it */
} beat_sink;

static void report(beat_sink *out, int64_t index)
{
    if (out->n < out->cap) /* always, by the bound; never write past the buffer */
        out->beats[out->n++] = index;
}

/* True when the samples first..last have been seen and are still in the ring. */
static int in_ring(const bcg_jpeak *st, int64_t first, int64_t last)
{
    int64_t newest = st->n - 1;
    return first >= 0 && first > newest - BCG_JPEAK_RECENT_CAP && last <= newest;
}

/* Samples of the template span before and after the beat. */
static int64_t templ_span_before(const bcg_jpeak *st)
{
    return (int64_t)st->templ_before * st->templ_step;
}

static int64_t templ_span_after(const bcg_jpeak *st)
{
    return (int64_t)(st->templ_points - 1 - st->templ_before) * st->templ_step;
}

/* The correlation of the template with the waveform whose template span
 * starts at seg[0]. */
static double fit(const bcg_jpeak *st, const double *seg)
{
    const int64_t step = st->templ_step;
    const double *t = st->templ;
    const int points = st->templ_points;
    /* Four partial sums: four independent chains of additions, not one long
     * one whose latency would bound the loop. */
    double sum0 = 0.0, sum1 = 0.0, sum2 = 0.0, sum3 = 0.0;
    int k = 0;
    for (; k + 4 <= points; k += 4) {
        const double *s = seg + k * step;
        sum0 += t[k] * s[0];
        sum1 += t[k + 1] * s[step];
        sum2 += t[k + 2] * s[2 * step];
        sum3 += t[k + 3] * s[3 * step];
    }
    for (; k < points; k++)
        sum0 += t[k] * seg[k * step];
    return (sum0 + sum1) + (sum2 + sum3);
}

/*
 * The beat position in lo..hi, near `start`, whose waveform correlates best
 * with the template; the samples from lo - span before to hi + span after
 * must be in_ring(). The correlation of a band-passed beat changes slowly
 * with the lag and has one peak within +-BCG_JPEAK_ALIGN_MS, so it is
 * climbed from the candidate time in steps of LAG_STEP_MS while it grows,
 * then the lags between the top and its neighbours are tried (the earliest
 * wins a tie): 5 to 7 fits for most beats instead of one per lag.
 */
static int64_t best_alignment(const bcg_jpeak *st, int64_t lo, int64_t hi, int64_t start)
{
    const int64_t rmask = BCG_JPEAK_RECENT_CAP - 1;
    const int64_t step = st->templ_step, lag_step = st->lag_step;
    /* The samples read, in a straight line so the fit needs no ring
     * arithmetic: in place when they do not wrap around the ring's end
     * (most beats), else a copy; it fits, as the caller checked them with
     * in_ring(). */
    double copy[BCG_JPEAK_RECENT_CAP];
    int64_t first = lo - templ_span_before(st);
    int64_t n = hi - lo + (int64_t)(st->templ_points - 1) * step + 1;
    const double *seg = st->recent + (first & rmask);
    if ((first & rmask) + n > BCG_JPEAK_RECENT_CAP) {
        for (int64_t q = 0; q < n; q++)
            copy[q] = st->recent[(first + q) & rmask];
        seg = copy;
    }
    int64_t best = start < lo ? lo : start > hi ? hi : start;
    double best_fit = fit(st, seg + (best - lo));
    for (;;) { /* climb */
        int64_t next = best;
        double next_fit = best_fit;
        for (int64_t c = best - lag_step; c <= best + lag_step; c += 2 * lag_step) {
            if (c < lo || c > hi)
                continue;
            double f = fit(st, seg + (c - lo));
            if (f > next_fit) {
                next_fit = f;
                next = c;
            }
        }
        if (next == best)
            break;
        best = next;
        best_fit = next_fit;
    }
    int64_t top = best;
    int64_t from = top - lag_step + 1 > lo ? top - lag_step + 1 : lo;
    int64_t to = top + lag_step - 1 < hi ? top + lag_step - 1 : hi;
    for (int64_t c = from; c <= to; c++) {
        double f = c == top ? best_fit : fit(st, seg + (c - lo));
        if (f > best_fit || (f == best_fit && c < best)) {
            best_fit = f;
            best = c;
        }
    }
    return best;
}

/* The reported time of a beat decided at `index` (see bcg_dsp.h: template
 * alignment), never closer than the minimum spacing to the last one. */
static int64_t aligned_time(const bcg_jpeak *st, int64_t index)
{
    int64_t lo = index - st->align, hi = index + st->align;
    if (st->last_reported >= 0) {
        int64_t earliest = st->last_reported + ms_to_samples(st->fs, BCG_JPEAK_MIN_SPACING_MS);
        lo = lo > earliest ? lo : earliest;
        hi = hi > lo ? hi : lo;
        index = index > earliest ? index : earliest;
    }
    if (st->templ_beats == 0 || !in_ring(st, lo - templ_span_before(st), hi + templ_span_after(st)))
        return index;
    return best_alignment(st, lo, hi, index);
}

/*
 * A confident beat (no artifact, reported on the rhythm) joins the template
 * with its waveform around its candidate time `index`, not around the aligned
 * time: aligned waveforms would let the template (and every reported time
 * with it) wander off the J-wave, since nothing would tie it to the peaks.
 */
static void learn_template(bcg_jpeak *st, int64_t index, int64_t at)
{
    double rr = interval_samples(st);
    if (rr <= 0 || st->last_reported < 0 || st->last_was_artifact ||
        fabs((double)(at - st->last_reported) - rr) > OFF_RHYTHM * rr ||
        !in_ring(st, index - templ_span_before(st), index + templ_span_after(st)))
        return;
    const int64_t rmask = BCG_JPEAK_RECENT_CAP - 1;
    int64_t first = index - templ_span_before(st);
    double rate = st->templ_beats == 0 ? 1.0 : TEMPLATE_RATE;
    for (int k = 0; k < st->templ_points; k++) {
        double v = st->recent[(first + k * st->templ_step) & rmask];
        st->templ[k] += rate * (v - st->templ[k]);
    }
    if (st->templ_beats < 1000000)
        st->templ_beats++;
}

/* Report the pending beat (st->pending, which is st->last_beat) at its aligned time. */
static void report_pending(bcg_jpeak *st, beat_sink *out)
{
    int64_t at = aligned_time(st, st->pending);
    report(out, at);
    learn_template(st, st->pending, at);
    st->last_reported = at;
}

/* Drop candidates at or before index (they can no longer become beats). */
static void drop_candidates_until(bcg_jpeak *st, int64_t index)
{
    while (st->cand_len > 0 && st->cand[st->cand_head].index <= index) {
        st->cand_head = (st->cand_head + 1) % BCG_JPEAK_CAND_CAP;
        st->cand_len--;
    }
}

/* True when the remembered beat heights alternate big-small throughout, each
 * small one below `ratio` x its neighbours. */
static int heights_alternate(const bcg_jpeak *st, double ratio)
{
    if (st->n_heights < BCG_JPEAK_HEIGHT_CAP)
        return 0;
    const double *h = st->heights;
    int small_first = h[0] < h[1];
    for (int k = 0; k < BCG_JPEAK_HEIGHT_CAP; k++) {
        int small = ((k % 2) == 0) == small_first;
        if (!small)
            continue;
        double neighbour = (k == 0) ? h[1]
                         : (k == BCG_JPEAK_HEIGHT_CAP - 1) ? h[k - 1]
                         : fmin(h[k - 1], h[k + 1]);
        if (h[k] >= ratio * neighbour)
            return 0;
    }
    return 1;
}

/*
 * True when the remembered beats pair up: the intervals ending at the small
 * beats all lie on one side of those ending at the big ones (each at most
 * PAIRED_INTERVAL_RATIO x the other kind). At double rate on a diastolic wave
 * they do (J to D is not D to J); a true rhythm with beats that happen to
 * alternate in height does not also alternate in timing, beat after beat.
 */
static int intervals_pair_up(const bcg_jpeak *st)
{
    if (st->n_heights < BCG_JPEAK_HEIGHT_CAP)
        return 0;
    int small_first = st->heights[0] < st->heights[1];
    double to_small_min = INFINITY, to_small_max = 0, to_big_min = INFINITY, to_big_max = 0;
    for (int k = 1; k < BCG_JPEAK_HEIGHT_CAP; k++) {
        double ibi = (double)(st->beat_at[k] - st->beat_at[k - 1]);
        int small = ((k % 2) == 0) == small_first;
        if (small) {
            to_small_min = fmin(to_small_min, ibi);
            to_small_max = fmax(to_small_max, ibi);
        } else {
            to_big_min = fmin(to_big_min, ibi);
            to_big_max = fmax(to_big_max, ibi);
        }
    }
    return to_small_max <= PAIRED_INTERVAL_RATIO * to_big_min ||
           to_big_max <= PAIRED_INTERVAL_RATIO * to_small_min;
}

/* Locked at double rate on the secondary waves: the heights alternate
 * clearly, or somewhat and the intervals pair up with them. */
static int double_rate_lock(const bcg_jpeak *st)
{
    return heights_alternate(st, ALTERNATION_RATIO) ||
           (heights_alternate(st, PAIRED_ALTERNATION_RATIO) && intervals_pair_up(st));
}

static void remember_height(bcg_jpeak *st, int64_t index, double height)
{
    if (st->n_heights == BCG_JPEAK_HEIGHT_CAP) {
        memmove(st->heights, st->heights + 1, sizeof(double) * (BCG_JPEAK_HEIGHT_CAP - 1));
        memmove(st->beat_at, st->beat_at + 1, sizeof(int64_t) * (BCG_JPEAK_HEIGHT_CAP - 1));
        st->n_heights--;
    }
    st->heights[st->n_heights] = height;
    st->beat_at[st->n_heights++] = index;
}

/*
 * Locked at double rate (every other beat a secondary wave): from now on
 * count intervals between the big beats, and drop the newest beat if it is
 * a small one (it is still pending).
 */
static void relock_to_half_rate(bcg_jpeak *st)
{
    const double *h = st->heights;
    int newest_small = h[BCG_JPEAK_HEIGHT_CAP - 1] < h[BCG_JPEAK_HEIGHT_CAP - 2];
    for (int i = 0; i < BCG_JPEAK_IBI_CAP; i++)
        st->ibi[i] = rhythm_interval(st, 2 * st->ibi[i]);
    update_interval(st);
    if (newest_small && st->pending == st->last_beat && st->prev_beat >= 0) {
        if (st->last_ibi_counted)
            pop_interval(st); /* the doubled interval ending at the dropped beat */
        st->pending = -1;
        st->last_beat = st->prev_beat;
        st->prev_beat = -1;
        st->last_height = h[BCG_JPEAK_HEIGHT_CAP - 2];
        st->last_ibi_counted = 0;
    }
    st->n_heights = 0;
}

static const bcg_jpeak_candidate *candidate_at(const bcg_jpeak *st, int i)
{
    return &st->cand[(st->cand_head + i) % BCG_JPEAK_CAND_CAP];
}

/*
 * The band-pass rings after the deep K-wave, so the L-wave 150 ms after the
 * J-wave can be the higher peak; at fast rates a detector on the L-wave
 * stays there (the next J-wave falls in its refractory period). The beat is
 * the J-wave: an earlier candidate 100-200 ms before the accepted peak,
 * almost as high, and far enough from the last beat, replaces it.
 */
static void prefer_earlier_wave(const bcg_jpeak *st, int64_t *index, double *height)
{
    int64_t lo = *index - ms_to_samples(st->fs, EARLIER_WAVE_MAX_MS);
    int64_t hi = *index - ms_to_samples(st->fs, EARLIER_WAVE_MIN_MS);
    double gap = fmax(EARLIER_WAVE_GAP * interval_samples(st),
                      (double)ms_to_samples(st->fs, BCG_JPEAK_MIN_SPACING_MS));
    for (int i = 0; i < st->cand_len; i++) { /* oldest first: the earliest wins */
        const bcg_jpeak_candidate *c = candidate_at(st, i);
        if (c->index >= lo && c->index <= hi && c->height >= EARLIER_WAVE_FRACTION * *height &&
            (st->last_beat < 0 || (double)(c->index - st->last_beat) >= gap)) {
            *index = c->index;
            *height = c->height;
            return;
        }
    }
}

/*
 * The last beats far above the signal level (whatever smaller ones lie
 * between: at a decayed level, noise passes too), if they follow one another
 * in a steady rhythm and are of like heights, are the heart at a new
 * amplitude (a person back in bed after the levels decayed in the empty bed,
 * a stronger posture), not movement, which is neither steady nor alike.
 * Learning it at the artifact rate would take some 150 beats from a tenfold
 * change, with the rhythm estimate stale all the while (artifacts add no
 * intervals): learn level and rhythm from the run at once. Returns 1 when it
 * did.
 */
static int relearn_from_tall_run(bcg_jpeak *st, int64_t index, double height)
{
    int n = st->tall_len;
    if (n == BCG_JPEAK_TALL_RUN) { /* full: drop the oldest */
        memmove(st->tall_at, st->tall_at + 1, (size_t)(n - 1) * sizeof st->tall_at[0]);
        memmove(st->tall_height, st->tall_height + 1, (size_t)(n - 1) * sizeof st->tall_height[0]);
        n--;
    }
    st->tall_at[n] = index;
    st->tall_height[n] = height;
    st->tall_len = ++n;
    if (n < BCG_JPEAK_TALL_RUN)
        return 0;
    double heights[BCG_JPEAK_TALL_RUN], ibis[BCG_JPEAK_TALL_RUN - 1];
    for (int i = 0; i < n; i++) {
        heights[i] = st->tall_height[i];
        if (i > 0)
            ibis[i - 1] = (double)(st->tall_at[i] - st->tall_at[i - 1]);
    }
    double height_median = median_of(heights, n); /* sorts: min first, max last */
    if (heights[0] < TALL_ALIKE * height_median || TALL_ALIKE * heights[n - 1] > height_median)
        return 0;
    double ibi_median = median_of(ibis, n - 1);
    if (ibis[0] < (1.0 - OFF_RHYTHM) * ibi_median ||
        ibis[n - 2] > (1.0 + OFF_RHYTHM) * ibi_median || ibis[0] < (double)st->refractory ||
        ibis[n - 2] > (double)st->max_ibi)
        return 0;
    st->signal_level = height_median;
    st->ibi_head = 0;
    st->ibi_len = 0;
    for (int i = 1; i < n; i++)
        st->ibi[st->ibi_len++] = st->tall_at[i] - st->tall_at[i - 1];
    update_interval(st);
    st->tall_len = 0;
    st->n_heights = 0;
    return 1;
}

static void accept(bcg_jpeak *st, beat_sink *out, int64_t index, double height, double rate)
{
    prefer_earlier_wave(st, &index, &height);
    if (st->pending >= 0)
        report_pending(st, out);
    /* A peak far above the signal level is a movement artifact: intervals
     * from or to it would corrupt the rhythm that must hold after it. */
    int artifact = st->signal_level > 0 && height > ARTIFACT_RATIO * st->signal_level;
    if (artifact && relearn_from_tall_run(st, index, height))
        artifact = 0; /* the level is the run's now; its intervals are the rhythm */
    st->last_ibi_counted = 0;
    if (st->last_beat >= 0 && index - st->last_beat <= st->max_ibi && !artifact &&
        !st->last_was_artifact) {
        push_interval(st, index - st->last_beat);
        st->last_ibi_counted = 1;
    }
    st->last_was_artifact = artifact;
    st->prev_beat = st->last_beat;
    st->last_beat = index;
    st->pending = index;
    st->last_height = height;
    /* An artifact teaches the level slowly, so that a lasting change of
     * amplitude (a new posture) is still learned within some 20 beats. */
    if (artifact)
        rate = ARTIFACT_RATE;
    st->signal_level += rate * (level_height(st, height, ARTIFACT_RATIO) - st->signal_level);
    drop_candidates_until(st, index);
    remember_height(st, index, height);
    /* Never re-lock below 30 bpm: at low rates breathing can make every other
     * beat smaller, which must not halve the rate. */
    if (double_rate_lock(st) && 2.0 * interval_samples(st) <= (double)st->max_ibi)
        relock_to_half_rate(st);
}

/* A higher peak inside the refractory period takes the place of the last
 * beat, which is still pending (not yet reported) by construction. */
static void replace_last(bcg_jpeak *st, beat_sink *out, int64_t index, double height)
{
    if (st->last_ibi_counted)
        pop_interval(st);
    if (st->n_heights > 0)
        st->n_heights--;
    st->last_beat = st->prev_beat;
    st->pending = -1;
    accept(st, out, index, height, LEVEL_RATE);
}

/*
 * An on-time candidate while an early (tentative) one waits: if it is
 * plausible it wins and the tentative one was a secondary wave, unless such
 * "secondary" waves keep matching the beats in height halfway between them,
 * i.e. we are locked at half the rate. An implausible one is noise, and the
 * tentative beat waits for its timer (check_timers).
 */
static void judge_against_tentative(bcg_jpeak *st, beat_sink *out, int64_t index, double height)
{
    bcg_jpeak_candidate t = st->tentative;
    if (height < PLAUSIBLE_FRACTION * t.height || height < 0.5 * threshold(st)) {
        add_noise_peak(st, height);
        return;
    }
    st->has_tentative = 0;
    /* Evidence of a half-rate lock: mid-interval peaks about as high as the
     * beats, on average over the run (true beats vary with breathing; a
     * diastolic wave is clearly lower on average), and in the middle: two
     * true intervals differ by less than 20 % (a diastolic wave often sits at
     * 0.4 of the interval and can be as high). Peaks a third of the way
     * (or two thirds) are the evidence of a lock at a third of the rate: the
     * tentative one is the higher of the two beats skipped. */
    double mid = (double)(t.index - st->last_beat) / (double)(index - st->last_beat);
    double near = fmin(mid, 1.0 - mid);
    int parts = 0; /* the lock the evidence is of: 2 = half, 3 = a third of the rate */
    if (near >= HALF_RATE_NEAR)
        parts = 2;
    else if (near >= THIRD_RATE_NEAR && near < THIRD_RATE_FAR)
        parts = 3;
    double ratio = t.height / height;
    int on_grid = parts > 0 && ratio >= HALF_RATE_MIN_HEIGHT && index - t.index >= st->refractory;
    if (on_grid && (st->half_rate_evidence == 0 || parts == st->sub_rate_parts)) {
        st->half_rate_evidence++;
        st->half_rate_ratio += (ratio - st->half_rate_ratio) / st->half_rate_evidence;
        st->sub_rate_parts = parts;
    } else {
        st->half_rate_evidence = on_grid;
        st->half_rate_ratio = on_grid ? ratio : 0.0;
        st->sub_rate_parts = on_grid ? parts : 0;
    }
    if (st->half_rate_evidence >= HALF_RATE_COUNT && st->half_rate_ratio >= HALF_RATE_HEIGHT &&
        interval_samples(st) / st->sub_rate_parts >= (double)st->refractory) { /* <= 200 bpm */
        for (int i = 0; i < BCG_JPEAK_IBI_CAP; i++)
            st->ibi[i] = rhythm_interval(st, st->ibi[i] / st->sub_rate_parts);
        st->half_rate_evidence = 0;
        st->half_rate_ratio = 0.0;
        st->sub_rate_parts = 0;
        update_interval(st);
        accept(st, out, t.index, t.height, LEVEL_RATE);
    } else {
        add_noise_peak(st, t.height);
    }
    accept(st, out, index, height, LEVEL_RATE);
}

/* Decide on one confirmed candidate (a local maximum over +-half_window). */
static void judge(bcg_jpeak *st, beat_sink *out, int64_t index, double height)
{
    if (st->last_beat >= 0 && index - st->last_beat < st->refractory) {
        if (height > REPLACE_RATIO * st->last_height && st->pending == st->last_beat)
            replace_last(st, out, index, height);
        else
            add_noise_peak(st, height);
        return;
    }
    double rr = interval_samples(st);
    /* Tentative: early, or a weak peak somewhat early (noise before a beat). */
    double since = (double)(index - st->last_beat);
    if (rr > 0 && st->last_beat >= 0 &&
        (since < EARLY_FRACTION * rr ||
         (since < WEAK_LATE_FRACTION * rr && height < WEAK_FRACTION * st->signal_level))) {
        if (height >= threshold(st) && (!st->has_tentative || height > st->tentative.height)) {
            if (st->has_tentative)
                add_noise_peak(st, st->tentative.height);
            st->tentative.index = index;
            st->tentative.height = height;
            st->has_tentative = 1;
        } else {
            add_noise_peak(st, height);
        }
        return;
    }
    if (st->has_tentative) {
        judge_against_tentative(st, out, index, height);
        return;
    }
    if (height >= threshold(st))
        accept(st, out, index, height, LEVEL_RATE);
    else
        add_noise_peak(st, height);
}

static void remember_candidate(bcg_jpeak *st, int64_t index, double height)
{
    if (st->cand_len == BCG_JPEAK_CAND_CAP) { /* forget the oldest */
        st->cand_head = (st->cand_head + 1) % BCG_JPEAK_CAND_CAP;
        st->cand_len--;
    }
    bcg_jpeak_candidate *c = &st->cand[(st->cand_head + st->cand_len) % BCG_JPEAK_CAND_CAP];
    c->index = index;
    c->height = height;
    st->cand_len++;
}

static void new_candidate(bcg_jpeak *st, beat_sink *out, int64_t index, double height)
{
    if (height < MIN_SWING)
        return; /* the band-pass's rounding noise on a flat input, never a beat */
    remember_candidate(st, index, height);
    if (!st->learning)
        judge(st, out, index, height);
}

static void check_timers(bcg_jpeak *st, beat_sink *out, int64_t now);

/* The candidates' heights, sorted ascending, into sorted[]; returns their number. */
static int sorted_heights(const bcg_jpeak *st, double *sorted)
{
    int n = st->cand_len;
    for (int i = 0; i < n; i++) { /* insertion sort of at most BCG_JPEAK_CAND_CAP */
        double v = candidate_at(st, i)->height;
        int j = i;
        while (j > 0 && sorted[j - 1] > v) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = v;
    }
    return n;
}

/*
 * The rhythm seed of the learning period: the shortest plausible spacing of
 * its clearly dominant peaks (>= SEED_FRACTION x the highest), 0 if fewer
 * than two. Seeding lets the secondary waves of the learning period be
 * judged as early from the start instead of locking at double rate.
 */
static int64_t learning_seed(const bcg_jpeak *st)
{
    double sorted[BCG_JPEAK_CAND_CAP] = {0};
    int n = sorted_heights(st, sorted);
    if (n == 0)
        return 0;
    double dominant = sorted[n - 1];
    int64_t seed = 0, previous = -1;
    for (int i = 0; i < st->cand_len; i++) {
        const bcg_jpeak_candidate *c = candidate_at(st, i);
        if (c->height < SEED_FRACTION * dominant)
            continue;
        if (previous >= 0) {
            int64_t spacing = c->index - previous;
            if (spacing >= st->refractory && spacing <= st->max_ibi &&
                (seed == 0 || spacing < seed))
                seed = spacing;
        }
        previous = c->index;
    }
    return seed;
}

static void check_timers(bcg_jpeak *st, beat_sink *out, int64_t now);

/*
 * The stream may start inside a beat: its late waves then make the first
 * candidate above the threshold, with nothing before it to show it is early.
 * It is no beat when a clearly higher candidate (it is below WEAK_FRACTION x
 * that one) follows sooner than EARLY_FRACTION x the seeded interval (but
 * after the refractory period). Returns its position in learned[], or -1.
 */
static int first_wave_before_beat(const bcg_jpeak *st, const bcg_jpeak_candidate *learned, int n,
                                  int64_t seed)
{
    if (seed <= 0)
        return -1;
    int first = -1;
    for (int i = 0; i < n && first < 0; i++)
        if (learned[i].height >= threshold(st))
            first = i;
    if (first < 0)
        return -1;
    for (int j = first + 1; j < n; j++) {
        int64_t spacing = learned[j].index - learned[first].index;
        if ((double)spacing >= EARLY_FRACTION * (double)seed)
            break;
        if (spacing >= st->refractory && learned[first].height < WEAK_FRACTION * learned[j].height)
            return first;
    }
    return -1;
}

/* Levels and rhythm seed from the learning period, then judge its
 * candidates in order, with the timers run as they would have run had the
 * levels been known. */
static void end_learning(bcg_jpeak *st, beat_sink *out)
{
    double sorted[BCG_JPEAK_CAND_CAP] = {0};
    int n = sorted_heights(st, sorted);
    st->learning = 0;
    if (n == 0)
        return;
    double median = median_of(sorted, n); /* sorted already */
    st->signal_level = 0.6 * sorted[n - 1];
    st->noise_level = 0.5 * median;
    int64_t seed = learning_seed(st);
    if (seed > 0)
        push_interval(st, seed);
    bcg_jpeak_candidate learned[BCG_JPEAK_CAND_CAP];
    for (int i = 0; i < n; i++)
        learned[i] = *candidate_at(st, i);
    st->cand_len = 0;
    int skip = first_wave_before_beat(st, learned, n, seed);
    for (int i = 0; i < n; i++) {
        check_timers(st, out, learned[i].index + st->half_window + 1);
        if (i == skip)
            add_noise_peak(st, learned[i].height);
        else
            new_candidate(st, out, learned[i].index, learned[i].height);
    }
}

/* Earliest sample count `now` with now - from > after (the timers' test). */
static int64_t deadline(int64_t from, double after)
{
    return from + (int64_t)floor(after) + 1;
}

/*
 * Time-driven decisions; `now` is the number of samples seen (earlier while
 * the learning period is replayed). Runs when a candidate was judged or at
 * st->next_check, the earliest time one of them can fire; in between, nothing
 * they read changes. A search-back that finds nothing is retried only after
 * the next candidate, since only a candidate can change its result.
 */
static void check_timers(bcg_jpeak *st, beat_sink *out, int64_t now)
{
    double rr = interval_samples(st);
    int searched_in_vain = 0;
    if (rr > 0 && st->last_beat >= 0) {
        if (st->has_tentative &&
            (double)(now - st->last_beat) > LATE_FRACTION * rr + (double)st->half_window) {
            st->has_tentative = 0;
            st->half_rate_evidence = 0;
            st->half_rate_ratio = 0.0;
            accept(st, out, st->tentative.index, st->tentative.height, LEVEL_RATE);
        }
        if ((double)(now - st->last_beat) > SEARCHBACK_FRACTION * rr) {
            double floor_height = 0.5 * threshold(st);
            int64_t earliest = st->last_beat + st->refractory;
            if ((double)earliest < (double)st->last_beat + 0.5 * rr)
                earliest = st->last_beat + (int64_t)(0.5 * rr);
            /* Look back at most 2 x the longest interval: after a long silence
             * an old candidate is no beat to report now (and the reporting
             * latency, hence bcg_jpeak_max_beats, stays bounded). */
            if (earliest < now - 2 * st->max_ibi)
                earliest = now - 2 * st->max_ibi;
            int best = -1;
            for (int i = 0; i < st->cand_len; i++) {
                const bcg_jpeak_candidate *c = candidate_at(st, i);
                if (c->index >= earliest && c->height > floor_height &&
                    (best < 0 || c->height > candidate_at(st, best)->height))
                    best = i;
            }
            if (best >= 0) {
                bcg_jpeak_candidate c = *candidate_at(st, best);
                st->has_tentative = 0;
                st->half_rate_evidence = 0;
                st->half_rate_ratio = 0.0;
                accept(st, out, c.index, c.height, SEARCHBACK_RATE);
            } else {
                searched_in_vain = 1;
            }
        }
    }
    /* A long silence (no beat for 1.5 x the longest interval) means the
     * levels are too high for the signal now (a weaker posture, a quieter
     * sensor): halve the signal level, down to twice the noise level. */
    int64_t silent_since = st->last_beat > st->last_decay ? st->last_beat : st->last_decay;
    if (now - silent_since > st->silence) {
        st->signal_level = fmax(SILENCE_DECAY * st->signal_level, 2.0 * st->noise_level);
        st->last_decay = now;
        silent_since = now;
    }
    if (st->pending >= 0 && now - st->pending > st->refractory + st->half_window) {
        report_pending(st, out);
        st->pending = -1;
    }
    rr = interval_samples(st); /* may have changed above */
    int64_t next = silent_since + st->silence + 1;
    if (st->pending >= 0) {
        int64_t t = deadline(st->pending, (double)(st->refractory + st->half_window));
        next = t < next ? t : next;
    }
    if (rr > 0 && st->last_beat >= 0) {
        if (st->has_tentative) {
            int64_t t = deadline(st->last_beat, LATE_FRACTION * rr + (double)st->half_window);
            next = t < next ? t : next;
        }
        if (!searched_in_vain) {
            int64_t t = deadline(st->last_beat, SEARCHBACK_FRACTION * rr);
            next = t < next ? t : next;
        }
    }
    st->next_check = next;
}

/* A candidate's height: the peak at `peak` minus the lowest sample in the
 * swing window after it, among those seen (up to `newest`). */
static double swing(const bcg_jpeak *st, int64_t peak, int64_t newest)
{
    const int mask = BCG_JPEAK_RECENT_CAP - 1;
    double top = st->recent[peak & mask], trough = top;
    int64_t last = peak + st->swing < newest ? peak + st->swing : newest;
    for (int64_t q = peak + 1; q <= last; q++) { /* samples are finite: no fmin call */
        double v = st->recent[q & mask];
        trough = v < trough ? v : trough;
    }
    return top - trough;
}

/*
 * A candidate's time: the centre of the BCG_JPEAK_TIMING_MS stretch with the
 * largest sum within +-BCG_JPEAK_TIMING_MS / 2 of the peak, among the samples
 * seen (up to `newest`). Noise moves the single highest sample more than it
 * moves that stretch: beat intervals jitter less.
 */
static int64_t timing(const bcg_jpeak *st, int64_t peak, int64_t newest)
{
    const int mask = BCG_JPEAK_RECENT_CAP - 1;
    int64_t half = st->timing / 2;
    /* The stretches centred on peak - half .. peak + half, each [c - half, c + half],
     * as far as the ring holds them and they have been seen. */
    int64_t first = peak - half, last = peak + half;
    if (first - half < 0)
        first = half;
    if (first - half < newest - mask)
        first = newest - mask + half;
    if (last + half > newest)
        last = newest - half;
    if (first > last)
        return peak;
    double sum = 0.0;
    for (int64_t q = first - half; q <= first + half; q++)
        sum += st->recent[q & mask];
    int64_t best = first;
    double best_sum = sum;
    for (int64_t c = first + 1; c <= last; c++) { /* slide by one sample */
        sum += st->recent[(c + half) & mask] - st->recent[(c - half - 1) & mask];
        if (sum > best_sum) {
            best_sum = sum;
            best = c;
        }
    }
    return best;
}

/*
 * The first sample count at or after `i` at which a sample of the window
 * deque can be judged (a local maximum at e is judged at e + half window,
 * when the window centred on it is complete), INT64_MAX when none can.
 */
static int64_t next_judgement(const bcg_jpeak *st, int64_t i)
{
    const int mask = BCG_JPEAK_WINDOW_CAP - 1;
    for (int k = 0; k < st->win_len; k++) { /* by index, oldest first: the first in time wins */
        int64_t at = st->win_index[(st->win_head + k) & mask] + st->half_window;
        if (at >= i)
            return at;
    }
    return INT64_MAX;
}

/* Drop the samples before the window ending at sample i from the deque's front. */
static void trim_window(bcg_jpeak *st, int64_t i)
{
    const int mask = BCG_JPEAK_WINDOW_CAP - 1;
    while (st->win_len > 0 && st->win_index[st->win_head] < i - 2 * st->half_window) {
        st->win_head = (st->win_head + 1) & mask;
        st->win_len--;
    }
}

/* The sample i at which the slow path of push_samples() is next due: sample
 * count i + 1 reaches next_check or, while learning, its end may come. */
static int64_t slow_path_due(const bcg_jpeak *st, int64_t i)
{
    if (!st->learning)
        return st->next_check - 1;
    return st->learn - 1 > i ? st->learn - 1 : i;
}

/*
 * The rare part of push_samples() for sample i (value v): the local maximum
 * `top` at i - 1 enters the deque when `peak`; at an event (i >= *judge_at
 * or the slow path is due) the candidate test and the decision logic run.
 * Returns the next event. A function of its own, so the hot loop keeps its
 * few values in registers.
 */
static int64_t rare_sample(bcg_jpeak *st, beat_sink *out, int64_t i, double v, double top,
                           int peak, int64_t *judge_at)
{
    const int mask = BCG_JPEAK_WINDOW_CAP - 1;
    const int64_t half = st->half_window, span = 2 * half;
    if (peak && i >= 2) {
        while (st->win_len > 0 && st->win_value[(st->win_head + st->win_len - 1) & mask] <= top)
            st->win_len--;
        /* The front may hold samples already out of the window (it is
         * trimmed only here and at events), so the deque never outgrows it. */
        trim_window(st, i);
        int tail = (st->win_head + st->win_len) & mask;
        st->win_index[tail] = i - 1;
        st->win_value[tail] = top;
        st->win_len++;
        /* Its time is the next judgement unless an earlier one is pending. */
        if (*judge_at < i || *judge_at > i - 1 + half)
            *judge_at = i - 1 + half;
    }
    if (i >= *judge_at || i >= slow_path_due(st, i)) {
        trim_window(st, i);
        int64_t centre = i - half;
        int head = st->win_head;
        /* A candidate: the largest in [centre - half, centre + half], later
         * equal samples winning, as the deque's front beats both edges. */
        int judged = centre >= half && st->win_len > 0 && st->win_index[head] == centre &&
                     v < st->win_value[head] &&
                     st->recent[(i - span) & (BCG_JPEAK_RECENT_CAP - 1)] <= st->win_value[head];
        int64_t seen = i + 1;
        st->n = seen;
        if (judged)
            new_candidate(st, out, timing(st, centre, i), swing(st, centre, i));
        /* Learning lasts BCG_JPEAK_LEARN_MS, longer (up to
         * BCG_JPEAK_LEARN_MAX_MS) until two dominant peaks set the seed. */
        if (st->learning && seen >= st->learn && (seen >= st->learn_max || learning_seed(st) > 0)) {
            end_learning(st, out);
            judged = 1;
        }
        if (!st->learning && (judged || seen >= st->next_check))
            check_timers(st, out, seen);
        if (*judge_at <= i)
            *judge_at = next_judgement(st, i + 1);
        int64_t due = slow_path_due(st, i + 1);
        return *judge_at < due ? *judge_at : due;
    }
    int64_t due = slow_path_due(st, i);
    return *judge_at < due ? *judge_at : due;
}

/*
 * The per-sample loop. A sliding-window maximum (monotonic deque of the
 * local maxima) finds the candidates: a sample is one when it is the maximum
 * of the window centred on it, which is decided half a window after a local
 * maximum entered the deque. So the per-sample work is storing the sample
 * and the local-maximum test; the deque, the candidate test and the decision
 * logic run (rare_sample) only at a local maximum or at an event, a sample
 * count where they can change something: a local maximum's judgement time,
 * a timer (st->next_check), the end of learning. In between, testing every
 * sample would find nothing (a candidate is the deque's front at its centre,
 * a local maximum whose time has come): the beats are the same bit for bit.
 */
static void push_samples(bcg_jpeak *st, beat_sink *out, const double *y, size_t n)
{
    const int rmask = BCG_JPEAK_RECENT_CAP - 1;
    double *recent = st->recent;
    int64_t i = st->n;
    if (n == 0)
        return;
    /* The two samples before i, in registers rather than read from the ring. */
    double prev = i >= 1 ? recent[(i - 1) & rmask] : 0.0;
    double prev2 = i >= 2 ? recent[(i - 2) & rmask] : 0.0;
    int64_t judge_at = next_judgement(st, i);
    int64_t due = slow_path_due(st, i);
    /* One counter in the loop: sample i is base + k, events are counted in k. */
    const int64_t base = i;
    int64_t event = (judge_at < due ? judge_at : due) - base;
    for (int64_t k = 0; k < (int64_t)n; k++) {
        double v = y[k];
        recent[(base + k) & rmask] = v;
        /* Sample i - 1 is a local maximum (the last sample of a plateau) when
         * y[i-2] <= y[i-1] > y[i]. Only local maxima enter the window's
         * monotonic deque: the window's maximum is one of them or an edge.
         * (& not &&: one branch, rarely taken.) */
        int peak = (prev > v) & (prev >= prev2);
        double top = prev;
        prev2 = prev;
        prev = v;
        if (peak | (k >= event))
            event = rare_sample(st, out, base + k, v, top, peak, &judge_at) - base;
    }
    i = base + (int64_t)n;
    /* The front trimmed as testing every sample would have left it. */
    trim_window(st, i - 1);
    st->n = i;
}

bcg_status bcg_jpeak_process(bcg_jpeak *st, const double *y, size_t n, int64_t *beats,
                             size_t cap, size_t *n_beats)
{
    if (st == NULL || n_beats == NULL)
        return BCG_ERR_NULL;
    *n_beats = 0;
    if ((y == NULL && n > 0) || (beats == NULL && cap > 0))
        return BCG_ERR_NULL;
    if (cap < bcg_jpeak_max_beats(st, n))
        return BCG_ERR_CAPACITY;
    if (!bcg_samples_valid(y, n))
        return BCG_ERR_PARAM;
    beat_sink out = {beats, 0, cap};
    push_samples(st, &out, y, n);
    *n_beats = out.n;
    return BCG_OK;
}

bcg_status bcg_jpeak_flush(bcg_jpeak *st, int64_t *beats, size_t cap, size_t *n_beats)
{
    if (st == NULL || n_beats == NULL)
        return BCG_ERR_NULL;
    *n_beats = 0;
    if (beats == NULL && cap > 0)
        return BCG_ERR_NULL;
    if (cap < bcg_jpeak_max_beats(st, 0))
        return BCG_ERR_CAPACITY;
    beat_sink out = {beats, 0, cap};
    /* The window maximum, if it lies in the unconfirmed last half window
     * and is not the last sample (a rising edge), is the last candidate. */
    if (st->win_len > 0) {
        const int mask = BCG_JPEAK_RECENT_CAP - 1;
        int64_t idx = st->win_index[st->win_head], newest = st->n - 1;
        double top = st->win_value[st->win_head];
        int64_t oldest = newest - 2 * st->half_window;
        if (idx >= st->n - st->half_window && idx < newest && idx >= st->half_window &&
            top > st->recent[newest & mask] && (oldest < 0 || st->recent[oldest & mask] <= top))
            new_candidate(st, &out, timing(st, idx, newest), swing(st, idx, newest));
    }
    if (st->learning)
        end_learning(st, &out);
    check_timers(st, &out, st->n);
    /* A tentative (early) beat still waiting for its timer is dropped: the
     * stream ended before it could be told from a secondary wave. */
    if (st->pending >= 0)
        report_pending(st, &out);
    *n_beats = out.n;
    bcg_jpeak_reset(st);
    return BCG_OK;
}
