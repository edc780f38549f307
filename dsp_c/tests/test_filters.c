/*
 * test_filters.c - unit tests for status.c, butter.c and sos.c.
 *
 * Plain C99, no framework: CHECK() counts, the last line printed is
 * "N passed, N failed", the exit status is non-zero on any failure.
 * Built and run by `make ctest` with ASan and UBSan.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bcg_dsp.h"
#include "check.h"



#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- golden vectors, from scipy 1.17.1 (numpy 1.26.4) ---------------------- */

typedef struct {
    int order;
    double lo, hi, fs;
    double sos[6 * BCG_MAX_ORDER];
} butter_case;

static const butter_case BUTTER_CASES[] = {
    /* butter(2, [0.5, 10.0], 'band', fs=250.0, output='sos') */
    {2, 0.5, 10.0, 250.0, {
        0.012151960625946298, 0.024303921251892596, 0.012151960625946298, 1.0, -1.6766309305407543, 0.726108624256915,
        1.0, -2.0, 1.0, 1.0, -1.982406101508787, 0.982577908403228,
    }},
    /* butter(4, [1.0, 40.0], 'band', fs=1000.0, output='sos') */
    {4, 1.0, 40.0, 1000.0, {
        0.00016677269033465517, 0.00033354538066931034, 0.00016677269033465517, 1.0, -1.5941559815706319, 0.6414789923563797,
        1.0, 2.0, 1.0, 1.0, -1.7770946571472888, 0.8339534971340592,
        1.0, -2.0, 1.0, 1.0, -1.988002183766597, 0.9880450040961303,
        1.0, -2.0, 1.0, 1.0, -1.9953348048787816, 0.9953747254479496,
    }},
    /* butter(3, [0.1, 120.0], 'band', fs=250.0, output='sos'): wide band, real poles */
    {3, 0.1, 120.0, 250.0, {
        0.8796202016860103, 1.7592404033720206, 0.8796202016860103, 1.0, 1.8672247903132744, 0.8820666162335496,
        1.0, 0.0, -1.0, 1.0, -0.11588850473544321, -0.8793877028303906,
        1.0, -2.0, 1.0, 1.0, -1.9974837719612761, 0.9974900810764474,
    }},
    /* butter(1, [5.0, 20.0], 'band', fs=50.0, output='sos') */
    {1, 5.0, 20.0, 50.0, {
        0.5791922201622681, 0.0, -0.5791922201622681, 1.0, -1.1102230246251565e-16, -0.15838444032453622,
    }},
    /* butter(8, [0.7, 3.0], 'band', fs=100.0, output='sos') */
    {8, 0.7, 3.0, 100.0, {
        5.200459965486123e-10, 1.0400919930972246e-09, 5.200459965486123e-10, 1.0, -1.815816828723749, 0.8372767911835216,
        1.0, 2.0, 1.0, 1.0, -1.8271351485913978, 0.8393577577071074,
        1.0, 2.0, 1.0, 1.0, -1.8522092009693774, 0.8812677225410502,
        1.0, 2.0, 1.0, 1.0, -1.8915759726261234, 0.8964879852837726,
        1.0, -2.0, 1.0, 1.0, -1.936059132077054, 0.9389105140358829,
        1.0, -2.0, 1.0, 1.0, -1.921481499411241, 0.9556175640650735,
        1.0, -2.0, 1.0, 1.0, -1.9644219531936618, 0.9666051920274856,
        1.0, -2.0, 1.0, 1.0, -1.9872983257580392, 0.9892506638628636,
    }},
    /* butter(5, [0.5, 10.0], 'band', fs=250.0, output='sos') */
    {5, 0.5, 10.0, 250.0, {
        1.6855609020237057e-05, 3.3711218040474113e-05, 1.6855609020237057e-05, 1.0, -1.6461550650215255, 0.6930484245474979,
        1.0, 2.0, 1.0, 1.0, -1.8121449490054717, 0.8699778898826642,
        1.0, 0.0, -1.0, 1.0, -1.7829598389651173, 0.785792576664768,
        1.0, -2.0, 1.0, 1.0, -1.9792540406394765, 0.9794316486072105,
        1.0, -2.0, 1.0, 1.0, -1.9927275376586557, 0.9928874191612879,
    }},
    /* butter(7, [0.1, 0.5], 'band', fs=50.0, output='sos') */
    {7, 0.1, 0.5, 50.0, {
        5.665796153716122e-12, 1.1331592307432245e-11, 5.665796153716122e-12, 1.0, -1.9329359761946323, 0.9351154307601642,
        1.0, 2.0, 1.0, 1.0, -1.9474462877779848, 0.950670001006768,
        1.0, 2.0, 1.0, 1.0, -1.9501864631153991, 0.9509567815010684,
        1.0, 0.0, -1.0, 1.0, -1.9764869812025647, 0.976760542816684,
        1.0, -2.0, 1.0, 1.0, -1.9777594639066296, 0.9815971029702656,
        1.0, -2.0, 1.0, 1.0, -1.9877994251604283, 0.9879868720138542,
        1.0, -2.0, 1.0, 1.0, -1.9960591459095707, 0.9962197431554659,
    }},
};

/* scipy.signal.sosfilt(BUTTER_CASES[i].sos, SOSFILT_X) for every case i, scipy 1.17.1.
 * bcg_sos_run takes the sections two at a time: an odd count (orders 1, 3, 5, 7) ends with
 * the single-section path, an even one never takes it. */
static const double SOSFILT_X[] = {1.0, -2.0, 3.5, 0.25, 1000.0, -7.0, 0.0, 12.0, 3.0, -1.0, 2.0, 5.0};
static const double SOSFILT_Y[][COUNT(SOSFILT_X)] = {
    { /* order 2: 2 sections */
        0.012151960625946298, 0.020160552690452836, 0.030842016547975824, 0.10055237533625012,
        12.345325764136826, 44.63135708093768, 77.20755219640927, 96.25579771229451,
        104.81180054327085, 105.20541504735856, 99.48582586797559, 89.67736416025086,
    },
    { /* order 4: 4 sections */
        0.00016677269033465517, 0.0008929989842480356, 0.002533845577652562, 0.006136581615764572,
        0.1811317145439692, 1.2553057135376433, 4.448117754311307, 10.663047435800797,
        19.91589842596486, 31.48250523101928, 44.24885907630093, 56.97299285604699,
    },
    { /* order 3: 3 sections */
        0.8796202016860103, -1.5427241017549103, 2.4477897832030857, 1.5345644442561706,
        878.5131547598053, 211.28001573912613, -200.16614614609745, 173.73678375228738,
        -142.83222143440918, 112.51004462326394, -101.00222064518493, 78.60398954200187,
    },
    { /* order 1: 1 section */
        0.5791922201622681, -1.1583844403245362, 1.5397155860363967, 1.1197124241036507,
        577.4089143830535, -4.021798570560294, -487.7396324193101, 10.367661867386829,
        -75.51279204434064, -5.8874225397693944, -12.539243525448251, 2.542677197058172,
    },
    { /* order 8: 8 sections */
        5.200459965486123e-10, 6.862525962268651e-09, 4.561268649039496e-08, 2.082579626100841e-07,
        1.2698969148217451e-06, 1.019665906262754e-05, 6.578742416559437e-05, 0.0003146281598863521,
        0.001171283060905568, 0.0035761376678614407, 0.009326230199087132, 0.02141899195035613,
    },
    { /* order 5: 5 sections */
        1.6855609020237057e-05, 0.00012158357733440354, 0.0004504630094057637, 0.0012607780207412992,
        0.019999785269929047, 0.16232179583842382, 0.7154522271467434, 2.138505345925796,
        4.911737984033382, 9.361475698582879, 15.559958749786722, 23.304081130002572,
    },
    { /* order 7: 7 sections */
        5.665796153716122e-12, 6.667890642894327e-11, 3.9951997961964477e-10, 1.6744810230303323e-09,
        1.1318708651986424e-08, 9.450103518920825e-08, 5.785093999627765e-07, 2.57131996844573e-06,
        8.91254475320744e-06, 2.5558551145358825e-05, 6.33100916392189e-05, 0.0001397619169659952,
    },
};

/* scipy.signal.sosfilt_zi(BUTTER_CASES[0].sos), scipy 1.17.1 */
static const double SOSFILT_ZI[] = {0.9702673651945828, -0.7011911844890041, -0.9824193258208339,
                                    0.9824193258208287};

/* ---- helpers ---------------------------------------------------------------- */

/* |a - b| <= rtol * max|row| for every coefficient of every row */
static int rows_close(const double *a, const double *b, int n_rows, double rtol)
{
    int r, c;
    for (r = 0; r < n_rows; r++) {
        double scale = 0.0;
        for (c = 0; c < 6; c++) {
            double v = fabs(b[6 * r + c]);
            scale = v > scale ? v : scale;
        }
        for (c = 0; c < 6; c++) {
            if (!(fabs(a[6 * r + c] - b[6 * r + c]) <= rtol * scale)) {
                printf("  row %d col %d: %.17g vs %.17g\n", r, c, a[6 * r + c], b[6 * r + c]);
                return 0;
            }
        }
    }
    return 1;
}

static unsigned long lcg_state = 12345u;

static double noise(void)
{
    lcg_state = lcg_state * 1103515245u + 12345u;
    return (double)((lcg_state >> 8) % 20001u) / 10000.0 - 1.0;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_strerror(void)
{
    bcg_status codes[] = {BCG_OK,        BCG_ERR_NULL,     BCG_ERR_ORDER,
                          BCG_ERR_FS,    BCG_ERR_BAND,     BCG_ERR_SECTIONS,
                          BCG_ERR_COEF,  BCG_ERR_CAPACITY, BCG_ERR_PARAM};
    const char *unknown = bcg_strerror((bcg_status)9999);
    size_t i, j;
    CHECK(unknown != NULL && strcmp(unknown, "unknown status") == 0);
    CHECK(strcmp(bcg_strerror((bcg_status)-1), "unknown status") == 0);
    for (i = 0; i < COUNT(codes); i++) {
        const char *text = bcg_strerror(codes[i]);
        CHECK(text != NULL && strlen(text) > 0);
        CHECK(strcmp(text, unknown) != 0);
        for (j = 0; j < i; j++) {
            CHECK(strcmp(text, bcg_strerror(codes[j])) != 0); /* each code its own text */
        }
    }
}

static void test_butter_arguments(void)
{
    double sos[6 * BCG_MAX_ORDER];
    int n = -1;

    CHECK(bcg_butter_bandpass(2, 1.0, 10.0, 250.0, NULL, &n) == BCG_ERR_NULL);
    CHECK(bcg_butter_bandpass(2, 1.0, 10.0, 250.0, sos, NULL) == BCG_ERR_NULL);
    CHECK(bcg_butter_bandpass(0, 1.0, 10.0, 250.0, sos, &n) == BCG_ERR_ORDER);
    CHECK(bcg_butter_bandpass(-3, 1.0, 10.0, 250.0, sos, &n) == BCG_ERR_ORDER);
    CHECK(bcg_butter_bandpass(BCG_MAX_ORDER + 1, 1.0, 10.0, 250.0, sos, &n) == BCG_ERR_ORDER);
    CHECK(bcg_butter_bandpass(2, 1.0, 4.0, BCG_MIN_FS - 0.5, sos, &n) == BCG_ERR_FS);
    CHECK(bcg_butter_bandpass(2, 1.0, 10.0, BCG_MAX_FS + 1.0, sos, &n) == BCG_ERR_FS);
    CHECK(bcg_butter_bandpass(2, 1.0, 10.0, NAN, sos, &n) == BCG_ERR_FS);
    CHECK(bcg_butter_bandpass(2, 1.0, 10.0, INFINITY, sos, &n) == BCG_ERR_FS);
    CHECK(bcg_butter_bandpass(2, 1.0, 10.0, -250.0, sos, &n) == BCG_ERR_FS);
    CHECK(bcg_butter_bandpass(2, 0.0, 10.0, 250.0, sos, &n) == BCG_ERR_BAND);
    CHECK(bcg_butter_bandpass(2, -1.0, 10.0, 250.0, sos, &n) == BCG_ERR_BAND);
    CHECK(bcg_butter_bandpass(2, 10.0, 10.0, 250.0, sos, &n) == BCG_ERR_BAND);
    CHECK(bcg_butter_bandpass(2, 20.0, 10.0, 250.0, sos, &n) == BCG_ERR_BAND);
    CHECK(bcg_butter_bandpass(2, 1.0, 125.0, 250.0, sos, &n) == BCG_ERR_BAND);
    CHECK(bcg_butter_bandpass(2, 1.0, 300.0, 250.0, sos, &n) == BCG_ERR_BAND);
    CHECK(bcg_butter_bandpass(2, NAN, 10.0, 250.0, sos, &n) == BCG_ERR_BAND);
    CHECK(bcg_butter_bandpass(2, 1.0, NAN, 250.0, sos, &n) == BCG_ERR_BAND);
    CHECK(bcg_butter_bandpass(2, 1.0, INFINITY, 250.0, sos, &n) == BCG_ERR_BAND);
    CHECK(n == -1); /* outputs untouched on error */
    /* the limits themselves are accepted */
    CHECK(bcg_butter_bandpass(1, 1.0, 4.0, BCG_MIN_FS, sos, &n) == BCG_OK && n == 1);
    CHECK(bcg_butter_bandpass(BCG_MAX_ORDER, 1.0, 9000.0, BCG_MAX_FS, sos, &n) == BCG_OK &&
          n == BCG_MAX_ORDER);
}

static void test_butter_golden(void)
{
    size_t i;
    for (i = 0; i < COUNT(BUTTER_CASES); i++) {
        const butter_case *c = &BUTTER_CASES[i];
        double sos[6 * BCG_MAX_ORDER];
        int n = 0;
        CHECK(bcg_butter_bandpass(c->order, c->lo, c->hi, c->fs, sos, &n) == BCG_OK);
        CHECK(n == c->order);
        CHECK(rows_close(sos, c->sos, c->order, 1e-12));
    }
}

static void test_sos_init_arguments(void)
{
    bcg_sos_filter f;
    double sos[6 * (BCG_MAX_SECTIONS + 1)];
    int i;

    for (i = 0; i < 6 * (BCG_MAX_SECTIONS + 1); i++) {
        sos[i] = (i % 6 == 3) ? 1.0 : 0.1;
    }
    CHECK(bcg_sos_init(NULL, sos, 1) == BCG_ERR_NULL);
    CHECK(bcg_sos_init(&f, NULL, 1) == BCG_ERR_NULL);
    CHECK(bcg_sos_init(&f, sos, 0) == BCG_ERR_SECTIONS);
    CHECK(bcg_sos_init(&f, sos, -1) == BCG_ERR_SECTIONS);
    CHECK(bcg_sos_init(&f, sos, BCG_MAX_SECTIONS + 1) == BCG_ERR_SECTIONS);
    CHECK(bcg_sos_init(&f, sos, BCG_MAX_SECTIONS) == BCG_OK && f.n_sections == BCG_MAX_SECTIONS);
    sos[6 + 3] = 2.0; /* a0 of the second section */
    CHECK(bcg_sos_init(&f, sos, 2) == BCG_ERR_COEF);
    CHECK(bcg_sos_init(&f, sos, 1) == BCG_OK);
    sos[6 + 3] = 1.0;
    sos[4] = NAN;
    CHECK(bcg_sos_init(&f, sos, 1) == BCG_ERR_COEF);
    sos[4] = INFINITY;
    CHECK(bcg_sos_init(&f, sos, 1) == BCG_ERR_COEF);
    sos[4] = 0.1;
    sos[0] = -INFINITY;
    CHECK(bcg_sos_init(&f, sos, 1) == BCG_ERR_COEF);
    /* reset tolerates NULL; prime and process report it */
    bcg_sos_reset(NULL);
    CHECK(bcg_sos_prime(NULL, 1.0) == BCG_ERR_NULL);
    CHECK(bcg_sos_process(NULL, sos, sos, 1) == BCG_ERR_NULL);
}

static void test_sos_golden(void)
{
    bcg_sos_filter f;
    double y[COUNT(SOSFILT_X)];
    size_t c, i;

    CHECK(COUNT(SOSFILT_Y) == COUNT(BUTTER_CASES));
    for (c = 0; c < COUNT(BUTTER_CASES); c++) {
        int same = 1;
        CHECK(bcg_sos_init(&f, BUTTER_CASES[c].sos, BUTTER_CASES[c].order) == BCG_OK);
        CHECK(bcg_sos_process(&f, SOSFILT_X, y, COUNT(SOSFILT_X)) == BCG_OK);
        for (i = 0; i < COUNT(SOSFILT_X); i++) {
            same &= y[i] == SOSFILT_Y[c][i]; /* bit-exact: same coefficients, same arithmetic */
        }
        if (!same) {
            printf("  sosfilt of the order-%d design differs\n", BUTTER_CASES[c].order);
        }
        CHECK(same);
    }

    CHECK(bcg_sos_init(&f, BUTTER_CASES[0].sos, 2) == BCG_OK);
    CHECK(bcg_sos_prime(&f, 1.0) == BCG_OK);
    for (i = 0; i < 4; i++) {
        CHECK(fabs(f.zi[i / 2][i % 2] - SOSFILT_ZI[i]) <= 1e-12 * fabs(SOSFILT_ZI[i]));
    }
    bcg_sos_reset(&f);
    for (i = 0; i < 4; i++) {
        CHECK(f.zi[i / 2][i % 2] == 0.0);
    }
}

static void test_sos_chunked_equals_one_shot(void)
{
    enum { N = 1000 };
    static double x[N], y_one[N], y_chunk[N];
    static const size_t chunk_sizes[] = {1, 2, 3, 7, 64, 333, 999};
    double sos[6 * BCG_MAX_ORDER];
    bcg_sos_filter f;
    int n = 0, same;
    size_t c, i, pos;

    CHECK(bcg_butter_bandpass(4, 0.7, 30.0, 250.0, sos, &n) == BCG_OK);
    for (i = 0; i < N; i++) {
        x[i] = 100.0 * noise() + 5.0 * sin(0.05 * (double)i) + 2000.0;
    }
    CHECK(bcg_sos_init(&f, sos, n) == BCG_OK);
    CHECK(bcg_sos_process(&f, x, y_one, N) == BCG_OK);

    for (c = 0; c < COUNT(chunk_sizes); c++) {
        bcg_sos_reset(&f);
        for (pos = 0; pos < N; pos += chunk_sizes[c]) {
            size_t len = N - pos < chunk_sizes[c] ? N - pos : chunk_sizes[c];
            bcg_sos_process(&f, x + pos, y_chunk + pos, len);
        }
        same = memcmp(y_one, y_chunk, sizeof y_one) == 0;
        CHECK(same);
    }

    /* zero-length call changes nothing; in-place (y == x) gives the same bits */
    bcg_sos_reset(&f);
    CHECK(bcg_sos_process(&f, x, y_chunk, 0) == BCG_OK);
    memcpy(y_chunk, x, sizeof x);
    CHECK(bcg_sos_process(&f, y_chunk, y_chunk, N) == BCG_OK);
    CHECK(memcmp(y_one, y_chunk, sizeof y_one) == 0);
}

static void test_sos_prime_no_transient(void)
{
    enum { N = 2000 };
    static double x[N], y[N];
    double sos[6 * BCG_MAX_ORDER];
    const double x0 = 51234.5; /* a large DC offset in ADC counts */
    bcg_sos_filter f;
    double worst = 0.0, worst_unprimed = 0.0;
    int n = 0;
    size_t i;

    CHECK(bcg_butter_bandpass(3, 0.5, 20.0, 250.0, sos, &n) == BCG_OK);
    CHECK(bcg_sos_init(&f, sos, n) == BCG_OK);
    for (i = 0; i < N; i++) {
        x[i] = x0;
    }
    CHECK(bcg_sos_prime(&f, x0) == BCG_OK);
    CHECK(bcg_sos_process(&f, x, y, N) == BCG_OK);
    for (i = 0; i < N; i++) {
        worst = fmax(worst, fabs(y[i]));
    }
    bcg_sos_reset(&f);
    bcg_sos_process(&f, x, y, N);
    for (i = 0; i < N; i++) {
        worst_unprimed = fmax(worst_unprimed, fabs(y[i]));
    }
    /* band-pass has zero DC gain: primed output stays at rounding level */
    CHECK(worst < 1e-9 * x0);
    CHECK(worst_unprimed > 1e-3 * x0); /* without priming there is a real step transient */
}

/* The sample rule: NaN, inf and |x| > 1e15 are refused, nothing consumed. */
static void test_sos_refuses_bad_samples(void)
{
    static const double bad[] = {NAN, INFINITY, -INFINITY, 1e307, -1.0000001e15};
    double sos[6 * BCG_MAX_ORDER], x[8], y[8], y_ref[8];
    bcg_sos_filter f, ref, before;
    int n = 0;
    size_t i, k;

    CHECK(bcg_butter_bandpass(2, 1.0, 10.0, 250.0, sos, &n) == BCG_OK);
    CHECK(bcg_sos_init(&f, sos, n) == BCG_OK);
    CHECK(bcg_sos_init(&ref, sos, n) == BCG_OK);
    for (i = 0; i < 8; i++) {
        x[i] = 1000.0 + (double)i;
    }
    CHECK(bcg_sos_process(&f, x, y, 8) == BCG_OK);
    CHECK(bcg_sos_process(&ref, x, y_ref, 8) == BCG_OK);
    for (k = 0; k < COUNT(bad); k++) {
        double xb[4] = {1.0, 2.0, 3.0, 4.0}, yb[4] = {-7.0, -7.0, -7.0, -7.0};
        xb[2] = bad[k];
        memcpy(&before, &f, sizeof f);
        CHECK(bcg_sos_process(&f, xb, yb, 4) == BCG_ERR_PARAM);
        CHECK(memcmp(&before, &f, sizeof f) == 0);        /* state unchanged */
        CHECK(yb[0] == -7.0 && yb[1] == -7.0 && yb[3] == -7.0); /* nothing written */
        CHECK(bcg_sos_prime(&f, bad[k]) == BCG_ERR_PARAM);
        CHECK(memcmp(&before, &f, sizeof f) == 0);
    }
    /* the call that was refused never happened: same output as the reference */
    CHECK(bcg_sos_process(&f, x, y, 8) == BCG_OK);
    CHECK(bcg_sos_process(&ref, x, y_ref, 8) == BCG_OK);
    CHECK(memcmp(y, y_ref, sizeof y) == 0);
    /* the limit itself is accepted, and the state stays finite */
    x[3] = 1e15;
    x[4] = -1e15;
    CHECK(bcg_sos_process(&f, x, y, 8) == BCG_OK);
    CHECK(isfinite(f.zi[0][0]) && isfinite(f.zi[1][1]) && isfinite(y[7]));
    CHECK(bcg_sos_prime(&f, -1e15) == BCG_OK);
    /* NULL buffers: only with n == 0 */
    CHECK(bcg_sos_process(&f, NULL, y, 1) == BCG_ERR_NULL);
    CHECK(bcg_sos_process(&f, x, NULL, 1) == BCG_ERR_NULL);
    memcpy(&before, &f, sizeof f);
    CHECK(bcg_sos_process(&f, NULL, NULL, 0) == BCG_OK);
    CHECK(memcmp(&before, &f, sizeof f) == 0);
}

/* Priming needs a finite DC gain in every section; on error the state is kept. */
static void test_sos_prime_errors(void)
{
    /* section 2 integrates: a1 = -1, a2 = 0, pole at z = 1 */
    const double integrator[12] = {1.0, 0.5, 0.0, 1.0, -0.5, 0.0, 1.0, 0.0, 0.0, 1.0, -1.0, 0.0};
    /* 1 + a1 + a2 = -2^-52: finite, but the steady state overflows */
    const double overflow[6] = {1e300, 0.0, 0.0, 1.0, -2.0, 1.0 - 0x1p-52};
    double x[3] = {1.0, 2.0, 3.0}, y[3];
    bcg_sos_filter f, before;

    CHECK(bcg_sos_init(&f, integrator, 2) == BCG_OK);
    CHECK(bcg_sos_process(&f, x, y, 3) == BCG_OK);
    memcpy(&before, &f, sizeof f);
    CHECK(bcg_sos_prime(&f, 1.0) == BCG_ERR_COEF);
    CHECK(bcg_sos_prime(&f, 0.0) == BCG_ERR_COEF);
    CHECK(memcmp(&before, &f, sizeof f) == 0);
    CHECK(bcg_sos_init(&f, integrator, 1) == BCG_OK); /* the first section alone is fine */
    CHECK(bcg_sos_prime(&f, 1.0) == BCG_OK && f.zi[0][0] == 2.0); /* sosfilt_zi: [2, 0] */

    CHECK(bcg_sos_init(&f, overflow, 1) == BCG_OK);
    memcpy(&before, &f, sizeof f);
    CHECK(bcg_sos_prime(&f, 1.0) == BCG_ERR_COEF);
    CHECK(memcmp(&before, &f, sizeof f) == 0);
}

static void test_sos_init_bandpass(void)
{
    double sos[6 * BCG_MAX_ORDER];
    int n_sections = 0;
    bcg_sos_filter direct, designed;
    CHECK(bcg_butter_bandpass(3, 0.5, 20.0, 250.0, sos, &n_sections) == BCG_OK);
    CHECK(bcg_sos_init(&direct, sos, n_sections) == BCG_OK);
    CHECK(bcg_sos_init_bandpass(&designed, 3, 0.5, 20.0, 250.0) == BCG_OK);
    CHECK(designed.n_sections == 3);
    CHECK(memcmp(designed.sos, direct.sos, sizeof direct.sos) == 0);
    CHECK(bcg_sos_init_bandpass(NULL, 3, 0.5, 20.0, 250.0) == BCG_ERR_NULL);
    CHECK(bcg_sos_init_bandpass(&designed, 0, 0.5, 20.0, 250.0) == BCG_ERR_ORDER);
    CHECK(bcg_sos_init_bandpass(&designed, 3, 20.0, 0.5, 250.0) == BCG_ERR_BAND);
}

int main(void)
{
    test_strerror();
    test_butter_arguments();
    test_butter_golden();
    test_sos_init_arguments();
    test_sos_golden();
    test_sos_chunked_equals_one_shot();
    test_sos_prime_no_transient();
    test_sos_refuses_bad_samples();
    test_sos_prime_errors();
    test_sos_init_bandpass();
    return check_report("test_filters");
}
