/*
 * spmm_ref.c - float64 dense reference of the SpMM epilogue problem and the
 * error metric of the SpMM tests (spmm_cpu.h). Deliberately naive: it
 * shares no code with the kernels it checks, the activations included.
 */
#include "kernels/cpu/spmm_cpu.h"

#include "sprun.h"

#include <math.h>

static double act_f64(int act, double v, double alpha, double beta)
{
    switch (act) {
    case SP_ACT_RELU: return v > 0.0 ? v : 0.0;
    case SP_ACT_CLIP: return v < alpha ? alpha : (v > beta ? beta : v);
    case SP_ACT_SIGMOID: return 1.0 / (1.0 + exp(-v));
    case SP_ACT_GELU: return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
    case SP_ACT_TANH: return tanh(v);
    case SP_ACT_HARDSWISH: return v * fmin(1.0, fmax(0.0, v / 6.0 + 0.5));
    case SP_ACT_HARDSIGMOID: return fmin(1.0, fmax(0.0, alpha * v + beta));
    case SP_ACT_LEAKYRELU: return v >= 0.0 ? v : alpha * v;
    default: return v;
    }
}

int sp_spmm_ref_f64(const float *dense_w, int64_t m, int64_t k, const sp_spmm_args *a,
                    double *y_ref)
{
    if (!a || !y_ref || m < 0 || k < 0 || a->n < 0 || (m * k > 0 && !dense_w) ||
        (k > 0 && a->n > 0 && !a->x) || a->act < SP_ACT_NONE || a->act > SP_ACT_LEAKYRELU)
        return SPRUN_ERR_INVALID_ARGUMENT;
    for (int64_t i = 0; i < m; i++)
        for (int64_t n = 0; n < a->n; n++) {
            double s = 0.0;
            for (int64_t j = 0; j < k; j++)
                s += (double)dense_w[i * k + j] * (double)a->x[j * a->x_sk + n * a->x_sn];
            if (a->bias)
                s += a->bias[i];
            if (a->residual)
                s += a->residual[i * a->r_sm + n * a->r_sn];
            y_ref[i * a->y_sm + n * a->y_sn] = act_f64(a->act, s, a->alpha, a->beta);
        }
    return 0;
}

double sp_spmm_rel_l2(const float *y, const double *ref, int64_t m, int64_t n, int64_t y_sm,
                      int64_t y_sn)
{
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            const int64_t o = i * y_sm + j * y_sn;
            if (!isfinite(y[o]))
                return INFINITY;
            const double d = (double)y[o] - ref[o];
            num += d * d;
            den += ref[o] * ref[o];
        }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}
