/*
 * butter.c - digital Butterworth band-pass design.
 *
 * bcg_butter_bandpass() returns what scipy.signal.butter(order, [low, high],
 * 'band', fs=fs, output='sos') returns: same sections, same section order,
 * same pole/zero pairing, gain in the first section. It follows scipy's steps
 * (scipy/signal/_filter_design.py) one by one:
 *
 *   buttap -> prewarp (fs normalised to 2) -> lp2bp_zpk -> bilinear_zpk
 *          -> zpk2sos(pairing='nearest')   (with _cplxreal and
 *             _nearest_real_complex_idx)
 *
 * and each step uses the arithmetic of the numpy kernel scipy calls there:
 * complex products with one fused multiply-add (numpy's SIMD complex
 * multiply/square), complex quotients by Smith's method, complex magnitudes
 * as max * sqrt(1 + (min/max)^2) (numpy's SIMD absolute), products reduced in
 * plain arithmetic. fma() is the C99 library function, exact on every
 * machine, so the result does not depend on the compiler or the CPU.
 * Coefficients agree with scipy to a few ulp; the pairing decisions (which
 * compare pole magnitudes) therefore agree too, except where scipy itself
 * faces a tie within rounding noise (bands symmetric about fs/4), where
 * either choice gives the same cascade. Ill-conditioned designs amplify the
 * ulps: very narrow bands and edges next to Nyquist differ more (see the
 * figures in bcg_dsp.h).
 *
 * No allocation: every array is on the stack, bounded by BCG_MAX_ORDER.
 */
#include <complex.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "bcg_dsp.h"

#define MAX_ROOTS (2 * BCG_MAX_ORDER + 2) /* band-pass doubles the order, +1 pad pair */

static const double PI = 3.141592653589793; /* == numpy.pi */

typedef struct {
    double re, im;
} cx;

/* ---- complex arithmetic, as numpy computes it ---------------------------- */

static cx cx_make(double re, double im)
{
    cx r;
    r.re = re;
    r.im = im;
    return r;
}

static cx cx_add(cx a, cx b) { return cx_make(a.re + b.re, a.im + b.im); }

static cx cx_sub(cx a, cx b) { return cx_make(a.re - b.re, a.im - b.im); }

static cx cx_neg(cx a) { return cx_make(-a.re, -a.im); }

static cx cx_conj(cx a) { return cx_make(a.re, -a.im); }

/* numpy's vectorised complex multiply: one FMA per component. */
static cx cx_mul(cx a, cx b)
{
    return cx_make(fma(a.re, b.re, -(a.im * b.im)), fma(a.re, b.im, a.im * b.re));
}

/* numpy's scalar-loop multiply (np.prod reductions, np.convolve): plain arithmetic. */
static cx cx_mul_plain(cx a, cx b)
{
    return cx_make(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re);
}

/* numpy's vectorised complex square (x**2). */
static cx cx_sq(cx a) { return cx_make(fma(a.re, a.re, -(a.im * a.im)), fma(a.re, a.im, a.im * a.re)); }

/* numpy's complex division (Smith's method). */
static cx cx_div(cx a, cx b)
{
    double abs_br = fabs(b.re), abs_bi = fabs(b.im);
    if (abs_br >= abs_bi) {
        double rat, scl;
        if (abs_br == 0.0 && abs_bi == 0.0) {
            return cx_make(a.re / abs_br, a.im / abs_br);
        }
        rat = b.im / b.re;
        scl = 1.0 / (b.re + b.im * rat);
        return cx_make((a.re + a.im * rat) * scl, (a.im - a.re * rat) * scl);
    } else {
        double rat = b.re / b.im;
        double scl = 1.0 / (b.im + b.re * rat);
        return cx_make((a.re * rat + a.im) * scl, (a.im * rat - a.re) * scl);
    }
}

/* numpy's vectorised complex absolute value. */
static double cx_abs(cx a)
{
    double re = fabs(a.re), im = fabs(a.im), larger, smaller, ratio;
    if (isinf(re) || isinf(im)) {
        return INFINITY;
    }
    if (isnan(re) || isnan(im)) {
        return NAN;
    }
    larger = re > im ? re : im;
    smaller = re > im ? im : re;
    ratio = larger == 0.0 ? 0.0 : smaller / larger;
    return sqrt(fma(ratio, ratio, 1.0)) * larger;
}

static int cx_isreal(cx a) { return a.im == 0.0; }

static double complex to_c99(cx a)
{
    double complex z;
    double parts[2];
    parts[0] = a.re;
    parts[1] = a.im;
    memcpy(&z, parts, sizeof z); /* C99 6.2.5p13: same layout as double[2] */
    return z;
}

static cx from_c99(double complex z) { return cx_make(creal(z), cimag(z)); }

static void cx_delete(cx *v, int *n, int idx)
{
    int i;
    for (i = idx; i + 1 < *n; i++) {
        v[i] = v[i + 1];
    }
    (*n)--;
}

/* ---- scipy._cplxreal ------------------------------------------------------ */

/* Stable insertion sort by (real part, |imag|), like np.lexsort((abs(imag), real)). */
static void sort_real_then_absimag(cx *v, int n)
{
    int i, j;
    for (i = 1; i < n; i++) {
        cx key = v[i];
        for (j = i - 1; j >= 0; j--) {
            int after = v[j].re > key.re || (v[j].re == key.re && fabs(v[j].im) > fabs(key.im));
            if (!after) {
                break;
            }
            v[j + 1] = v[j];
        }
        v[j + 1] = key;
    }
}

/* Stable insertion sort of v[start..stop) by |imag|. */
static void sort_absimag(cx *v, int start, int stop)
{
    int i, j;
    for (i = start + 1; i < stop; i++) {
        cx key = v[i];
        for (j = i - 1; j >= start && fabs(v[j].im) > fabs(key.im); j--) {
            v[j + 1] = v[j];
        }
        v[j + 1] = key;
    }
}

/*
 * Replace v[0..*n) by its conjugate pairs (one value each, positive imaginary
 * part, sorted by real part then |imag|, each the average of the pair) followed
 * by its real values (sorted). Returns 0, or -1 if a value has no conjugate.
 */
static int cplxreal(cx *v, int *n)
{
    const double tol = 100.0 * DBL_EPSILON;
    cx z[MAX_ROOTS], zr[MAX_ROOTS], zp[MAX_ROOTS], zn[MAX_ROOTS];
    int count = *n, nr = 0, npos = 0, nneg = 0, i, start;

    if (count == 0) {
        return 0;
    }
    memcpy(z, v, (size_t)count * sizeof z[0]);
    sort_real_then_absimag(z, count);
    for (i = 0; i < count; i++) {
        if (fabs(z[i].im) <= tol * cx_abs(z[i])) {
            zr[nr++] = cx_make(z[i].re, 0.0);
        } else if (z[i].im > 0.0) {
            zp[npos++] = z[i];
        } else if (z[i].im < 0.0) {
            zn[nneg++] = z[i];
        }
    }
    if (npos != nneg || nr + npos + nneg != count) {
        return -1;
    }
    /* runs of (nearly) equal real part, each sorted by |imag| */
    start = -1;
    for (i = 0; i + 1 < npos; i++) {
        int same = (zp[i + 1].re - zp[i].re) <= tol * cx_abs(zp[i]);
        if (same && start < 0) {
            start = i;
        } else if (!same && start >= 0) {
            sort_absimag(zp, start, i + 1);
            sort_absimag(zn, start, i + 1);
            start = -1;
        }
    }
    if (start >= 0) {
        sort_absimag(zp, start, npos);
        sort_absimag(zn, start, npos);
    }
    for (i = 0; i < npos; i++) {
        if (cx_abs(cx_sub(zp[i], cx_conj(zn[i]))) > tol * cx_abs(zn[i])) {
            return -1;
        }
        v[i] = cx_div(cx_add(zp[i], cx_conj(zn[i])), cx_make(2.0, 0.0));
    }
    for (i = 0; i < nr; i++) {
        v[npos + i] = zr[i];
    }
    *n = npos + nr;
    return 0;
}

/* ---- zpk2sos(pairing='nearest') ------------------------------------------- */

enum which { ANY_ROOT, REAL_ROOT, COMPLEX_ROOT };

/* scipy._nearest_real_complex_idx: index of the root of the kind `which`
 * nearest to `to` (first one on a tie), or -1 if there is none. */
static int nearest_idx(const cx *v, int n, cx to, enum which which)
{
    int i, best = -1;
    double best_d = 0.0;
    for (i = 0; i < n; i++) {
        double d;
        if ((which == REAL_ROOT && !cx_isreal(v[i])) ||
            (which == COMPLEX_ROOT && cx_isreal(v[i]))) {
            continue;
        }
        d = cx_abs(cx_sub(v[i], to));
        if (best < 0 || d < best_d) {
            best = i;
            best_d = d;
        }
    }
    return best;
}

/* argmin |1 - |p|| over p[i] with i in idx (or all if idx is NULL): the pole
 * closest to the unit circle; first one on a tie. Returns the index into p. */
static int idx_worst(const cx *p, int n, int real_only)
{
    int i, best = -1;
    double best_d = 0.0;
    for (i = 0; i < n; i++) {
        double d;
        if (real_only && !cx_isreal(p[i])) {
            continue;
        }
        d = fabs(1.0 - cx_abs(p[i]));
        if (best < 0 || d < best_d) {
            best = i;
            best_d = d;
        }
    }
    return best;
}

static int count_real(const cx *v, int n)
{
    int i, c = 0;
    for (i = 0; i < n; i++) {
        c += cx_isreal(v[i]);
    }
    return c;
}

/* np.poly: coefficients of prod (x - r_i), highest power first; real part
 * (the roots given here are real or a conjugate pair). Returns the length. */
static int poly(const cx *roots, int n, double *out)
{
    cx a[3];
    int len = 1, i, j;
    a[0] = cx_make(1.0, 0.0);
    for (i = 0; i < n; i++) {
        cx neg = cx_neg(roots[i]);
        cx next[3];
        next[0] = a[0];
        for (j = 1; j < len; j++) {
            next[j] = cx_add(a[j], cx_mul_plain(a[j - 1], neg));
        }
        next[len] = cx_mul_plain(a[len - 1], neg);
        len++;
        for (j = 0; j < len; j++) {
            a[j] = next[j];
        }
    }
    for (j = 0; j < len; j++) {
        out[j] = a[j].re;
    }
    return len;
}

/* scipy._single_zpksos: one section from up to two zeros and two poles. */
static void single_zpksos(const cx *z, int nz, const cx *p, int np_, double *row)
{
    double b[3], a[3];
    int lb = poly(z, nz, b), la = poly(p, np_, a), i;
    for (i = 0; i < 6; i++) {
        row[i] = 0.0;
    }
    for (i = 0; i < lb; i++) {
        row[3 - lb + i] = b[i];
    }
    for (i = 0; i < la; i++) {
        row[6 - la + i] = a[i];
    }
}

/* scipy.signal.zpk2sos(z, p, k, pairing='nearest') for a digital filter.
 * z and p are consumed. Returns the number of sections, or -1. */
static int zpk2sos(cx *z, int nz, cx *p, int np_, double k, double *sos)
{
    int n_sections, si, i;
    cx zero = cx_make(0.0, 0.0);

    while (np_ < nz) {
        p[np_++] = zero;
    }
    while (nz < np_) {
        z[nz++] = zero;
    }
    n_sections = (np_ + 1) / 2;
    if (np_ % 2 == 1) {
        p[np_++] = zero;
        z[nz++] = zero;
    }
    if (cplxreal(z, &nz) != 0 || cplxreal(p, &np_) != 0) {
        return -1;
    }

    for (si = n_sections - 1; si >= 0; si--) {
        double *row = sos + 6 * si;
        int p1_idx = idx_worst(p, np_, 0);
        cx p1 = p[p1_idx], p2, zs[2], ps[2];
        cx_delete(p, &np_, p1_idx);

        if (cx_isreal(p1) && count_real(p, np_) == 0) {
            /* special case 1: last remaining real pole */
            int z1_idx = nearest_idx(z, nz, p1, REAL_ROOT);
            if (z1_idx < 0) {
                return -1;
            }
            zs[0] = z[z1_idx];
            zs[1] = zero;
            ps[0] = p1;
            ps[1] = zero;
            cx_delete(z, &nz, z1_idx);
            single_zpksos(zs, 2, ps, 2, row);
        } else if (np_ + 1 == nz && !cx_isreal(p1) && count_real(p, np_) == 1 &&
                   count_real(z, nz) == 1) {
            /* special case 2: one real pole and one real zero left; the
             * complex pole must take a complex zero */
            int z1_idx = nearest_idx(z, nz, p1, COMPLEX_ROOT);
            if (z1_idx < 0) {
                return -1;
            }
            zs[0] = z[z1_idx];
            zs[1] = cx_conj(zs[0]);
            ps[0] = p1;
            ps[1] = cx_conj(p1);
            cx_delete(z, &nz, z1_idx);
            single_zpksos(zs, 2, ps, 2, row);
        } else {
            if (cx_isreal(p1)) {
                int p2_idx = idx_worst(p, np_, 1);
                p2 = p[p2_idx];
                cx_delete(p, &np_, p2_idx);
            } else {
                p2 = cx_conj(p1);
            }
            ps[0] = p1;
            ps[1] = p2;
            if (nz > 0) {
                int z1_idx = nearest_idx(z, nz, p1, ANY_ROOT);
                zs[0] = z[z1_idx];
                cx_delete(z, &nz, z1_idx);
                if (!cx_isreal(zs[0])) {
                    zs[1] = cx_conj(zs[0]);
                    single_zpksos(zs, 2, ps, 2, row);
                } else if (nz > 0) {
                    int z2_idx = nearest_idx(z, nz, p1, REAL_ROOT);
                    if (z2_idx < 0) {
                        return -1;
                    }
                    zs[1] = z[z2_idx];
                    cx_delete(z, &nz, z2_idx);
                    single_zpksos(zs, 2, ps, 2, row);
                } else {
                    single_zpksos(zs, 1, ps, 2, row);
                }
            } else {
                single_zpksos(zs, 0, ps, 2, row);
            }
        }
    }
    if (np_ != 0 || nz != 0) {
        return -1;
    }
    for (i = 0; i < 3; i++) {
        sos[i] *= k;
    }
    return n_sections;
}

/* ---- the design ----------------------------------------------------------- */

bcg_status bcg_butter_bandpass(int order, double low_hz, double high_hz, double fs,
                               double *sos, int *n_sections)
{
    cx p_proto[BCG_MAX_ORDER], p[MAX_ROOTS], z[MAX_ROOTS];
    cx four = cx_make(4.0, 0.0), num, den;
    double out[6 * BCG_MAX_ORDER];
    double wn_lo, wn_hi, w_lo, w_hi, bw, wo, k, inv_2n;
    int i, n_p, n_z, n;

    if (sos == NULL || n_sections == NULL) {
        return BCG_ERR_NULL;
    }
    if (order < 1 || order > BCG_MAX_ORDER) {
        return BCG_ERR_ORDER;
    }
    if (!isfinite(fs) || fs < BCG_MIN_FS || fs > BCG_MAX_FS) {
        return BCG_ERR_FS;
    }
    if (!isfinite(low_hz) || !isfinite(high_hz) || !(low_hz > 0.0) || !(low_hz < high_hz) ||
        !(high_hz < fs / 2.0)) {
        return BCG_ERR_BAND;
    }

    /* buttap: p = -exp(1j*pi*m/(2N)), m = -N+1, -N+3, ..., N-1; k = 1 */
    inv_2n = 1.0 / (2.0 * order); /* numpy divides by (2N + 0j): multiplies by 1/(2N) */
    for (i = 0; i < order; i++) {
        double m = (double)(-order + 1 + 2 * i);
        cx arg = cx_mul(cx_make(0.0, PI), cx_make(m, 0.0));
        arg = cx_make((arg.re + arg.im * 0.0) * inv_2n, (arg.im - arg.re * 0.0) * inv_2n);
        p_proto[i] = cx_neg(from_c99(cexp(to_c99(arg))));
    }

    /* prewarp with fs normalised to 2: warped = 2*fs*tan(pi*Wn/fs), Wn = f/(fs/2) */
    wn_lo = low_hz / (fs / 2.0);
    wn_hi = high_hz / (fs / 2.0);
    w_lo = 4.0 * tan(PI * wn_lo / 2.0);
    w_hi = 4.0 * tan(PI * wn_hi / 2.0);
    bw = w_hi - w_lo;
    wo = sqrt(w_lo * w_hi);

    /* lp2bp_zpk: p_lp = p*bw/2; p_bp = p_lp +- sqrt(p_lp^2 - wo^2); N zeros at 0;
     * k = bw^N */
    for (i = 0; i < order; i++) {
        cx p_lp = cx_div(cx_mul(p_proto[i], cx_make(bw, 0.0)), cx_make(2.0, 0.0));
        cx root = from_c99(csqrt(to_c99(cx_sub(cx_sq(p_lp), cx_make(wo * wo, 0.0)))));
        p[i] = cx_add(p_lp, root);
        p[order + i] = cx_sub(p_lp, root);
    }
    n_p = 2 * order;
    k = 1.0 * pow(bw, (double)order);

    /* bilinear_zpk with fs = 2 (fs2 = 4): zeros at 0 -> 1, the N zeros at
     * infinity -> -1; k *= real(prod(4 - z) / prod(4 - p)) */
    num = cx_sub(four, cx_make(0.0, 0.0));
    for (i = 1; i < order; i++) {
        num = cx_mul_plain(num, cx_sub(four, cx_make(0.0, 0.0)));
    }
    den = cx_sub(four, p[0]);
    for (i = 1; i < n_p; i++) {
        den = cx_mul_plain(den, cx_sub(four, p[i]));
    }
    k = k * cx_div(num, den).re;
    for (i = 0; i < n_p; i++) {
        p[i] = cx_div(cx_add(four, p[i]), cx_sub(four, p[i]));
    }
    for (i = 0; i < order; i++) {
        z[i] = cx_div(cx_add(four, cx_make(0.0, 0.0)), cx_sub(four, cx_make(0.0, 0.0)));
        z[order + i] = cx_make(-1.0, 0.0);
    }
    n_z = 2 * order;

    /* the caller's buffers are written only on success */
    n = zpk2sos(z, n_z, p, n_p, k, out);
    if (n != order) {
        return BCG_ERR_BAND; /* numerically degenerate band: no valid design */
    }
    for (i = 0; i < 6 * n; i++) {
        if (!isfinite(out[i])) {
            return BCG_ERR_BAND;
        }
    }
    memcpy(sos, out, (size_t)(6 * n) * sizeof out[0]);
    *n_sections = n;
    return BCG_OK;
}
