/* norm.cu: the GPU twins of norm.h's normalisations and of ae.c's fused SPADE / AdaIN modulation: group
 * (and instance) norm with its forward-mode tangent, ActNorm, batch norm, PyTorch's spectral norm and the
 * BigGAN decoder's variant.
 *
 * What it is not: the modules around them, or the parameters' bookkeeping; the argument order and the
 * formulas are the CPU kernels' (norm.c), evaluated in the same precision: statistics and sums in double,
 * the saved mean and rstd rounded to `real` before use, exactly as there.
 *
 * Layout of the work: one block of THREADS threads per group (n, g) of group norm, or per channel of the
 * per-channel sums (ActNorm, batch norm, the parameter gradients). Each thread adds its strided share in
 * order and block_sum adds the shares as a fixed tree, so results repeat bitwise. Spectral norm's
 * matrix-vector products run one thread per column (W^T u) or one block per row (W v).
 * Dimension legend: N batch, C channels, S spatial size, G groups, cpg = C / G channels per group,
 * M = cpg S values per group, Cout x K a weight as a matrix, T frames and HW positions of the modulation.
 */
#include "cuda/sum.cuh"

/* ==== group norm ======================================================================================== */

/* mean and rstd of the M contiguous values of one group, two passes as group_stats in norm.c */
__device__ static void group_stats(const real *x, size_t m, double eps, double *sh, real *mean, real *rstd) {
    double s = 0;
    for (size_t j = threadIdx.x; j < m; j += THREADS) s += x[j];
    double mu = block_sum(s, sh) / (double)m;
    double v = 0;
    for (size_t j = threadIdx.x; j < m; j += THREADS) {
        double d = x[j] - mu;
        v += d * d;
    }
    double var = block_sum(v, sh) / (double)m;
    *mean = (real)mu;
    *rstd = (real)(1.0 / sqrt(var + eps));
}

__global__ static void gn_forward_kernel(real *y, real *mean, real *rstd, const real *x, const real *weight,
                                         const real *bias, int C, size_t S, int G, double eps) {
    __shared__ double sh[THREADS];
    int i = blockIdx.x, g = i % G, cpg = C / G;
    size_t m = (size_t)cpg * S;
    const real *xg = x + (size_t)i * m;
    real *yg = y + (size_t)i * m;
    real mu, r;
    group_stats(xg, m, eps, sh, &mu, &r);
    if (threadIdx.x == 0) {
        mean[i] = mu;
        rstd[i] = r;
    }
    for (size_t j = threadIdx.x; j < m; j += THREADS) {
        int ch = g * cpg + (int)(j / S);
        real scale = r * (weight ? weight[ch] : 1), shift = bias ? bias[ch] : 0;
        yg[j] = (xg[j] - mu) * scale + shift;
    }
}

void group_norm_forward_cuda(real *y, real *mean, real *rstd, const real *x, const real *weight, const real *bias,
                             int N, int C, size_t S, int G, double eps) {
    if (N * G == 0) return;
    int prof = prof_begin("group_norm_forward", LIB_OWN, 0);
    gn_forward_kernel<<<N * G, THREADS, 0, cuda_stream()>>>(y, mean, rstd, x, weight, bias, C, S, G, eps);
    cuda_launched("group_norm_forward");
    prof_end(prof);
}

/* one block per channel: dweight += sum_n,s dy xhat, dbias += sum_n,s dy */
__global__ static void gn_param_grad_kernel(real *dweight, real *dbias, const real *mean, const real *rstd,
                                            const real *dy, const real *x, int N, int C, size_t S, int G) {
    __shared__ double sh[THREADS];
    int ch = blockIdx.x, g = ch / (C / G);
    double sw = 0, sb = 0;
    for (int n = 0; n < N; n++) {
        size_t off = ((size_t)n * C + ch) * S;
        real mu = mean[n * G + g], r = rstd[n * G + g];
        double dot = 0;
        for (size_t s = threadIdx.x; s < S; s += THREADS) {
            dot += (double)dy[off + s] * (x[off + s] - mu);
            sb += dy[off + s];
        }
        sw += r * dot;
    }
    sw = block_sum(sw, sh);
    sb = block_sum(sb, sh);
    if (threadIdx.x == 0) {
        if (dweight) dweight[ch] += (real)sw;
        if (dbias) dbias[ch] += (real)sb;
    }
}

/* one block per group: h = dy weight, dx += rstd (h - mean(h) - xhat mean(h xhat)) */
__global__ static void gn_backward_kernel(real *dx, const real *mean, const real *rstd, const real *dy,
                                          const real *x, const real *weight, int C, size_t S, int G) {
    __shared__ double sh[THREADS];
    int i = blockIdx.x, g = i % G, cpg = C / G;
    size_t m = (size_t)cpg * S, base = (size_t)i * m;
    real mu = mean[i], r = rstd[i];
    double shh = 0, shx = 0;
    for (size_t j = threadIdx.x; j < m; j += THREADS) {
        real w = weight ? weight[g * cpg + (int)(j / S)] : 1;
        shh += (double)w * dy[base + j];
        shx += (double)w * r * ((double)dy[base + j] * (x[base + j] - mu));
    }
    real mh = (real)(block_sum(shh, sh) / (double)m), mhx = (real)(block_sum(shx, sh) / (double)m);
    for (size_t j = threadIdx.x; j < m; j += THREADS) {
        real w = weight ? weight[g * cpg + (int)(j / S)] : 1;
        dx[base + j] += r * (dy[base + j] * w - mh - (x[base + j] - mu) * r * mhx);
    }
}

void group_norm_backward_cuda(real *dx, real *dweight, real *dbias, const real *mean, const real *rstd,
                              const real *dy, const real *x, const real *weight, int N, int C, size_t S, int G) {
    int prof = prof_begin("group_norm_backward", LIB_OWN, 0);
    if ((dweight || dbias) && C > 0) {
        gn_param_grad_kernel<<<C, THREADS, 0, cuda_stream()>>>(dweight, dbias, mean, rstd, dy, x, N, C, S, G);
        cuda_launched("group_norm_param_grad");
    }
    if (dx && N * G > 0) {
        gn_backward_kernel<<<N * G, THREADS, 0, cuda_stream()>>>(dx, mean, rstd, dy, x, weight, C, S, G);
        cuda_launched("group_norm_backward");
    }
    prof_end(prof);
}

/* ---- the tangent (norm.h): saved (4, N, G) = mean, rstd, sum t, sum xhat t ---------------------------------- */

__global__ static void gn_jvp_forward_kernel(real *dy, real *saved, const real *x, const real *t, const real *weight,
                                             int N, int C, size_t S, int G, double eps) {
    __shared__ double sh[THREADS];
    int i = blockIdx.x, g = i % G, cpg = C / G;
    size_t m = (size_t)cpg * S, ng = (size_t)N * G, base = (size_t)i * m;
    real mu, r;
    group_stats(x + base, m, eps, sh, &mu, &r);
    double st = 0, bt = 0;
    for (size_t j = threadIdx.x; j < m; j += THREADS) {
        st += t[base + j];
        bt += (x[base + j] - mu) * r * t[base + j];
    }
    st = block_sum(st, sh);
    bt = block_sum(bt, sh);
    if (threadIdx.x == 0) {
        saved[i] = mu;
        saved[ng + i] = r;
        saved[2 * ng + i] = (real)st;
        saved[3 * ng + i] = (real)bt;
    }
    real mt = (real)(st / (double)m), mbt = (real)(bt / (double)m);
    for (size_t j = threadIdx.x; j < m; j += THREADS) {
        real w = weight ? weight[g * cpg + (int)(j / S)] : 1;
        dy[base + j] = w * r * (t[base + j] - mt - (x[base + j] - mu) * r * mbt);
    }
}

void group_norm_jvp_forward_cuda(real *dy, real *saved, const real *x, const real *t, const real *weight, int N,
                                 int C, size_t S, int G, double eps) {
    if (N * G == 0) return;
    int prof = prof_begin("group_norm_jvp_forward", LIB_OWN, 0);
    gn_jvp_forward_kernel<<<N * G, THREADS, 0, cuda_stream()>>>(dy, saved, x, t, weight, N, C, S, G, eps);
    cuda_launched("group_norm_jvp_forward");
    prof_end(prof);
}

__global__ static void gn_jvp_weight_kernel(real *dweight, const real *saved, const real *gy, const real *x,
                                            const real *t, int N, int C, size_t S, int G) {
    __shared__ double sh[THREADS];
    int ch = blockIdx.x, g = ch / (C / G);
    size_t m = (size_t)(C / G) * S, ng = (size_t)N * G;
    double sw = 0;
    for (int n = 0; n < N; n++) {
        size_t i = (size_t)n * G + g, off = ((size_t)n * C + ch) * S;
        real mu = saved[i], r = saved[ng + i];
        real mt = (real)(saved[2 * ng + i] / (double)m), mbt = (real)(saved[3 * ng + i] / (double)m);
        for (size_t s = threadIdx.x; s < S; s += THREADS)
            sw += gy[off + s] * (r * (t[off + s] - mt - (x[off + s] - mu) * r * mbt));
    }
    sw = block_sum(sw, sh);
    if (threadIdx.x == 0) dweight[ch] += (real)sw;
}

__global__ static void gn_jvp_backward_kernel(real *dx, real *dt, const real *saved, const real *gy, const real *x,
                                              const real *t, const real *weight, int N, int C, size_t S, int G) {
    __shared__ double sh[THREADS];
    int i = blockIdx.x, g = i % G, cpg = C / G;
    size_t m = (size_t)cpg * S, ng = (size_t)N * G, base = (size_t)i * m;
    real mu = saved[i], r = saved[ng + i];
    double st = saved[2 * ng + i], bt = saved[3 * ng + i], dm = (double)m;
    double shh = 0, sa = 0, sht = 0;
    for (size_t j = threadIdx.x; j < m; j += THREADS) {
        real w = weight ? weight[g * cpg + (int)(j / S)] : 1;
        double h = gy[base + j] * w;
        shh += h;
        sa += h * ((x[base + j] - mu) * r);
        sht += h * t[base + j];
    }
    shh = block_sum(shh, sh);
    sa = block_sum(sa, sh);
    sht = block_sum(sht, sh);
    double K = sht - shh * st / dm - sa * bt / dm;
    real mh = (real)(shh / dm), ma = (real)(sa / dm), mt = (real)(st / dm);
    real cx = (real)(-(double)r * r / dm), cb = (real)bt, ca = (real)sa, ck = (real)(K - 2 * sa * bt / dm);
    for (size_t j = threadIdx.x; j < m; j += THREADS) {
        real w = weight ? weight[g * cpg + (int)(j / S)] : 1;
        real h = gy[base + j] * w, xhat = (x[base + j] - mu) * r;
        if (dt) dt[base + j] += r * (h - mh - xhat * ma);
        if (dx) dx[base + j] += cx * (cb * (h - mh) + ca * (t[base + j] - mt) + ck * xhat);
    }
}

void group_norm_jvp_backward_cuda(real *dx, real *dt, real *dweight, const real *saved, const real *g,
                                  const real *x, const real *t, const real *weight, int N, int C, size_t S, int G) {
    int prof = prof_begin("group_norm_jvp_backward", LIB_OWN, 0);
    if (dweight && C > 0) {
        gn_jvp_weight_kernel<<<C, THREADS, 0, cuda_stream()>>>(dweight, saved, g, x, t, N, C, S, G);
        cuda_launched("group_norm_jvp_weight");
    }
    if ((dx || dt) && N * G > 0) {
        gn_jvp_backward_kernel<<<N * G, THREADS, 0, cuda_stream()>>>(dx, dt, saved, g, x, t, weight, N, C, S, G);
        cuda_launched("group_norm_jvp_backward");
    }
    prof_end(prof);
}

/* ==== ActNorm: y = scale_c (x_c + loc_c) and its inverse x = y / scale_c - loc_c ============================ */

__global__ static void actnorm_kernel(real *out, const real *in, const real *loc, const real *scale, size_t n, int C,
                                      size_t S, int inverse) {
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        int ch = (int)((i / S) % (size_t)C);
        out[i] = inverse ? in[i] / scale[ch] - loc[ch] : scale[ch] * (in[i] + loc[ch]);
    }
}

/* one block per channel. Forward map: din += sc dout, dloc += sc sum dout, dscale += sum dout (in + loc).
 * Inverse map (in = y, dout = dx): din += dout / sc, dloc -= sum dout, dscale -= sum dout y / sc^2. */
__global__ static void actnorm_backward_kernel(real *din, real *dloc, real *dscale, const real *dout, const real *in,
                                               const real *loc, const real *scale, int N, int C, size_t S,
                                               int inverse) {
    __shared__ double sh[THREADS];
    int ch = blockIdx.x;
    real sc = scale[ch], l = inverse ? 0 : loc[ch];
    double s1 = 0, s2 = 0;
    for (int n = 0; n < N; n++) {
        size_t off = ((size_t)n * C + ch) * S;
        for (size_t s = threadIdx.x; s < S; s += THREADS) {
            real d = dout[off + s];
            if (din) din[off + s] += inverse ? d / sc : sc * d;
            s1 += d;
            s2 += inverse ? d * in[off + s] : d * (in[off + s] + l);
        }
    }
    s1 = block_sum(s1, sh);
    s2 = block_sum(s2, sh);
    if (threadIdx.x == 0) {
        if (inverse) {
            if (dloc) dloc[ch] -= (real)s1;
            if (dscale) dscale[ch] -= (real)(s2 / ((double)sc * sc));
        } else {
            if (dloc) dloc[ch] += (real)(sc * s1);
            if (dscale) dscale[ch] += (real)s2;
        }
    }
}

void actnorm_affine_forward_cuda(real *y, const real *x, const real *loc, const real *scale, int N, int C, size_t S) {
    size_t n = (size_t)N * C * S;
    if (n == 0) return;
    int prof = prof_begin("actnorm_forward", LIB_OWN, 0);
    actnorm_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(y, x, loc, scale, n, C, S, 0);
    cuda_launched("actnorm_forward");
    prof_end(prof);
}

void actnorm_affine_inverse_forward_cuda(real *x, const real *y, const real *loc, const real *scale, int N, int C,
                                         size_t S) {
    size_t n = (size_t)N * C * S;
    if (n == 0) return;
    int prof = prof_begin("actnorm_inverse", LIB_OWN, 0);
    actnorm_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(x, y, loc, scale, n, C, S, 1);
    cuda_launched("actnorm_inverse");
    prof_end(prof);
}

void actnorm_affine_backward_cuda(real *dx, real *dloc, real *dscale, const real *dy, const real *x,
                                  const real *loc, const real *scale, int N, int C, size_t S) {
    if (C == 0) return;
    int prof = prof_begin("actnorm_backward", LIB_OWN, 0);
    actnorm_backward_kernel<<<C, THREADS, 0, cuda_stream()>>>(dx, dloc, dscale, dy, x, loc, scale, N, C, S, 0);
    cuda_launched("actnorm_backward");
    prof_end(prof);
}

void actnorm_affine_inverse_backward_cuda(real *dy, real *dloc, real *dscale, const real *dx, const real *y,
                                          const real *scale, int N, int C, size_t S) {
    if (C == 0) return;
    int prof = prof_begin("actnorm_inverse_backward", LIB_OWN, 0);
    actnorm_backward_kernel<<<C, THREADS, 0, cuda_stream()>>>(dy, dloc, dscale, dx, y, NULL, scale, N, C, S, 1);
    cuda_launched("actnorm_inverse_backward");
    prof_end(prof);
}

/* ==== batch norm: one block per channel ========================================================================== */

__global__ static void bn_forward_kernel(real *y, real *mean, real *rstd, real *rmean, real *rvar, const real *x,
                                         const real *weight, const real *bias, int N, int C, size_t S, double eps,
                                         double momentum, int batch) {
    __shared__ double sh[THREADS];
    int ch = blockIdx.x;
    size_t count = (size_t)N * S;
    real mu, r;
    if (batch) {
        double s = 0;
        for (int n = 0; n < N; n++)
            for (size_t j = threadIdx.x; j < S; j += THREADS) s += x[((size_t)n * C + ch) * S + j];
        double m = block_sum(s, sh) / (double)count, v = 0;
        for (int n = 0; n < N; n++)
            for (size_t j = threadIdx.x; j < S; j += THREADS) {
                double d = x[((size_t)n * C + ch) * S + j] - m;
                v += d * d;
            }
        v = block_sum(v, sh);
        mu = (real)m;
        r = (real)(1.0 / sqrt(v / (double)count + eps));
        if (rmean && threadIdx.x == 0) {   /* normalise with the biased variance, track the unbiased one */
            rmean[ch] = (real)((1 - momentum) * rmean[ch] + momentum * m);
            rvar[ch] = (real)((1 - momentum) * rvar[ch] + momentum * v / (double)(count - 1));
        }
    } else {
        mu = rmean[ch];
        r = (real)(1.0 / sqrt((double)rvar[ch] + eps));
    }
    if (threadIdx.x == 0) {
        mean[ch] = mu;
        rstd[ch] = r;
    }
    real scale = r * (weight ? weight[ch] : 1), shift = bias ? bias[ch] : 0;
    for (int n = 0; n < N; n++) {
        size_t off = ((size_t)n * C + ch) * S;
        for (size_t j = threadIdx.x; j < S; j += THREADS) y[off + j] = (x[off + j] - mu) * scale + shift;
    }
}

void batch_norm_forward_cuda(real *y, real *mean, real *rstd, real *running_mean, real *running_var, const real *x,
                             const real *weight, const real *bias, int N, int C, size_t S, double eps,
                             double momentum, int use_batch_stats) {
    I2V_ASSERT(use_batch_stats || (running_mean && running_var), "batch_norm: eval mode needs running statistics");
    I2V_ASSERT(!use_batch_stats || (size_t)N * S >= 2,
               "batch_norm: training needs more than 1 value per channel (got N = %d, S = %zu)", N, S);
    if (C == 0) return;
    int prof = prof_begin("batch_norm_forward", LIB_OWN, 0);
    bn_forward_kernel<<<C, THREADS, 0, cuda_stream()>>>(y, mean, rstd, running_mean, running_var, x, weight, bias, N, C,
                                                       S, eps, momentum, use_batch_stats);
    cuda_launched("batch_norm_forward");
    prof_end(prof);
}

__global__ static void bn_backward_kernel(real *dx, real *dweight, real *dbias, const real *mean, const real *rstd,
                                          const real *dy, const real *x, const real *weight, int N, int C, size_t S,
                                          int batch) {
    __shared__ double sh[THREADS];
    int ch = blockIdx.x;
    size_t count = (size_t)N * S;
    real mu = mean[ch], r = rstd[ch], w = weight ? weight[ch] : 1;
    double sdy = 0, dot = 0;
    for (int n = 0; n < N; n++) {
        size_t off = ((size_t)n * C + ch) * S;
        for (size_t j = threadIdx.x; j < S; j += THREADS) {
            sdy += dy[off + j];
            dot += (double)dy[off + j] * (x[off + j] - mu);
        }
    }
    sdy = block_sum(sdy, sh);
    double sdyx = r * block_sum(dot, sh);
    if (threadIdx.x == 0) {
        if (dweight) dweight[ch] += (real)sdyx;
        if (dbias) dbias[ch] += (real)sdy;
    }
    if (!dx) return;
    real mh = batch ? (real)(w * sdy / (double)count) : 0, mhx = batch ? (real)(w * sdyx / (double)count) : 0;
    for (int n = 0; n < N; n++) {
        size_t off = ((size_t)n * C + ch) * S;
        for (size_t j = threadIdx.x; j < S; j += THREADS)
            dx[off + j] += r * (dy[off + j] * w - mh - (x[off + j] - mu) * r * mhx);
    }
}

void batch_norm_backward_cuda(real *dx, real *dweight, real *dbias, const real *mean, const real *rstd,
                              const real *dy, const real *x, const real *weight, int N, int C, size_t S,
                              int use_batch_stats) {
    if (C == 0) return;
    int prof = prof_begin("batch_norm_backward", LIB_OWN, 0);
    bn_backward_kernel<<<C, THREADS, 0, cuda_stream()>>>(dx, dweight, dbias, mean, rstd, dy, x, weight, N, C, S,
                                                        use_batch_stats);
    cuda_launched("batch_norm_backward");
    prof_end(prof);
}

/* ==== spectral normalisation ===================================================================================== */

/* vec[j] = (real)(scale * sum_i w[i][j] u[i]): one thread per column, rows in order */
__global__ static void mat_t_vec_kernel(real *vec, const real *w, const real *u, int rows, size_t K, double scale) {
    for (size_t j = thread_index(); j < K; j += grid_stride()) {
        double acc = 0;
        for (int i = 0; i < rows; i++) acc += (double)u[i] * w[(size_t)i * K + j];
        vec[j] = (real)(scale * acc);
    }
}

/* One block per row: rowdot[i] = sum_j w[i][j] v[j] in double; if vec, vec[i] = (real)(scale * rowdot[i]), where
 * scale is 1, or 1 / (*na + eps) (the BigGAN forward's b = W a / (|a| + e)). */
__global__ static void mat_vec_kernel(double *rowdot, real *vec, const real *w, const real *v, size_t K,
                                      const double *na, double eps) {
    __shared__ double sh[THREADS];
    int i = blockIdx.x;
    double acc = 0;
    for (size_t j = threadIdx.x; j < K; j += THREADS) acc += (double)w[(size_t)i * K + j] * v[j];
    acc = block_sum(acc, sh);
    if (threadIdx.x == 0) {
        if (rowdot) rowdot[i] = acc;
        if (vec) vec[i] = (real)((na ? 1.0 / (*na + eps) : 1.0) * acc);
    }
}

/* One block: vec /= max(|vec|, eps) (mode 0, PyTorch) or the norm alone into *norm (mode 1). */
__global__ static void normalize_kernel(real *vec, size_t n, double eps, int mode, double *norm) {
    __shared__ double sh[THREADS];
    double s = 0;
    for (size_t j = threadIdx.x; j < n; j += THREADS) s += (double)vec[j] * vec[j];
    double nrm = sqrt(block_sum(s, sh));
    if (mode == 1) {
        if (threadIdx.x == 0) *norm = nrm;
        return;
    }
    double d = nrm > eps ? nrm : eps;
    for (size_t j = threadIdx.x; j < n; j += THREADS) vec[j] = (real)(vec[j] / d);
}

/* One block: *sigma = (real) sum_i u[i] rowdot[i], in row order. */
__global__ static void sigma_kernel(real *sigma, const real *u, const double *rowdot, int rows) {
    __shared__ double sh[THREADS];
    double s = 0;
    for (int i = threadIdx.x; i < rows; i += THREADS) s += u[i] * rowdot[i];
    s = block_sum(s, sh);
    if (threadIdx.x == 0) *sigma = (real)s;
}

__global__ static void divide_kernel(real *out, const real *w, const real *sigma, size_t n) {
    real s = *sigma;
    for (size_t i = thread_index(); i < n; i += grid_stride()) out[i] = w[i] / s;
}

void spectral_norm_power_iteration_cuda(real *u, real *v, const real *w, int Cout, size_t K, double eps) {
    if (Cout == 0 || K == 0) return;
    int prof = prof_begin("spectral_norm_power_iteration", LIB_OWN, 0);
    mat_t_vec_kernel<<<grid_for(K), THREADS, 0, cuda_stream()>>>(v, w, u, Cout, K, 1.0);
    normalize_kernel<<<1, THREADS, 0, cuda_stream()>>>(v, K, eps, 0, NULL);
    mat_vec_kernel<<<Cout, THREADS, 0, cuda_stream()>>>(NULL, u, w, v, K, NULL, 0);
    normalize_kernel<<<1, THREADS, 0, cuda_stream()>>>(u, (size_t)Cout, eps, 0, NULL);
    cuda_launched("spectral_norm_power_iteration");
    prof_end(prof);
}

void spectral_norm_sigma_forward_cuda(real *sigma, const real *w, const real *u, const real *v, int Cout, size_t K) {
    if (Cout == 0) return;
    double *rowdot = (double *)cuda_workspace(WS_KERNEL, (size_t)Cout * sizeof(double));
    int prof = prof_begin("spectral_norm_sigma", LIB_OWN, 0);
    mat_vec_kernel<<<Cout, THREADS, 0, cuda_stream()>>>(rowdot, NULL, w, v, K, NULL, 0);
    sigma_kernel<<<1, THREADS, 0, cuda_stream()>>>(sigma, u, rowdot, Cout);
    cuda_launched("spectral_norm_sigma");
    prof_end(prof);
}

void spectral_norm_forward_cuda(real *w, real *sigma, const real *w_orig, const real *u, const real *v, int Cout,
                                size_t K) {
    spectral_norm_sigma_forward_cuda(sigma, w_orig, u, v, Cout, K);
    size_t n = (size_t)Cout * K;
    if (n == 0) return;
    int prof = prof_begin("spectral_norm_divide", LIB_OWN, 0);
    divide_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(w, w_orig, sigma, n);
    cuda_launched("spectral_norm_divide");
    prof_end(prof);
}

/* sum of dw . w over a matrix, into *dot (double, device) */
struct DotOp {
    double *dot;
    const real *a, *b;
    __device__ double term(const size_t off[3]) const { return (double)a[off[0]] * b[off[0]]; }
    __device__ void store(size_t o, double s) const { dot[o] = s; }
};

static void dot_into(double *dot, const real *a, const real *b, size_t n) {
    SumPlan p;
    p.keep.n = 0;
    p.red.n = n > 1 ? 1 : 0;
    p.red.ext[0] = n;
    for (int k = 0; k < 3; k++) p.red.st[k][0] = 1;
    DotOp op = {dot, a, b};
    run_sum(p, op, "dot");
}

/* dw_orig += dw / sigma - (real)(coef u_i) v_j, coef = dot / sigma^2 */
__global__ static void sn_backward_kernel(real *dw_orig, const real *sigma, const double *dot, const real *u,
                                          const real *v, const real *dw, int Cout, size_t K) {
    real s = *sigma;
    double coef = *dot / ((double)s * s);
    size_t n = (size_t)Cout * K;
    for (size_t p = thread_index(); p < n; p += grid_stride()) {
        size_t i = p / K, j = p % K;
        real cu = (real)(coef * u[i]);
        dw_orig[p] += dw[p] / s - cu * v[j];
    }
}

void spectral_norm_backward_cuda(real *dw_orig, const real *sigma, const real *u, const real *v, const real *dw,
                                 const real *w_orig, int Cout, size_t K) {
    size_t n = (size_t)Cout * K;
    if (n == 0) return;
    double *dot = (double *)cuda_workspace(WS_KERNEL, sizeof(double));
    int prof = prof_begin("spectral_norm_backward", LIB_OWN, 0);
    dot_into(dot, dw, w_orig, n);
    sn_backward_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(dw_orig, sigma, dot, u, v, dw, Cout, K);
    cuda_launched("spectral_norm_backward");
    prof_end(prof);
}

__global__ static void sigma_grad_kernel(real *dw, const real *dsigma, const real *u, const real *v, int Cout,
                                         size_t K) {
    real g = *dsigma;
    size_t n = (size_t)Cout * K;
    for (size_t p = thread_index(); p < n; p += grid_stride()) {
        real gu = g * u[p / K];
        dw[p] += gu * v[p % K];
    }
}

void spectral_norm_sigma_backward_cuda(real *dw, const real *dsigma, const real *u, const real *v, int Cout,
                                       size_t K) {
    size_t n = (size_t)Cout * K;
    if (n == 0) return;
    int prof = prof_begin("spectral_sigma_backward", LIB_OWN, 0);
    sigma_grad_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(dw, dsigma, u, v, Cout, K);
    cuda_launched("spectral_sigma_backward");
    prof_end(prof);
}

/* ---- the BigGAN variant (norm.c: forward a = W^T u, b = W a / (|a| + e), sigma = |b|^2 / (|b| + e)) ---------- */

static const double BIGGAN_EPS = 1e-4;

/* stats = {sigma, |a|, |b|} from the norms (double) */
__global__ static void biggan_sigma_kernel(real *stats, const double *norms) {
    double na = norms[0], nb = norms[1];
    stats[0] = (real)(nb * nb / (nb + BIGGAN_EPS));
    stats[1] = (real)na;
    stats[2] = (real)nb;
}

void spectral_norm_biggan_forward_cuda(real *w, real *a, real *b, real *stats, const real *w_bar, const real *u,
                                       int Cout, size_t K) {
    if (Cout == 0 || K == 0) return;
    double *norms = (double *)cuda_workspace(WS_KERNEL, 2 * sizeof(double));   /* |a|, |b| */
    int prof = prof_begin("spectral_norm_biggan_forward", LIB_OWN, 0);
    mat_t_vec_kernel<<<grid_for(K), THREADS, 0, cuda_stream()>>>(a, w_bar, u, Cout, K, 1.0);
    normalize_kernel<<<1, THREADS, 0, cuda_stream()>>>(a, K, 0, 1, norms);
    mat_vec_kernel<<<Cout, THREADS, 0, cuda_stream()>>>(NULL, b, w_bar, a, K, norms, BIGGAN_EPS);
    normalize_kernel<<<1, THREADS, 0, cuda_stream()>>>(b, (size_t)Cout, 0, 1, norms + 1);
    biggan_sigma_kernel<<<1, 1, 0, cuda_stream()>>>(stats, norms);
    size_t n = (size_t)Cout * K;
    divide_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(w, w_bar, stats, n);
    cuda_launched("spectral_norm_biggan_forward");
    prof_end(prof);
}

/* The scalars of the backward from dot = dw . w_bar: coef and bgb (norm.c), into sc[0], sc[1]. */
__global__ static void biggan_scalars_kernel(double *sc, const double *dot, const real *stats) {
    double sigma = stats[0], nb = stats[2], e = BIGGAN_EPS;
    double gs = -*dot / (sigma * sigma);
    double fprime = nb * (nb + 2 * e) / ((nb + e) * (nb + e));
    double coef = nb > 0 ? gs * fprime / nb : 0;
    sc[0] = coef;
    sc[1] = coef * nb * nb;
}

/* per column j: gv = sum_i coef b_i w[i][j] (rows in order), then va_j = a_j / (|a| + e) and ga_j */
__global__ static void biggan_columns_kernel(real *va, real *ga, const double *sc, const real *a, const real *b,
                                             const real *stats, const real *w, int rows, size_t K) {
    double coef = sc[0], bgb = sc[1], na = stats[1], ae = na + BIGGAN_EPS;
    for (size_t j = thread_index(); j < K; j += grid_stride()) {
        double gv = 0;
        for (int i = 0; i < rows; i++) gv += coef * b[i] * w[(size_t)i * K + j];
        va[j] = (real)(a[j] / ae);
        ga[j] = (real)(gv / ae - (na > 0 ? a[j] * bgb / (na * ae) : 0));
    }
}

__global__ static void biggan_update_kernel(real *dw_bar, const real *dw, const real *stats, const double *sc,
                                            const real *b, const real *u, const real *va, const real *ga, int Cout,
                                            size_t K) {
    real sigma = stats[0];
    double coef = sc[0];
    size_t n = (size_t)Cout * K;
    for (size_t p = thread_index(); p < n; p += grid_stride()) {
        size_t i = p / K, j = p % K;
        real gbi = (real)(coef * b[i]);
        dw_bar[p] += dw[p] / sigma + gbi * va[j] + u[i] * ga[j];
    }
}

void spectral_norm_biggan_backward_cuda(real *dw_bar, const real *a, const real *b, const real *stats,
                                        const real *dw, const real *w_bar, const real *u, int Cout, size_t K) {
    size_t n = (size_t)Cout * K;
    if (n == 0) return;
    /* dot, the two scalars, then va and ga (K each), in one workspace */
    char *ws = (char *)cuda_workspace(WS_KERNEL, 4 * sizeof(double) + 2 * K * sizeof(real));
    double *dot = (double *)ws, *sc = dot + 2;
    real *va = (real *)(ws + 4 * sizeof(double)), *ga = va + K;
    int prof = prof_begin("spectral_norm_biggan_backward", LIB_OWN, 0);
    dot_into(dot, dw, w_bar, n);
    biggan_scalars_kernel<<<1, 1, 0, cuda_stream()>>>(sc, dot, stats);
    biggan_columns_kernel<<<grid_for(K), THREADS, 0, cuda_stream()>>>(va, ga, sc, a, b, stats, w_bar, Cout, K);
    biggan_update_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(dw_bar, dw, stats, sc, b, u, va, ga, Cout, K);
    cuda_launched("spectral_norm_biggan_backward");
    prof_end(prof);
}

/* ==== the SPADE / AdaIN modulation (ae.c): y = lrelu(xn (scale + one) + shift), xn = GroupNorm_G(x) ========== */

typedef struct Mod {
    int C, G, T;
    size_t HW, P;
    real one, slope;
} Mod;

/* stats of each group, as group_norm_forward without affine parameters */
__global__ static void mod_stats_kernel(real *mean, real *rstd, const real *x, size_t m, double eps) {
    __shared__ double sh[THREADS];
    int i = blockIdx.x;
    real mu, r;
    group_stats(x + (size_t)i * m, m, eps, sh, &mu, &r);
    if (threadIdx.x == 0) {
        mean[i] = mu;
        rstd[i] = r;
    }
}

__global__ static void mod_forward_kernel(real *y, const real *x, const real *mean, const real *rstd, const real *s,
                                          const real *b, Mod md, size_t n) {
    size_t per_nc = (size_t)md.T * md.HW;
    int cpg = md.C / md.G;
    for (size_t i = thread_index(); i < n; i += grid_stride()) {
        size_t nc = i / per_nc, p = i % md.HW;
        size_t grp = (nc / (size_t)md.C) * (size_t)md.G + (nc % (size_t)md.C) / (size_t)cpg;
        size_t q = md.P == 1 ? 0 : p;
        real xn = (x[i] - mean[grp]) * rstd[grp] + 0;   /* group_norm_forward's (x - mean) rstd + shift 0 */
        real z = xn * (s[nc * md.P + q] + md.one) + b[nc * md.P + q];
        y[i] = z > 0 ? z : md.slope * z;
    }
}

void norm_modulate_lrelu_forward_cuda(real *y, real *mean, real *rstd, const real *x, const real *scale,
                                      const real *shift, int N, int C, int T, size_t HW, size_t P, int G, double eps,
                                      real one, real slope) {
    size_t n = (size_t)N * C * T * HW;
    if (n == 0) return;
    Mod md = {C, G, T, HW, P, one, slope};
    int prof = prof_begin("norm_modulate_forward", LIB_OWN, 0);
    mod_stats_kernel<<<N * G, THREADS, 0, cuda_stream()>>>(mean, rstd, x, (size_t)(C / G) * T * HW, eps);
    mod_forward_kernel<<<grid_for(n), THREADS, 0, cuda_stream()>>>(y, x, mean, rstd, scale, shift, md, n);
    cuda_launched("norm_modulate_forward");
    prof_end(prof);
}

/* One block per group (n, g). Pass 1, channel by channel: each thread owns positions p and walks the frames,
 * adding the SPADE scale/shift gradients of its positions, or the AdaIN ones into block sums; all threads add
 * the two sums of the group-norm backward. Pass 2 writes dx = rstd (dxn - mean(dxn) - xn mean(dxn xn)). */
__global__ static void mod_backward_kernel(real *dx, real *ds, real *db, const real *dy, const real *x, const real *s,
                                           const real *b, const real *mean, const real *rstd, Mod md) {
    __shared__ double sh[THREADS];
    int i = blockIdx.x, n = i / md.G, g = i % md.G, cpg = md.C / md.G;
    real mu = mean[i], r = rstd[i];
    double shh = 0, shx = 0;
    for (int k = 0; k < cpg; k++) {
        size_t nc = (size_t)n * md.C + (size_t)(g * cpg + k);
        double acc_s = 0, acc_b = 0;   /* AdaIN: this thread's share of the channel's sums */
        for (size_t p = threadIdx.x; p < md.HW; p += THREADS) {
            size_t q = md.P == 1 ? 0 : p;
            real sc = s[nc * md.P + q] + md.one, sf = b[nc * md.P + q];
            double ps = 0, pb = 0;
            for (int t = 0; t < md.T; t++) {
                size_t off = (nc * (size_t)md.T + (size_t)t) * md.HW + p;
                real xn = (x[off] - mu) * r;
                real z = xn * sc + sf;
                real gl = z > 0 ? dy[off] : md.slope * dy[off];
                real dxn = gl * sc;
                shh += dxn;
                shx += (double)dxn * xn;
                ps += gl * xn;
                pb += gl;
            }
            if (md.P == 1) {
                acc_s += ps;
                acc_b += pb;
            } else {
                if (ds) ds[nc * md.P + p] += (real)ps;
                if (db) db[nc * md.P + p] += (real)pb;
            }
        }
        if (md.P == 1) {
            acc_s = block_sum(acc_s, sh);
            acc_b = block_sum(acc_b, sh);
            if (threadIdx.x == 0) {
                if (ds) ds[nc] += (real)acc_s;
                if (db) db[nc] += (real)acc_b;
            }
        }
    }
    if (!dx) return;
    double m = (double)cpg * (double)md.T * (double)md.HW;
    real mh = (real)(block_sum(shh, sh) / m), mhx = (real)(block_sum(shx, sh) / m);
    for (int k = 0; k < cpg; k++) {
        size_t nc = (size_t)n * md.C + (size_t)(g * cpg + k);
        for (size_t j = threadIdx.x; j < (size_t)md.T * md.HW; j += THREADS) {
            size_t p = j % md.HW, q = md.P == 1 ? 0 : p, off = nc * (size_t)md.T * md.HW + j;
            real sc = s[nc * md.P + q] + md.one;
            real xn = (x[off] - mu) * r;
            real z = xn * sc + b[nc * md.P + q];
            real dxn = (z > 0 ? dy[off] : md.slope * dy[off]) * sc;
            dx[off] += r * (dxn - mh - xn * mhx);
        }
    }
}

void norm_modulate_lrelu_backward_cuda(real *dx, real *dscale, real *dshift, const real *mean, const real *rstd,
                                       const real *dy, const real *x, const real *scale, const real *shift, int N,
                                       int C, int T, size_t HW, size_t P, int G, real one, real slope) {
    if (N * G == 0) return;
    Mod md = {C, G, T, HW, P, one, slope};
    int prof = prof_begin("norm_modulate_backward", LIB_OWN, 0);
    mod_backward_kernel<<<N * G, THREADS, 0, cuda_stream()>>>(dx, dscale, dshift, dy, x, scale, shift, mean, rstd, md);
    cuda_launched("norm_modulate_backward");
    prof_end(prof);
}
