/*
 * sos.c - streaming cascade of second-order sections, direct form II
 * transposed, with the arithmetic of scipy.signal.sosfilt's inner loop:
 *
 *     y     = b0*x + z0
 *     z0    = b1*x - a1*y + z1
 *     z1    = b2*x - a2*y
 *
 * Samples are processed one at a time through all sections, and the only
 * state is zi, so any split of a signal into chunks gives the same output
 * bits as one call. Build with -ffp-contract=off (no fused multiply-add) to
 * get scipy's bits.
 */
#include <math.h>
#include <string.h>

#include "bcg_dsp.h"

bcg_status bcg_sos_init(bcg_sos_filter *f, const double *sos, int n_sections)
{
    int s, c;

    if (f == NULL || sos == NULL) {
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
    memset(f, 0, sizeof *f);
    f->n_sections = n_sections;
    for (s = 0; s < n_sections; s++) {
        for (c = 0; c < 6; c++) {
            f->sos[s][c] = sos[6 * s + c];
        }
    }
    return BCG_OK;
}

void bcg_sos_reset(bcg_sos_filter *f)
{
    int s;
    if (f == NULL) {
        return;
    }
    for (s = 0; s < BCG_MAX_SECTIONS; s++) {
        f->zi[s][0] = 0.0;
        f->zi[s][1] = 0.0;
    }
}

/*
 * scipy.signal.sosfilt_zi(sos) * x0. For each section (b, a) the steady state
 * of a unit step is lfilter_zi(b, a), the solution of
 *     (1 + a1) z0 - z1 = b1 - a1 b0,   a2 z0 + z1 = b2 - a2 b0
 * and the section's DC gain sum(b)/sum(a) scales the next section's input.
 * A section with a pole at z = 1 (1 + a1 + a2 == 0) has no steady state: its
 * state is left non-finite, like scipy's singular solve.
 */
void bcg_sos_prime(bcg_sos_filter *f, double x0)
{
    double scale = 1.0;
    int s;

    if (f == NULL) {
        return;
    }
    for (s = 0; s < f->n_sections; s++) {
        const double *c = f->sos[s];
        double b0 = c[0], b1 = c[1], b2 = c[2], a1 = c[4], a2 = c[5];
        double r0 = b1 - a1 * b0;
        double r1 = b2 - a2 * b0;
        double zi0 = (r0 + r1) / (1.0 + a1 + a2);
        double zi1 = r1 - a2 * zi0;
        f->zi[s][0] = scale * zi0 * x0;
        f->zi[s][1] = scale * zi1 * x0;
        scale *= (b0 + b1 + b2) / (1.0 + a1 + a2);
    }
}

void bcg_sos_process(bcg_sos_filter *f, const double *x, double *y, size_t n)
{
    const int n_sections = f->n_sections;
    size_t i;
    int s;

    for (i = 0; i < n; i++) {
        double x_cur = x[i];
        for (s = 0; s < n_sections; s++) {
            const double *c = f->sos[s];
            double *zi = f->zi[s];
            double x_new = c[0] * x_cur + zi[0];
            zi[0] = c[1] * x_cur - c[4] * x_new + zi[1];
            zi[1] = c[2] * x_cur - c[5] * x_new;
            x_cur = x_new;
        }
        y[i] = x_cur;
    }
}
