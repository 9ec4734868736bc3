/* Direct 2-D convolution kernels for float32, stride 1, dilation 1, one group; and, at the end, two
 * memory-bound loops of a training step (an embedding's gradient, Adam's update).
 *
 * Why: im2col + OpenBLAS needs three skinny GEMMs per training step whose time alone exceeds
 * torch's (oneDNN's) whole step (docs/benchmarks.md). These kernels never build the im2col
 * matrix: they keep a block of outputs in vector registers and stream the inputs through them,
 * which is what oneDNN's direct convolution does. Work is done image by image: each image is
 * zero-padded (and, for the weight gradient, its output gradient turned channels-last) into a
 * small per-thread buffer that stays in the core's cache, so no padded copy of the whole batch is
 * ever written to memory.
 *
 * Arrays: inputs are (N, C, H, W) with any element strides (views and broadcasts work); weights
 * and outputs are C-contiguous:
 *   wt   (C, kh, kw, K)   forward weights, output channel last (contiguous per tap)
 *   gwt  (C, kh, kw, Kp)  weight gradient, output channel last, Kp = K rounded up to 16
 *
 * A "vector" is 16 floats (GCC vector extension, which clang supports too): one AVX-512 register,
 * two AVX ones, four SSE ones. With gcc, target_clones compiles each kernel for AVX-512, FMA
 * (AVX2-era) and plain x86-64 and picks one when the library loads, so one build runs on any
 * x86-64 machine; clang and other CPUs get one portable build. The one gcc-only builtin used,
 * __builtin_shuffle, is spelled __builtin_shufflevector under clang (SHUFFLE16 below). Without
 * OpenMP (Apple's clang) the pragmas are ignored and every call runs on the calling thread.
 *
 * Each entry point runs on several OpenMP threads (ctypes releases the GIL during the call); the
 * threads take images from a shared counter, so one that starts late takes fewer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("avx512f", "fma", "default")))
#else
#define CLONES
#endif

typedef float v16 __attribute__((vector_size(64)));
#define HELPER static inline __attribute__((always_inline))

HELPER v16 ld(const float *p) { v16 v; memcpy(&v, p, sizeof v); return v; }
HELPER void st(float *p, v16 v) { memcpy(p, &v, sizeof v); }
/* the first `lanes` floats of v (all 16 when lanes >= 16): the last vector of an output row */
HELPER void store_part(float *p, v16 v, int lanes) {
    if (lanes >= 16)
        st(p, v);
    else
        memcpy(p, &v, sizeof(float) * lanes);
}
HELPER v16 splat(float s) { return (v16){s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}; }

/* The 16 lanes of a and b picked by 16 constant indices (0-15: a's lanes, 16-31: b's). */
#if defined(__clang__)
#define SHUFFLE16(a, b, ...) __builtin_shufflevector((a), (b), __VA_ARGS__)
#else
typedef int v16i __attribute__((vector_size(64)));
#define SHUFFLE16(a, b, ...) __builtin_shuffle((a), (b), (v16i){__VA_ARGS__})
#endif

/* Rows *lo and *hi exchange their h-wide blocks: *lo keeps its even blocks and takes *hi's even
 * ones, *hi takes *lo's odd ones and keeps its own odd ones (one two-register permute per row). */
HELPER void exchange8(v16 *lo, v16 *hi) {
    const v16 a = *lo, b = *hi;
    *lo = SHUFFLE16(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    *hi = SHUFFLE16(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
}
HELPER void exchange4(v16 *lo, v16 *hi) {
    const v16 a = *lo, b = *hi;
    *lo = SHUFFLE16(a, b, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    *hi = SHUFFLE16(a, b, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
}
HELPER void exchange2(v16 *lo, v16 *hi) {
    const v16 a = *lo, b = *hi;
    *lo = SHUFFLE16(a, b, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
    *hi = SHUFFLE16(a, b, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
}
HELPER void exchange1(v16 *lo, v16 *hi) {
    const v16 a = *lo, b = *hi;
    *lo = SHUFFLE16(a, b, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
    *hi = SHUFFLE16(a, b, 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
}

/* The 16 x 16 block r transposed in registers (a butterfly): rows i and i + h exchange their
 * h-wide blocks for h = 8, 4, 2, 1, after which the 16 rows hold the columns. */
HELPER void transpose16(v16 r[16]) {
    for (int i = 0; i < 16; i++)
        if (!(i & 8)) exchange8(&r[i], &r[i + 8]);
    for (int i = 0; i < 16; i++)
        if (!(i & 4)) exchange4(&r[i], &r[i + 4]);
    for (int i = 0; i < 16; i++)
        if (!(i & 2)) exchange2(&r[i], &r[i + 2]);
    for (int i = 0; i < 16; i++)
        if (!(i & 1)) exchange1(&r[i], &r[i + 1]);
}

static float *alloc_floats(size_t n) {
    /* 64-byte aligned rows make the unshifted vector loads whole cache lines */
    return aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
}

/* Image n of src (C planes of H x W, strides sc/sh/sw) into dst (C, Hp, Wp), zero-padded, placed
 * at (top, left). The caller has checked that it fits. */
HELPER void pad_image(const float *src, long sc, long sh, long sw, int C, int H, int W, float *dst, int Hp, int Wp,
                      int top, int left) {
    for (int c = 0; c < C; c++) {
        float *d = dst + (size_t)c * Hp * Wp;
        const float *s = src + c * sc;
        memset(d, 0, sizeof(float) * (size_t)top * Wp);
        for (int y = 0; y < H; y++) {
            float *dr = d + (size_t)(top + y) * Wp;
            const float *sr = s + y * sh;
            memset(dr, 0, sizeof(float) * left);
            if (sw == 1)
                memcpy(dr + left, sr, sizeof(float) * W);
            else if (sw == 0) { /* a broadcast row: one value */
                const float v = sr[0];
                for (int x = 0; x < W; x++) dr[left + x] = v;
            } else
                for (int x = 0; x < W; x++) dr[left + x] = sr[x * sw];
            memset(dr + left + W, 0, sizeof(float) * (Wp - left - W));
        }
        memset(d + (size_t)(top + H) * Wp, 0, sizeof(float) * (size_t)(Hp - top - H) * Wp);
    }
}

#define KB 12 /* output channels per register block of the forward kernel */

/* One output row segment of 32 pixels (two = 1) or 16 (two = 0) for nk <= KB output channels, the
 * accumulators in registers (the callers pass nk as a constant for the common block sizes):
 *   out[j * ostride + x] = bias[j] + sum_{c,a,b} in[c * plane + a * Wp + x + b] * w[((c * kh + a) * kw + b) * K + j]
 * in: the padded input (C planes of `plane` floats, rows Wp apart) at the segment's first pixel;
 * w: the weights (C, kh, kw, K) from the block's first output channel; bias: from that channel, or
 * NULL; out: the segment's first pixel of that channel, channels ostride apart; lanes: how many of
 * the segment's pixels lie inside the output row (the rest are computed and not stored). */
HELPER void fwd_block(int nk, const float *in, int C, size_t plane, int Wp, int kh, int kw, const float *w, int K,
                      const float *bias, float *out, size_t ostride, int lanes, int two) {
    v16 acc0[KB], acc1[KB];
    for (int j = 0; j < nk; j++) acc0[j] = acc1[j] = splat(bias ? bias[j] : 0.0f);
    for (int c = 0; c < C; c++)
        for (int a = 0; a < kh; a++) {
            const float *row = in + c * plane + (size_t)a * Wp;
            const float *wr = w + (size_t)(c * kh + a) * kw * K;
#pragma GCC unroll 3
            for (int b = 0; b < kw; b++, wr += K) {
                const v16 x0 = ld(row + b), x1 = ld(row + b + 16);
#pragma GCC unroll 12
                for (int j = 0; j < nk; j++) {
                    const float s = wr[j];
                    acc0[j] += x0 * s;
                    acc1[j] += x1 * s;
                }
            }
        }
    for (int j = 0; j < nk; j++) {
        float *o = out + j * ostride;
        store_part(o, acc0[j], lanes);
        if (two) store_part(o + 16, acc1[j], lanes - 16);
    }
}

/* The geometry of one convolution, shared by the kernels (mirrored by native.py's _Geometry). */
typedef struct {
    int N, C, H, W, K, kh, kw, pt, pl, OH, OW; /* input (N, C, H, W), weight (K, C, kh, kw), output (N, K, OH, OW) */
    long xs[4], gs[4];                         /* element strides of the input and of the output gradient */
} conv_geom;

HELPER int round16(int n) { return (n + 15) / 16 * 16; }
/* the padded row width the forward kernel reads for OWp outputs: an odd last vector pair reads 16 more */
HELPER int fwd_width(int OWp, int kw) { return round16(OWp + kw - 1 + (OWp / 16 % 2 ? 16 : 0)); }
/* the next image for the calling thread: threads that start late simply take fewer */
HELPER int next_image(int *counter) { return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED); }

/* out_n[k, y, x] = bias[k] + sum_{c,a,b} pad[c, y + a, x + b] * wt[c, a, b, k] for one image,
 * out_n being (K, OH, OW); the vectors past OW are computed and not stored. */
HELPER void fwd_image(const float *pad, int C, int Hp, int Wp, const float *wt, const float *bias, int K, int kh,
                      int kw, float *out_n, int OH, int OW) {
    const int nvec = round16(OW) / 16;
    const size_t plane = (size_t)Hp * Wp, ostride = (size_t)OH * OW;
    for (int k0 = 0; k0 < K; k0 += KB) {
        const int kn = K - k0 < KB ? K - k0 : KB;
        const float *w = wt + k0, *b = bias ? bias + k0 : NULL;
        for (int y = 0; y < OH; y++)
            for (int v = 0; v < nvec; v += 2) {
                const float *in = pad + (size_t)y * Wp + v * 16;
                float *out = out_n + k0 * ostride + (size_t)y * OW + v * 16;
                const int lanes = OW - v * 16, two = v + 1 < nvec;
                if (kn == KB) /* constant block sizes: the accumulators stay in registers */
                    fwd_block(KB, in, C, plane, Wp, kh, kw, w, K, b, out, ostride, lanes, two);
                else if (kn == 8)
                    fwd_block(8, in, C, plane, Wp, kh, kw, w, K, b, out, ostride, lanes, two);
                else if (kn == 4)
                    fwd_block(4, in, C, plane, Wp, kh, kw, w, K, b, out, ostride, lanes, two);
                else
                    fwd_block(kn, in, C, plane, Wp, kh, kw, w, K, b, out, ostride, lanes, two);
            }
    }
}

/* The forward convolution of the images the calling thread takes from *next (start it at 0):
 * out (N, K, OH, OW) = bias + x * w, wt being w as (C, kh, kw, K). */
CLONES static int conv_fwd_part(const conv_geom *p, const float *x, const float *wt, const float *bias, float *out,
                                int *next) {
    const int OWp = round16(p->OW), Hp = p->OH + p->kh - 1, Wp = fwd_width(OWp, p->kw);
    float *pad = alloc_floats((size_t)p->C * Hp * Wp);
    if (!pad) return -1;
    for (int n = next_image(next); n < p->N; n = next_image(next)) {
        pad_image(x + n * p->xs[0], p->xs[1], p->xs[2], p->xs[3], p->C, p->H, p->W, pad, Hp, Wp, p->pt, p->pl);
        fwd_image(pad, p->C, Hp, Wp, wt, bias, p->K, p->kh, p->kw, out + (size_t)n * p->K * p->OH * p->OW, p->OH, p->OW);
    }
    free(pad);
    return 0;
}

/* The weight gradient of a 3x3 kernel for nc <= 3 input channels at once, vectorised over 16
 * output channels: for every output pixel, one vector of g (16 channels) times each input value in
 * the 3x3 windows of the nc channels, broadcast. nc = 3 keeps 27 accumulators in registers.
 *   gw[(i * 9 + t) * Kp + lane] += sum_{y,x} g[(y * OW + x) * Kp + lane] * x[i * plane + (y + t / 3) * Wp + x + t % 3]
 * g: the output gradient channels-last (OH, OW, Kp) from the 16 channels' first; x: the padded
 * input (planes of `plane` floats, rows Wp apart) from the first of the nc channels; gw: the
 * weight gradient (C, 9, Kp) at that channel and the 16 channels' first. */
HELPER void bwdw3_block(int nc, const float *g, int Kp, const float *x, size_t plane, int Wp, int OH, int OW,
                        float *gw) {
    v16 acc[3][9];
    for (int i = 0; i < nc; i++)
        for (int t = 0; t < 9; t++) acc[i][t] = splat(0.0f);
    for (int y = 0; y < OH; y++) {
        const float *gp = g + (size_t)y * OW * Kp;
        const float *x0 = x + (size_t)y * Wp;
        for (int xx = 0; xx < OW; xx++, gp += Kp, x0++) {
            const v16 gv = ld(gp);
#pragma GCC unroll 3
            for (int i = 0; i < nc; i++) {
                const float *xi = x0 + i * plane;
#pragma GCC unroll 9
                for (int t = 0; t < 9; t++) acc[i][t] += gv * xi[(t / 3) * Wp + t % 3];
            }
        }
    }
    for (int i = 0; i < nc; i++)
        for (int t = 0; t < 9; t++) {
            float *d = gw + ((size_t)i * 9 + t) * Kp;
            st(d, ld(d) + acc[i][t]);
        }
}

/* The same for one input channel and 32 output channels (two vectors of g per pixel): 18
 * accumulators, 2 + 9 loads per 18 multiply-adds, so the loads never hold the arithmetic up. */
HELPER void bwdw3_pair(const float *g, int Kp, const float *x, int Wp, int OH, int OW, float *gw) {
    v16 a0[9], a1[9];
    for (int t = 0; t < 9; t++) a0[t] = a1[t] = splat(0.0f);
    for (int y = 0; y < OH; y++) {
        const float *gp = g + (size_t)y * OW * Kp;
        const float *xi = x + (size_t)y * Wp;
        for (int xx = 0; xx < OW; xx++, gp += Kp, xi++) {
            const v16 g0 = ld(gp), g1 = ld(gp + 16);
#pragma GCC unroll 9
            for (int t = 0; t < 9; t++) {
                const float s = xi[(t / 3) * Wp + t % 3];
                a0[t] += g0 * s;
                a1[t] += g1 * s;
            }
        }
    }
    for (int t = 0; t < 9; t++) {
        float *d = gw + (size_t)t * Kp;
        st(d, ld(d) + a0[t]);
        st(d + 16, ld(d + 16) + a1[t]);
    }
}

/* The gradients of the images the calling thread takes from *next (start it at 0), from the input x
 * and the output gradient g:
 *   gx  (N, C, H, W) the input gradient, when not NULL: the forward
 *       kernel on g zero-padded by (kh - 1 - pt, kw - 1 - pl), with wtf = w flipped as (K, kh, kw, C);
 *   gwt_all (chunks, C, kh, kw, Kp) += the weight gradient of each chunk of `chunk` images,
 *       Kp = K rounded up to 16, when not NULL;
 *   bsum_all (chunks, K) += the bias gradient of each chunk, when not NULL.
 * The threads take chunks, not images, from *next: the caller adds the chunks' sums up in chunk
 * order, so the result does not depend on which thread took which chunk. */
CLONES static int conv_bwd_part(const conv_geom *p, const float *x, const float *g, const float *wtf, float *gx,
                                float *gwt_all, double *bsum_all, int chunk, int *next) {
    const int C = p->C, K = p->K, kh = p->kh, kw = p->kw, OH = p->OH, OW = p->OW, taps = kh * kw;
    const int Kp = round16(K), W16 = round16(p->W);
    const int Hg = p->H + kh - 1, Wg = fwd_width(W16, kw); /* g padded for the input gradient */
    const int Hp = OH + kh - 1, Wp = OW + kw - 1;         /* x padded for the weight gradient */
    const long *gs = p->gs;
    const int want_w = gwt_all != NULL, want_t = gwt_all || bsum_all;
    float *padg = gx ? alloc_floats((size_t)K * Hg * Wg) : NULL;
    float *pad = want_w ? alloc_floats((size_t)C * Hp * Wp) : NULL;
    float *gt = want_t ? alloc_floats((size_t)OH * OW * Kp) : NULL;
    if ((gx && !padg) || (want_w && !pad) || (want_t && !gt)) {
        free(padg);
        free(pad);
        free(gt);
        return -1;
    }
    for (int ch = next_image(next); ch * chunk < p->N; ch = next_image(next)) {
      /* this chunk's own sums: added up in chunk order by the caller, whichever thread took it */
      float *gwt = gwt_all ? gwt_all + (size_t)ch * C * taps * Kp : NULL;
      double *bsum = bsum_all ? bsum_all + (size_t)ch * K : NULL;
      const int n_end = (ch + 1) * chunk < p->N ? (ch + 1) * chunk : p->N;
      for (int n = ch * chunk; n < n_end; n++) {
        if (gx) {
            pad_image(g + n * gs[0], gs[1], gs[2], gs[3], K, OH, OW, padg, Hg, Wg, kh - 1 - p->pt, kw - 1 - p->pl);
            fwd_image(padg, K, Hg, Wg, wtf, NULL, C, kh, kw, gx + (size_t)n * C * p->H * p->W, p->H, p->W);
        }
        if (!gt) continue;
        /* g of image n with the channels last (zero past K): 16 x 16 blocks transposed in registers
         * where rows are contiguous and whole; else a row at a time, the row's block of gt (OW x Kp
         * floats) staying in the L1 cache while the channels' rows are read in order */
        const float *gimg = g + n * gs[0];
        if (gs[3] == 1 && OW % 16 == 0) {
            for (int k0 = 0; k0 < Kp; k0 += 16) {
                v16 colsum = splat(0.0f);
                for (int y = 0; y < OH; y++)
                    for (int x0 = 0; x0 < OW; x0 += 16) {
                        v16 r[16];
                        for (int j = 0; j < 16; j++)
                            r[j] = k0 + j < K ? ld(gimg + (k0 + j) * gs[1] + y * gs[2] + x0) : splat(0.0f);
                        transpose16(r);
                        float *d = gt + ((size_t)y * OW + x0) * Kp + k0;
                        for (int i = 0; i < 16; i++) {
                            st(d + (size_t)i * Kp, r[i]);
                            colsum += r[i];
                        }
                    }
                if (bsum)
                    for (int j = 0; j < 16 && k0 + j < K; j++) bsum[k0 + j] += colsum[j];
            }
        } else if (gs[3] == 0) { /* rows of one value (a broadcast gradient): one pixel's channels, repeated */
            for (int y = 0; y < OH; y++) {
                float px[Kp];
                for (int k = 0; k < Kp; k++) px[k] = k < K ? gimg[k * gs[1] + y * gs[2]] : 0.0f;
                float *d = gt + (size_t)y * OW * Kp;
                for (int xx = 0; xx < OW; xx++) memcpy(d + (size_t)xx * Kp, px, sizeof px);
                if (bsum)
                    for (int k = 0; k < K; k++) bsum[k] += (double)px[k] * OW;
            }
        } else
        for (int y = 0; y < OH; y++) {
            float *d = gt + (size_t)y * OW * Kp;
            for (int k = 0; k < K; k++) {
                const float *s = g + n * gs[0] + k * gs[1] + y * gs[2];
                float row = 0.0f;
                for (int xx = 0; xx < OW; xx++) {
                    const float v = s[xx * gs[3]];
                    d[(size_t)xx * Kp + k] = v;
                    row += v;
                }
                if (bsum) bsum[k] += row;
            }
            for (int xx = 0; xx < OW; xx++)
                for (int k = K; k < Kp; k++) d[(size_t)xx * Kp + k] = 0.0f;
        }
        if (!gwt) continue;
        pad_image(x + n * p->xs[0], p->xs[1], p->xs[2], p->xs[3], C, p->H, p->W, pad, Hp, Wp, p->pt, p->pl);
        const size_t plane = (size_t)Hp * Wp;
        int kv = 0;
        if (kh == 3 && kw == 3)
            for (; kv + 2 <= Kp / 16; kv += 2)
                for (int c = 0; c < C; c++)
                    bwdw3_pair(gt + kv * 16, Kp, pad + c * plane, Wp, OH, OW, gwt + (size_t)c * 9 * Kp + kv * 16);
        for (; kv < Kp / 16; kv++) {
            if (kh == 3 && kw == 3) {
                int c = 0;
                for (; c + 3 <= C; c += 3) /* constant channel counts: the accumulators stay in registers */
                    bwdw3_block(3, gt + kv * 16, Kp, pad + c * plane, plane, Wp, OH, OW, gwt + (size_t)c * 9 * Kp + kv * 16);
                if (C - c == 2)
                    bwdw3_block(2, gt + kv * 16, Kp, pad + c * plane, plane, Wp, OH, OW, gwt + (size_t)c * 9 * Kp + kv * 16);
                else if (C - c == 1)
                    bwdw3_block(1, gt + kv * 16, Kp, pad + c * plane, plane, Wp, OH, OW, gwt + (size_t)c * 9 * Kp + kv * 16);
                continue;
            }
            for (int c = 0; c < C; c++) /* other kernel sizes: one input channel and one tap at a time */
                for (int t = 0; t < taps; t++) {
                    const int a = t / kw, b = t % kw;
                    v16 acc = splat(0.0f);
                    for (int y = 0; y < OH; y++) {
                        const float *gp = gt + (size_t)y * OW * Kp + kv * 16;
                        const float *xr = pad + ((size_t)c * Hp + y + a) * Wp + b;
                        for (int xx = 0; xx < OW; xx++, gp += Kp) acc += ld(gp) * xr[xx];
                    }
                    float *dst = gwt + ((size_t)c * taps + t) * Kp + kv * 16;
                    st(dst, ld(dst) + acc);
                }
        }
      }
    }
    free(padg);
    free(pad);
    free(gt);
    return 0;
}

/* The entry points: each runs its part function on `threads` OpenMP threads at once (threads
 * that finish wait a moment spinning before they sleep, so the next call finds them awake, as
 * in every OpenMP program). Returns 0, or -1 when a work buffer could not be allocated. */
int dlia_conv_fwd(const conv_geom *p, const float *x, const float *wt, const float *bias, float *out, int threads) {
    int next = 0, err = 0;
#pragma omp parallel num_threads(threads) reduction(| : err)
    err |= conv_fwd_part(p, x, wt, bias, out, &next);
    return err ? -1 : 0;
}

int dlia_conv_bwd(const conv_geom *p, const float *x, const float *g, const float *wtf, float *gx, float *gwt_all,
                  double *bsum_all, int chunk, int threads) {
    int next = 0, err = 0;
#pragma omp parallel num_threads(threads) reduction(| : err)
    err |= conv_bwd_part(p, x, g, wtf, gx, gwt_all, bsum_all, chunk, &next);
    return err ? -1 : 0;
}

/* ---- two memory-bound loops of a training step ------------------------------------------------ */
/* Why: in NumPy each is a dozen passes over memory (a char-rnn 2×128 LSTM step spent ~2 ms in each,
 * 6 % of the step apiece); here each element is read and written once. Both compute what their NumPy
 * paths compute, operation for operation in float32 (the tests compare bit for bit; for an embedding
 * with more than 512 distinct indices the NumPy path's numpy.add.reduceat groups the sums its own
 * way, so there the two agree to rounding). */

/* The dense gradient of an embedding lookup: out[idx[i], :] += rows[i, :] for i = 0 .. n − 1 in
 * that order, out (V, d) zeroed by the caller, every idx in [0, V) (the forward checked them). Each
 * row of out adds its rows in the order they occur, as the NumPy path's per-index sums do (for rows
 * wider than one float: NumPy sums a single contiguous column pairwise, so the op keeps d = 1 on NumPy). One
 * thread: memory-bound, 0.3 ms for char-rnn's 2,500 rows of 512 gate pre-activations. */
void dlia_embedding_bwd(long n, long d, const int64_t *idx, const float *rows, float *out) {
    for (long i = 0; i < n; i++) {
        float *o = out + idx[i] * d;
        const float *r = rows + i * d;
        for (long j = 0; j < d; j++) o[j] += r[j];
    }
}

/* One Adam update of n elements, as _adam_step in dlia/optim/algorithms.py (PyTorch's order):
 *   m ← m + (g − m)·c1          v ← v·b2 + (g·g)·c2          (amsgrad: vmax ← max(vmax, v), v ← vmax)
 *   step ← m / (√v / bias2 + eps) · lr_t
 * with c1 = 1 − β₁, c2 = 1 − β₂, bias2 = √(1 − β₂ᵗ), lr_t = lr / (1 − β₁ᵗ); vmax is NULL without
 * amsgrad. Every operation rounds to float32 in this order (no fused multiply-adds: fp-contract=off),
 * and max passes NaN on as NumPy's maximum does. */
#if defined(__clang__)
#define NO_FMA_CONTRACTION /* clang: the pragma inside the function */
#else
#define NO_FMA_CONTRACTION __attribute__((optimize("fp-contract=off")))
#endif
NO_FMA_CONTRACTION void dlia_adam(long n, const float *g, float *m, float *v, float *vmax, float *step, float c1,
                                  float b2, float c2, float bias2, float eps, float lr_t) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
    for (long k = 0; k < n; k++) {
        float gk = g[k];
        float mk = m[k] + (gk - m[k]) * c1;
        float vk = v[k] * b2 + (gk * gk) * c2;
        m[k] = mk;
        v[k] = vk;
        if (vmax) {
            float w = vmax[k];
            vk = (w != w || w > vk) ? w : vk;
            vmax[k] = vk;
        }
        step[k] = mk / (sqrtf(vk) / bias2 + eps) * lr_t;
    }
}

/* native.py loads the library only when this matches its own number, so that a library left over
 * from an older source (a failed rebuild keeps the old file) is never called with new arguments. */
int dlia_native_version(void) { return 8; }

/* native.py checks this against the size of its ctypes mirror of conv_geom: a field added, removed
 * or retyped on one side only (or a compiler that lays the struct out differently) is refused. */
size_t dlia_native_sizeof_conv_geom(void) { return sizeof(conv_geom); }

/* An empty module, so that importing dlia.backend._native (as tools that walk packages do) works. */
static struct PyModuleDef native_module = {PyModuleDef_HEAD_INIT, "_native",
                                           "C kernels, called through ctypes from dlia/backend/native.py", -1,
                                           NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&native_module); }
