/*
 * sos.c - streaming cascade of second-order sections, direct form II
 * transposed, with the arithmetic of scipy.signal.sosfilt's inner loop:
 *
 *     y     = b0*x + z0
 *     z0    = b1*x - a1*y + z1
 *     z1    = b2*x - a2*y
 *
 * Each section's output depends only on its input and its state zi, so
 * processing the block section by section (two at a time, interleaved)
 * gives the bits of scipy's sample-by-sample loop, and any split of a
 * signal into chunks gives the same output bits as one call. Build with
 * -ffp-contract=off (no fused multiply-add) to get scipy's bits.
 *
 * Unlike sosfilt, bcg_sos_process refuses a block holding a NaN, an infinity
 * or a sample beyond +-BCG_MAX_ABS_SAMPLE (BCG_ERR_PARAM, state unchanged):
 * one such sample would otherwise poison the state for good.
 */
#include <math.h>
#include <string.h>

#include "bcg_dsp.h"
#include "internal.h"

bcg_status bcg_sos_init(bcg_sos_filter *st, const double *sos, int n_sections)
{
    int s, c;

    if (st == NULL || sos == NULL) {
        return BCG_ERR_NULL;
    }
    if (n_sections < 1 || n_sections > BCG_MAX_SECTIONS) {
        return BCG_ERR_SECTIONS;
    }
    for (s = 0; s < n_sections; s++) {
        for (c = 0; c < 6; c++) {
            if (!isfinite(sos[6 * s + c])) {
                return BCG_ERR_COEF;
            }
        }
        if (sos[6 * s + 3] != 1.0) {
            return BCG_ERR_COEF;
        }
    }
    memset(st, 0, sizeof *st);
    st->n_sections = n_sections;
    for (s = 0; s < n_sections; s++) {
        for (c = 0; c < 6; c++) {
            st->sos[s][c] = sos[6 * s + c];
        }
    }
    return BCG_OK;
}

bcg_status bcg_sos_init_bandpass(bcg_sos_filter *st, int order, double low_hz, double high_hz,
                                 double fs)
{
    double sos[6 * BCG_MAX_ORDER];
    int n_sections = 0;
    if (st == NULL)
        return BCG_ERR_NULL;
    bcg_status rc = bcg_butter_bandpass(order, low_hz, high_hz, fs, sos, &n_sections);
    if (rc != BCG_OK)
        return rc;
    return bcg_sos_init(st, sos, n_sections);
}

void bcg_sos_reset(bcg_sos_filter *st)
{
    int s;
    if (st == NULL) {
        return;
    }
    for (s = 0; s < BCG_MAX_SECTIONS; s++) {
        st->zi[s][0] = 0.0;
        st->zi[s][1] = 0.0;
    }
}

/*
 * scipy.signal.sosfilt_zi(sos) * x0. For each section (b, a) the steady state
 * of a unit step is lfilter_zi(b, a), the solution of
 *     (1 + a1) z0 - z1 = b1 - a1 b0,   a2 z0 + z1 = b2 - a2 b0
 * and the section's DC gain sum(b)/sum(a) scales the next section's input.
 * A section with a pole at z = 1 (1 + a1 + a2 == 0) has no steady state
 * (scipy's solve is singular there): BCG_ERR_COEF, as for a state that would
 * overflow. The new state is computed aside and stored only when all of it is
 * finite, so on any error the filter is unchanged.
 */
bcg_status bcg_sos_prime(bcg_sos_filter *st, double x0)
{
    double zi[BCG_MAX_SECTIONS][2];
    double scale = 1.0;
    int s;

    if (st == NULL) {
        return BCG_ERR_NULL;
    }
    if (!bcg_samples_valid(&x0, 1)) {
        return BCG_ERR_PARAM;
    }
    for (s = 0; s < st->n_sections; s++) {
        const double *c = st->sos[s];
        double b0 = c[0], b1 = c[1], b2 = c[2], a1 = c[4], a2 = c[5];
        double den = 1.0 + a1 + a2;
        double r0 = b1 - a1 * b0;
        double r1 = b2 - a2 * b0;
        double zi0, zi1;
        if (den == 0.0) {
            return BCG_ERR_COEF;
        }
        zi0 = (r0 + r1) / den;
        zi1 = r1 - a2 * zi0;
        zi[s][0] = scale * zi0 * x0;
        zi[s][1] = scale * zi1 * x0;
        if (!isfinite(zi[s][0]) || !isfinite(zi[s][1])) {
            return BCG_ERR_COEF;
        }
        scale *= (b0 + b1 + b2) / den;
    }
    memcpy(st->zi, zi, (size_t)st->n_sections * sizeof zi[0]);
    return BCG_OK;
}

/* One section over a block, its state in registers. */
static void section_process(const double *c, double *zi, const double *x, double *y, size_t n)
{
    const double b0 = c[0], b1 = c[1], b2 = c[2], a1 = c[4], a2 = c[5];
    double z0 = zi[0], z1 = zi[1];
    for (size_t i = 0; i < n; i++) {
        double in = x[i];
        double out = b0 * in + z0;
        z0 = b1 * in - a1 * out + z1;
        z1 = b2 * in - a2 * out;
        y[i] = out;
    }
    zi[0] = z0;
    zi[1] = z1;
}

/* Two cascaded sections over a block: their recurrences are independent
 * from sample to sample, so interleaving them hides each one's latency
 * (about twice the throughput of one section at a time). */
static void section_pair_process(const double *c, double *zc, const double *d, double *zd,
                                 const double *x, double *y, size_t n)
{
    const double b0 = c[0], b1 = c[1], b2 = c[2], a1 = c[4], a2 = c[5];
    const double e0 = d[0], e1 = d[1], e2 = d[2], g1 = d[4], g2 = d[5];
    double z0 = zc[0], z1 = zc[1], w0 = zd[0], w1 = zd[1];
    for (size_t i = 0; i < n; i++) {
        double in = x[i];
        double mid = b0 * in + z0;
        z0 = b1 * in - a1 * mid + z1;
        z1 = b2 * in - a2 * mid;
        double out = e0 * mid + w0;
        w0 = e1 * mid - g1 * out + w1;
        w1 = e2 * mid - g2 * out;
        y[i] = out;
    }
    zc[0] = z0;
    zc[1] = z1;
    zd[0] = w0;
    zd[1] = w1;
}

void bcg_sos_run(bcg_sos_filter *st, const double *x, double *y, size_t n)
{
    /* Section by section (in pairs) over the whole block: each section sees
     * the same inputs and does the same arithmetic as in scipy's
     * sample-by-sample loop, so the output bits are unchanged. */
    const double *in = x;
    int s = 0;
    for (; s + 1 < st->n_sections; s += 2) {
        section_pair_process(st->sos[s], st->zi[s], st->sos[s + 1], st->zi[s + 1], in, y, n);
        in = y;
    }
    if (s < st->n_sections)
        section_process(st->sos[s], st->zi[s], in, y, n);
}

bcg_status bcg_sos_process(bcg_sos_filter *st, const double *x, double *y, size_t n)
{
    if (st == NULL || ((x == NULL || y == NULL) && n > 0)) {
        return BCG_ERR_NULL;
    }
    if (!bcg_samples_valid(x, n)) {
        return BCG_ERR_PARAM;
    }
    if (n > 0) {
        bcg_sos_run(st, x, y, n);
    }
    return BCG_OK;
}
