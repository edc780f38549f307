/*
 * bcg_dsp.h - signal processing core of the bedside BCG unit.
 *
 * Conventions (after CMSIS-DSP and liquid-dsp):
 *  - every object is a state struct owned by the caller (stack, static or
 *    embedded); the library never allocates and keeps no globals; the state
 *    pointer is the first parameter of each of its functions and is named st;
 *  - bcg_<obj>_init() checks every argument once and returns a bcg_status;
 *    bcg_<obj>_process() only computes; bcg_<obj>_reset() returns the object
 *    to its state just after init (st == NULL: does nothing);
 *  - every init, process and flush function returns a bcg_status, the first
 *    failing check in this order: NULL pointers (st and the output counts,
 *    which are then set to 0; then the input with n > 0 and output buffers
 *    with a capacity > 0: a NULL buffer of capacity 0 is fine), parameters
 *    (fs before the band edges that depend on it), output capacity
 *    (BCG_ERR_CAPACITY), sample values (BCG_ERR_PARAM). A process or flush
 *    call that fails consumes nothing and leaves the state unchanged;
 *  - capacity queries (bcg_jpeak_max_beats, bcg_resp_max_out,
 *    bcg_motion_max_windows) return SIZE_MAX for a NULL or not initialised
 *    (zeroed) object. That is the safe answer: no buffer is that big, so a
 *    process call on such an object fails (BCG_ERR_NULL or BCG_ERR_CAPACITY)
 *    instead of running on a state without a design, and a caller sizing a
 *    buffer from it fails to allocate; 0 would pass every capacity check;
 *  - samples are double, in whatever unit the caller uses (ADC counts, volts);
 *    sample indices are int64_t counted from the first sample since init/reset;
 *  - frequencies are in Hz, times in seconds, sampling rates in samples/s.
 *
 * The header is also the cffi declaration source (dsp_c/build_ffi.py): keep
 * struct definitions in the "typedef struct name { ... } name;" form and
 * constants as plain integer #defines.
 */
#ifndef BCG_DSP_H
#define BCG_DSP_H

#include <stddef.h>
#include <stdint.h>

/* ---- status codes ------------------------------------------------------ */

typedef enum {
    BCG_OK = 0,
    BCG_ERR_NULL = 1,      /* a required pointer argument is NULL */
    BCG_ERR_ORDER = 2,     /* filter order outside 1..BCG_MAX_ORDER */
    BCG_ERR_FS = 3,        /* sampling rate not finite or outside BCG_MIN_FS..BCG_MAX_FS */
    BCG_ERR_BAND = 4,      /* band edges not finite or not 0 < low < high < fs/2 */
    BCG_ERR_SECTIONS = 5,  /* section count outside 1..BCG_MAX_SECTIONS */
    BCG_ERR_COEF = 6,      /* a coefficient is not finite, or a0 of a section is not 1 */
    BCG_ERR_CAPACITY = 7,  /* an output buffer is smaller than the documented bound */
    BCG_ERR_PARAM = 8      /* another parameter is outside its documented range */
} bcg_status;

/* A static, human-readable description of a status code (never NULL). */
const char *bcg_strerror(bcg_status status);

/* ---- limits ------------------------------------------------------------ */

#define BCG_MAX_ORDER 8        /* highest Butterworth prototype order */
#define BCG_MAX_SECTIONS 16    /* second-order sections a bcg_sos_filter holds */
#define BCG_MIN_FS 10          /* lowest sampling rate accepted by init (Hz) */
#define BCG_MAX_FS 20000       /* highest sampling rate accepted by init (Hz) */

/* ---- Butterworth band-pass design -------------------------------------- */

/*
 * Design a digital Butterworth band-pass of prototype order `order`
 * (1..BCG_MAX_ORDER) with -3 dB edges low_hz < high_hz inside (0, fs/2).
 * Writes `order` second-order sections into sos (row-major, 6 doubles per
 * section: b0 b1 b2 a0 a1 a2, a0 == 1), as scipy.signal.butter(order,
 * [low_hz, high_hz], 'band', fs=fs, output='sos'), with its section order
 * and gain placement (gain in the first section). `sos` must hold
 * 6 * order doubles; *n_sections receives `order`.
 *
 * Agreement with scipy, each row relative to its largest coefficient
 * (measured against scipy 1.17 on x86-64, tests/dsp_c/test_filters.py):
 *  - ordinary bands: within about 1e-12, same sections in the same order;
 *  - bands symmetric about fs/4 (low_hz + high_hz == fs/2): mirrored pole
 *    pairs have equal magnitude and scipy's section order is then decided by
 *    rounding noise: the same sections, gain and frequency response, possibly
 *    in another order;
 *  - very narrow bands, (high_hz - low_hz) / low_hz below about 1e-6: up to
 *    3e-7;
 *  - a high edge d * fs below Nyquist: up to about 1e-16 / d (1e-10 at
 *    d = 1e-6, 1e-7 at d = 1e-9); within a few ulps of fs/2 the design is
 *    meaningless for both (scipy's frequency response is NaN there).
 */
bcg_status bcg_butter_bandpass(int order, double low_hz, double high_hz, double fs,
                               double *sos, int *n_sections);

/* ---- streaming SOS filter (direct form II transposed) ------------------ */

typedef struct bcg_sos_filter {
    int n_sections;
    double sos[BCG_MAX_SECTIONS][6];
    double zi[BCG_MAX_SECTIONS][2];     /* per-section state, as scipy's zi */
} bcg_sos_filter;

/* Copy n_sections rows of 6 coefficients; state starts at zero. */
bcg_status bcg_sos_init(bcg_sos_filter *st, const double *sos, int n_sections);

/*
 * Design a Butterworth band-pass (exactly as bcg_butter_bandpass) straight
 * into st, state zero. Errors as bcg_butter_bandpass.
 */
bcg_status bcg_sos_init_bandpass(bcg_sos_filter *st, int order, double low_hz, double high_hz,
                                 double fs);

/* Zero the state (as after init). st == NULL: does nothing. */
void bcg_sos_reset(bcg_sos_filter *st);

/*
 * Set the state to the steady state for a constant input x0 (as
 * scipy.signal.sosfilt_zi(sos) * x0), so a signal with a DC offset starts
 * without a step transient. Errors (the state is then unchanged):
 * BCG_ERR_NULL (st NULL), BCG_ERR_PARAM (x0 not finite or beyond +-1e15, the
 * sample rule of bcg_sos_process), BCG_ERR_COEF (a section has no finite DC
 * gain, 1 + a1 + a2 == 0: a pole at z = 1, or the steady state overflows).
 */
bcg_status bcg_sos_prime(bcg_sos_filter *st, double x0);

/*
 * Filter n samples from x into y (y may equal x, but must not overlap it
 * otherwise). Latency: none beyond the filter's own group delay. Same
 * arithmetic as scipy.signal.sosfilt, so the output of any split of a
 * signal into chunks is bit-identical to one call.
 * Samples must be finite and within +-1e15 (as for every streaming object
 * here): a NaN, infinity or larger value gives BCG_ERR_PARAM, nothing is
 * written and the state is unchanged (scipy instead lets a NaN poison the
 * state until reset). Other errors: BCG_ERR_NULL (st NULL, or x or y NULL
 * with n > 0). n == 0 is a no-op (x and y may then be NULL).
 */
bcg_status bcg_sos_process(bcg_sos_filter *st, const double *x, double *y, size_t n);

/* ---- J-peak (heartbeat) detector --------------------------------------- */

/*
 * Causal, streaming J-peak detector for band-passed BCG (use a band-pass of
 * about 2.5-12 Hz first; dsp_c.detect_beats does both). One detected beat is
 * the sample index of a J-peak: a local maximum of the input that is the
 * largest within +-BCG_JPEAK_HALF_WINDOW_MS. A candidate's height is its
 * swing: the peak minus the lowest sample in the BCG_JPEAK_SWING_MS after
 * it (the J-to-K swing), which a diastolic or late wave without a deep
 * trough after it lacks; every level and threshold below is in swings.
 * A swing below 1e-6 (input units: ADC counts) is never a candidate: it is
 * the band-pass's rounding noise on a flat input. A beat's reported index is
 * the centre of the BCG_JPEAK_TIMING_MS stretch with the largest sum within
 * +-BCG_JPEAK_TIMING_MS / 2 of the peak: less jitter from noise than the
 * single highest sample. When the beat is reported, that time is refined by
 * template alignment (below).
 *
 * Decision logic (after Pan-Tompkins, adapted to BCG):
 *  - learning: the first BCG_JPEAK_LEARN_MS of input (longer, up to
 *    BCG_JPEAK_LEARN_MAX_MS, until two dominant peaks >= 0.75 x the highest
 *    are in) set the signal and noise peak levels, and the spacing of the
 *    dominant peaks seeds the rhythm; those candidates are then judged like
 *    all others, except a first one that a candidate > 1 / 0.7 x as high
 *    follows within 0.3 s to 0.7 x the seeded interval: the late wave of a
 *    beat the stream started in, not a beat;
 *  - adaptive threshold: a candidate is a beat when its height reaches
 *    noise + 0.25 * (signal - noise), both levels running averages of peak
 *    heights, capped at 2 x (beats) and 1 x (noise) the signal level, and a
 *    beat above 2 x the signal level (an artifact) weighs 0.02 instead of
 *    0.125, so a movement cannot inflate them; but the last
 *    BCG_JPEAK_TALL_RUN such beats (whatever lower ones lie between), when
 *    of like heights (each 0.6-1/0.6 x their median) and in a steady rhythm
 *    (each interval within 15 % of their median, 0.3-2.0 s), are the heart
 *    at a new amplitude, not a movement: their median height becomes the
 *    signal level and their intervals the rhythm (a person back in bed after
 *    the level decayed in the empty bed is followed within 5 beats, not 150);
 *  - refractory period BCG_JPEAK_REFRACTORY_MS (200 bpm): a candidate inside
 *    it replaces the beat only if 1.5 x higher, else it is noise. With the
 *    +-125 ms candidate window this keeps the detector on the first major
 *    wave of a beat (the J-wave) where the band-pass makes a later wave
 *    (the L-wave, 150 ms on) about as high. Conversely a beat accepted on
 *    a later wave moves to an earlier candidate 100-200 ms before it that
 *    is >= 0.8 x as high and >= 0.6 x the interval (and 200 ms) after the
 *    last beat, so that at fast rates the detector does not stay on the
 *    L-wave (whose refractory period would hide the next J-wave);
 *  - rhythm: a candidate earlier than 0.7 x the median of the last 8 beat
 *    intervals, or earlier than 0.9 x and below 0.7 x the signal level, is
 *    only tentative; a plausible candidate (>= 0.5 x its height)
 *    at the expected time wins over it. This keeps the detector off the
 *    secondary waves (K/L, double rate). If such candidates sit in the
 *    middle of the interval (0.45-0.55 of it: two true intervals differ by
 *    less than 20 %; a diastolic wave often sits earlier) and are as high as
 *    the beats (each >= 0.6 x, on average >= 0.85 x) three times in a row,
 *    the rate is re-locked to the double rate (recovery from a half-rate
 *    lock); at 0.27-0.4 (or 0.6-0.73) of it, to the triple rate (a lock at a
 *    third of the rate), never above 200 bpm. If instead the beats alternate
 *    big-small for 6 beats, each small one below 0.75 x its neighbours, or
 *    below 0.9 x while the intervals pair up too (those ending at a small
 *    beat all >= 10 % shorter, or all >= 10 % longer, than those ending at a
 *    big one: a diastolic wave is not midway), the small ones are secondary
 *    waves and the rate is re-locked to half (recovery from a double-rate
 *    lock), never below 30 bpm (at low rates breathing can make every other
 *    beat smaller);
 *  - search-back: with no beat for 1.66 x the median interval, the highest
 *    candidate since the last beat (and in the last 4 s) above half the
 *    threshold becomes a beat;
 *  - silence: with no beat for 3 s (1.5 x the longest interval), the signal
 *    level halves (down to twice the noise level), and again every 3 s, so
 *    a jolt while learning or a tenfold weaker signal cannot deafen it;
 *  - intervals longer than 2.0 s, and those from or to a peak above 2 x the
 *    signal level (a movement artifact), never enter the rhythm estimate, so
 *    the rhythm from before a movement holds after it; an interval shorter
 *    than 0.3 s (a beat moved to its earlier wave) enters as 0.3 s, and a
 *    re-lock's scaled intervals are held to 0.3-2.0 s too: the median
 *    interval (bcg_jpeak_interval) always lies in 0.3-2.0 s (30-200 bpm)
 *    on the sample grid, or is 0 (unknown).
 *
 * Template alignment (the reported time; the decisions above use the
 * candidate's time): the detector keeps a running average (the template) of
 * the band-passed waveform from BCG_JPEAK_TEMPLATE_BEFORE_MS before to
 * BCG_JPEAK_TEMPLATE_AFTER_MS after the candidate times of its beats (at
 * most BCG_JPEAK_TEMPLATE_CAP points: every sample up to 423 samples/s,
 * every k-th above), updated with weight 0.1 by confident beats only: no
 * artifact, and the interval from the beat reported before within 15 % of
 * the median interval. A beat is reported at the lag within
 * +-BCG_JPEAK_ALIGN_MS of its candidate time that maximises the
 * cross-correlation of the waveform with the template (lags 8 ms apart
 * first, then those around the best one): every beat timed on the same point
 * of its shape, so intervals jitter less than with a rule that sees one beat
 * (noise moves a peak or a stretch sum more than it moves the fit of a whole
 * 300 ms waveform). The template is averaged at the candidate times, which
 * ties it (and the reported times) to the J-peaks. Never closer than
 * BCG_JPEAK_MIN_SPACING_MS to the beat reported before; with no template
 * yet, or samples no longer in the ring of the last BCG_JPEAK_RECENT_CAP
 * samples, the candidate's time is reported.
 *
 * Latency: a beat is reported once no later sample can change it: normally
 * BCG_JPEAK_REFRACTORY_MS + BCG_JPEAK_HALF_WINDOW_MS (0.425 s) after its
 * candidate time, so at most 0.465 s after the reported time (the alignment
 * moves it by up to 40 ms); a tentative beat up to 1.3 x the beat interval +
 * 0.125 s; a search-back beat at most 4 s after it (the search looks back
 * 4 s). The beats of the learning period are reported at its end (3.0 to
 * 4.5 s after the stream starts, + 0.425 s). So after start-up every beat is
 * reported at most 4.54 s after its reported time; on simulated nights 2.8 s
 * was the most seen (the long delays need a silence after a jolt).
 *
 * Input samples must be finite and within +-1e15: otherwise process returns
 * BCG_ERR_PARAM and consumes nothing.
 * Sampling rate: BCG_JPEAK_MIN_FS..BCG_JPEAK_MAX_FS samples/s.
 */
#define BCG_JPEAK_MIN_FS 20
#define BCG_JPEAK_MAX_FS 2000
#define BCG_JPEAK_HALF_WINDOW_MS 125
#define BCG_JPEAK_SWING_MS 100    /* a candidate's height: peak minus the lowest sample this long after */
#define BCG_JPEAK_TIMING_MS 80    /* a beat's time: the centre of the strongest stretch this long
                                   * (an odd number of samples: 2 * floor(80 ms * fs / 2) + 1) */
#define BCG_JPEAK_REFRACTORY_MS 300
#define BCG_JPEAK_MIN_SPACING_MS 200 /* reported beats are at least this far apart */
#define BCG_JPEAK_LEARN_MS 3000
#define BCG_JPEAK_LEARN_MAX_MS 4500
#define BCG_JPEAK_WINDOW_CAP 1024   /* a power of two >= 2 * half window + 1 at BCG_JPEAK_MAX_FS */
#define BCG_JPEAK_CAND_CAP 64       /* candidates kept since the last beat */
#define BCG_JPEAK_IBI_CAP 8         /* intervals in the rhythm estimate */
#define BCG_JPEAK_TALL_RUN 5        /* steady beats above the level that relearn it */
#define BCG_JPEAK_HEIGHT_CAP 6      /* beat heights watched for a double-rate lock */
#define BCG_JPEAK_RECENT_CAP 2048   /* a power of two: the last samples kept (beat alignment) */
#define BCG_JPEAK_TEMPLATE_BEFORE_MS 150 /* the beat template: this long before the beat ... */
#define BCG_JPEAK_TEMPLATE_AFTER_MS 150  /* ... to this long after it */
#define BCG_JPEAK_TEMPLATE_CAP 128  /* points of the template at most */
#define BCG_JPEAK_ALIGN_MS 40       /* a beat is aligned within +- this of its candidate time */

typedef struct bcg_jpeak_candidate {
    int64_t index;
    double height;
} bcg_jpeak_candidate;

typedef struct bcg_jpeak {
    double fs;
    int64_t half_window;    /* samples */
    int64_t refractory;     /* samples */
    int64_t learn;          /* samples */
    int64_t learn_max;      /* samples */
    int64_t max_ibi;        /* samples */
    int64_t n;              /* samples seen since init/reset */
    /* sliding maximum over the last 2 * half_window + 1 samples */
    int64_t win_index[BCG_JPEAK_WINDOW_CAP];
    double win_value[BCG_JPEAK_WINDOW_CAP];
    double recent[BCG_JPEAK_RECENT_CAP]; /* the last samples, by index & (cap - 1) */
    int64_t swing;          /* samples after a peak searched for its trough */
    int64_t timing;         /* samples of the stretch that times a beat */
    int win_head;
    int win_len;
    /* candidates since the last beat (ring, oldest first) */
    bcg_jpeak_candidate cand[BCG_JPEAK_CAND_CAP];
    int cand_head;
    int cand_len;
    int learning;
    double signal_level;
    double noise_level;
    int64_t last_beat;      /* -1: none */
    double last_height;
    int64_t prev_beat;      /* the beat before last_beat, -1: none */
    int last_ibi_counted;   /* last_beat added an interval to the rhythm */
    int last_was_artifact;  /* last_beat was far above the signal level */
    int64_t tall_at[BCG_JPEAK_TALL_RUN]; /* the last beats far above the level */
    double tall_height[BCG_JPEAK_TALL_RUN];
    int tall_len;
    int64_t pending;        /* last_beat not yet reported, -1: none */
    int has_tentative;
    bcg_jpeak_candidate tentative;
    int half_rate_evidence;
    double half_rate_ratio; /* mean height ratio of that evidence */
    int sub_rate_parts;     /* 2: the evidence is of a half-rate lock, 3: of a third */
    int64_t silence;        /* samples without a beat before the level decays */
    int64_t last_decay;     /* sample count of the last decay */
    double heights[BCG_JPEAK_HEIGHT_CAP]; /* of the last beats, newest last */
    int64_t beat_at[BCG_JPEAK_HEIGHT_CAP]; /* their indices */
    int n_heights;
    int64_t ibi[BCG_JPEAK_IBI_CAP];
    int ibi_head;
    int ibi_len;
    double interval;        /* median of ibi[], samples; 0: unknown */
    int64_t next_check;     /* sample count at which a timer may fire */
    /* beat template (template alignment of the reported times) */
    double templ[BCG_JPEAK_TEMPLATE_CAP]; /* points templ_step samples apart */
    int templ_points;       /* points in use (fixed by fs) */
    int templ_before;       /* of them, before the beat */
    int64_t templ_step;     /* samples between points */
    int templ_beats;        /* beats averaged in, 0: no template yet */
    int64_t align;          /* samples: +- search of the aligned time */
    int64_t lag_step;       /* samples between the lags tried first */
    int64_t last_reported;  /* the last reported beat, -1: none */
} bcg_jpeak;

bcg_status bcg_jpeak_init(bcg_jpeak *st, double fs);

/* Back to the state just after init (sample index restarts at 0). st == NULL:
 * does nothing. */
void bcg_jpeak_reset(bcg_jpeak *st);

/*
 * An upper bound on the beats that one call with n samples can report:
 * the size `beats` must have for bcg_jpeak_process and bcg_jpeak_flush
 * (with n = 0). No overflow for any n; SIZE_MAX when st is NULL or not
 * initialised.
 */
size_t bcg_jpeak_max_beats(const bcg_jpeak *st, size_t n);

/*
 * Feed n band-passed samples. Beats that became final are written to
 * beats[0..*n_beats) as absolute sample indices, increasing. Returns
 * BCG_ERR_CAPACITY, consuming nothing, when cap < bcg_jpeak_max_beats(st, n).
 * Other errors: BCG_ERR_NULL (st or n_beats NULL, y NULL with n > 0, beats
 * NULL with cap > 0), BCG_ERR_PARAM (a sample not finite or beyond +-1e15).
 */
bcg_status bcg_jpeak_process(bcg_jpeak *st, const double *y, size_t n,
                             int64_t *beats, size_t cap, size_t *n_beats);

/*
 * End of stream: report the beats still pending (a J-peak in the last
 * half window, a beat inside the latency bound), then reset the detector.
 * A tentative beat that its timer has not yet confirmed is dropped.
 * Errors as bcg_jpeak_process (with n = 0); nothing is reset then.
 */
bcg_status bcg_jpeak_flush(bcg_jpeak *st, int64_t *beats, size_t cap, size_t *n_beats);

/* Current median beat interval in seconds, or 0 when not yet known. */
double bcg_jpeak_interval(const bcg_jpeak *st);

/* ---- respiration ------------------------------------------------------- */

/*
 * Respiration extractor: raw signal -> band-limited respiration signal at a
 * low rate, breath times and a breathing rate.
 *
 * Pipeline (all causal, all state in bcg_resp):
 *  1. anti-alias + decimate by M = floor(fs / BCG_RESP_TARGET_FS) (M >= 1)
 *     with a 2nd-order CIC (triangular FIR of 2M - 1 taps, unity DC gain,
 *     zeros at every multiple of fs / M, >= 38 dB rejection of anything that
 *     would alias into 0..0.7 Hz). Output rate fs_out = fs / M, in [10, 20) Hz.
 *     Output sample k (counted from init/reset) is centred on input sample
 *     k * M. For fs < 20 Hz, M = 1 and the signal passes unchanged.
 *  2. Butterworth band-pass, prototype order BCG_RESP_ORDER, edges
 *     BCG_RESP_LOW_MHZ..BCG_RESP_HIGH_MHZ (0.1..0.7 Hz = 6..42 breaths/min),
 *     designed at fs_out by bcg_butter_bandpass in init and primed with the
 *     first decimated sample, so a DC offset causes no start-up step.
 *  3. breath detection: one breath per cycle, at the upward zero crossing of
 *     the band-passed signal (linearly interpolated between output samples),
 *     confirmed when the signal first rises above +h after having been below
 *     -h, where h = 0.3 x a running mean of |signal| (time constant 20 s),
 *     but at least 1e-9 x a running mean of |input|, so that rounding noise
 *     on a constant input is never taken for breathing, and at least
 *     BCG_RESP_MIN_SWING_MCOUNTS / 1000 = 0.5 input units: samples are taken
 *     to be ADC counts, and a swing under one ADC step peak to peak is not
 *     a breath (so +-1-count noise on a flat signal gives no rate at
 *     fs >= 50 Hz; at lower fs it is not averaged enough and may).
 *     A crossing less than BCG_RESP_REFRACTORY_MS after the previous breath
 *     is ignored (so at most 48 breaths/min are reported).
 *
 * Breath indices are input-sample indices (int64, from init/reset) of the
 * zero crossing of the band-passed signal; they increase strictly. That
 * crossing lags the raw signal's by the band-pass group delay: about 0.8 s
 * at 20..42 /min, 1.1 s at 15 /min, 2.6 s at 9 /min, 5 s at 6 /min. A
 * breath is reported about 3 % of a cycle plus one output sample (at most
 * 0.1 s) after its index.
 *
 * Rate: 60 / median of the last BCG_RESP_HISTORY breath intervals (needs at
 * least BCG_RESP_MIN_INTERVALS). An interval longer than
 * BCG_RESP_MAX_INTERVAL_MS (apnoea, dropout, motion) is not used and clears
 * the history. The rate therefore lies in [5, 48] breaths/min when known.
 * It is the rhythm found in the band, not a verdict that the signal is
 * breathing: noise well above one ADC step has a rhythm too. Whether a
 * window is trustworthy is for the signal-quality gate to decide.
 */
#define BCG_RESP_TARGET_FS 10          /* decimation target rate (Hz): M = floor(fs / 10) */
#define BCG_RESP_ORDER 3               /* band-pass prototype order (3 sections) */
#define BCG_RESP_LOW_MHZ 100           /* band-pass low edge, mHz (6 breaths/min) */
#define BCG_RESP_HIGH_MHZ 700          /* band-pass high edge, mHz (42 breaths/min) */
#define BCG_RESP_REFRACTORY_MS 1250    /* shortest breath interval reported (ms) */
#define BCG_RESP_MAX_INTERVAL_MS 12000 /* longest breath interval used for the rate (ms) */
#define BCG_RESP_HISTORY 8             /* breath intervals kept for the median rate */
#define BCG_RESP_MIN_INTERVALS 3       /* intervals needed before a rate is reported */
#define BCG_RESP_MIN_SWING_MCOUNTS 500 /* smallest hysteresis h, milli ADC counts */

typedef struct bcg_resp {
    double fs;                 /* input sampling rate, Hz */
    int decim;                 /* decimation factor M >= 1 */
    double fs_out;             /* output rate fs / M, Hz */
    bcg_sos_filter bp;         /* band-pass at fs_out */
    int started;               /* a sample has been seen since init/reset */
    int phase;                 /* input samples in the current block, 0..M-1 */
    double acc_cur;            /* sum (M - i) x_i over the current block */
    double acc_next;           /* sum i x_i over the current block */
    double acc_prev;           /* sum i x_i over the previous block */
    int64_t n_out;             /* output samples produced since init/reset */
    double y_prev;             /* previous output sample */
    double amp;                /* running mean |output| */
    double level_in;           /* running mean |decimated input|, for the noise floor */
    int level;                 /* -1 below -h, +1 above +h, 0 neither yet */
    double cross_t;            /* last upward zero crossing, output-sample units (< 0: none) */
    double last_t;             /* last breath, output-sample units (< 0: none) */
    double intervals[BCG_RESP_HISTORY]; /* recent breath intervals, s (ring) */
    int n_intervals;           /* valid entries in intervals */
    int next_interval;         /* ring write position */
} bcg_resp;

/*
 * fs in BCG_MIN_FS..BCG_MAX_FS (else BCG_ERR_FS). Sets decim and fs_out and
 * designs the band-pass; the object starts as after reset.
 */
bcg_status bcg_resp_init(bcg_resp *st, double fs);

/* Forget all samples and breaths (keeps fs and the filter design). st == NULL:
 * does nothing. */
void bcg_resp_reset(bcg_resp *st);

/* Output (decimated) sampling rate fs / M in Hz. */
double bcg_resp_output_rate(const bcg_resp *st);

/*
 * The number of output samples that one call with n input samples will
 * produce; it bounds the breaths of that call too, and is at most
 * n / M + 1 (integer division, M = floor(fs / BCG_RESP_TARGET_FS)).
 * Exact for every n (no overflow, even for n = SIZE_MAX); SIZE_MAX when st
 * is NULL or not initialised.
 */
size_t bcg_resp_max_out(const bcg_resp *st, size_t n);

/*
 * Consume n input samples x. Writes the new respiration output samples to
 * resp (*n_resp of them) and the breaths confirmed in this call to breaths
 * (*n_breaths input-sample indices). Returns BCG_ERR_CAPACITY, consuming
 * nothing, when resp_cap or breath_cap < bcg_resp_max_out(st, n). Other
 * errors: BCG_ERR_NULL (st, n_resp or n_breaths NULL, x NULL with n > 0,
 * resp or breaths NULL with a non-zero capacity; NULL with capacity 0 is
 * fine when the call completes no output sample), BCG_ERR_PARAM (x holds a
 * NaN, an infinity or a value beyond +-1e15). On any error nothing is
 * consumed and the state is unchanged. Any split of a signal into calls gives the same outputs, bit
 * for bit, as one call.
 */
bcg_status bcg_resp_process(bcg_resp *st, const double *x, size_t n,
                            double *resp, size_t resp_cap, size_t *n_resp,
                            int64_t *breaths, size_t breath_cap, size_t *n_breaths);

/*
 * Current breathing rate in breaths/min, or -1.0 when unknown: fewer than
 * BCG_RESP_MIN_INTERVALS intervals since the last gap, or no breath in the
 * last 2 x BCG_RESP_MAX_INTERVAL_MS of input.
 */
double bcg_resp_rate(const bcg_resp *st);

/* ---- motion ------------------------------------------------------------ */

/*
 * Motion meter: a movement energy per fixed window of input and a flag.
 *
 * Energy of a window = RMS (in input units) of the raw signal band-passed to
 * 2..min(10, 0.45 fs) Hz (Butterworth, prototype order BCG_MOTION_ORDER,
 * primed with the first sample). The band removes DC, slow drift and the
 * respiration (-80 dB at 0.25 Hz, -43 dB at 0.7 Hz, so neither deeper nor
 * faster breathing reads as motion) and keeps the J-waves of the cardiac
 * ballistogram, which set the quiet level; gross body movement raises it
 * many times over.
 *
 * Flag: a window is "moving" when its energy exceeds BCG_MOTION_RATIO x the
 * baseline, the median energy of the last BCG_MOTION_HISTORY quiet windows,
 * and at least BCG_MOTION_MIN_BASELINE_MCOUNTS / 1000 = 0.5 input units:
 * samples are taken to be ADC counts, so on a flat signal (empty bed) a step
 * of a few counts is not movement (a 1-count step has an energy of about
 * 0.15 in the window it falls in).
 * Moving windows do not enter the baseline. The first BCG_MOTION_WARMUP
 * windows after init/reset are never flagged (they seed the baseline). After
 * BCG_MOTION_RELEARN_S seconds of uninterrupted motion the level is taken as
 * the new normal: the baseline is cleared and relearned (warm-up again).
 *
 * Window k (from init/reset) covers input samples [k * L, (k + 1) * L) with
 * L = round(window_s * fs) samples (bcg_motion_window_len). Latency: a
 * window is reported with its last sample.
 */
#define BCG_MOTION_ORDER 4             /* band-pass prototype order (4 sections) */
#define BCG_MOTION_LOW_MHZ 2000        /* band-pass low edge, mHz */
#define BCG_MOTION_HIGH_MHZ 10000      /* band-pass high edge, mHz (capped at 0.45 fs) */
#define BCG_MOTION_MIN_WINDOW_MS 100   /* shortest window (ms) */
#define BCG_MOTION_MAX_WINDOW_MS 60000 /* longest window (ms) */
#define BCG_MOTION_RATIO 3             /* moving when energy > 3 x baseline */
#define BCG_MOTION_HISTORY 31          /* quiet windows in the baseline median */
#define BCG_MOTION_WARMUP 5            /* windows that seed the baseline, never flagged */
#define BCG_MOTION_RELEARN_S 60        /* seconds of continuous motion before relearning */
#define BCG_MOTION_MIN_BASELINE_MCOUNTS 500 /* smallest baseline, milli ADC counts RMS */

typedef struct bcg_motion {
    double fs;                 /* input sampling rate, Hz */
    double window_s;           /* window length as given, s */
    int64_t win_len;           /* samples per window L >= 1 */
    int64_t relearn_windows;   /* moving windows in a row that trigger relearning */
    bcg_sos_filter bp;         /* 2..min(10, 0.45 fs) Hz band-pass */
    int started;               /* a sample has been seen since init/reset */
    int64_t phase;             /* samples in the current window, 0..L-1 */
    double sumsq;              /* sum of squared band-passed samples in the window */
    int64_t n_windows;         /* windows completed since init/reset */
    double history[BCG_MOTION_HISTORY]; /* quiet-window energies (ring) */
    int n_history;             /* valid entries in history */
    int next_history;          /* ring write position */
    int64_t run;               /* consecutive moving windows */
} bcg_motion;

/*
 * fs in BCG_MIN_FS..BCG_MAX_FS (else BCG_ERR_FS); window_s finite and in
 * BCG_MOTION_MIN_WINDOW_MS..BCG_MOTION_MAX_WINDOW_MS / 1000 (else
 * BCG_ERR_PARAM). The object starts as after reset.
 */
bcg_status bcg_motion_init(bcg_motion *st, double fs, double window_s);

/* Forget all samples and the baseline (keeps fs, window and filter design).
 * st == NULL: does nothing. */
void bcg_motion_reset(bcg_motion *st);

/* Window length L in samples (round(window_s * fs), at least 1). */
int64_t bcg_motion_window_len(const bcg_motion *st);

/*
 * The number of windows that one call with n input samples will complete:
 * at most n / L + 1 (integer division). Exact for every n (no overflow, even
 * for n = SIZE_MAX); SIZE_MAX when st is NULL or not initialised.
 */
size_t bcg_motion_max_windows(const bcg_motion *st, size_t n);

/*
 * Consume n input samples x. For each window completed in this call writes
 * its energy (input units, RMS) to energy and 1 (moving) or 0 to moving;
 * *n_windows receives the count. Returns BCG_ERR_CAPACITY, consuming
 * nothing, when cap < bcg_motion_max_windows(st, n). Other errors:
 * BCG_ERR_NULL (st or n_windows NULL, x NULL with n > 0, energy or moving
 * NULL with cap > 0; NULL with cap 0 is fine when the call completes no
 * window), BCG_ERR_PARAM (x holds a NaN, an infinity or a value beyond
 * +-1e15). On any error nothing is consumed and the state is unchanged. Any split of a signal into calls gives the
 * same outputs, bit for bit, as one call.
 */
bcg_status bcg_motion_process(bcg_motion *st, const double *x, size_t n,
                              double *energy, uint8_t *moving, size_t cap,
                              size_t *n_windows);

#endif /* BCG_DSP_H */
