/* Direct 2-D convolution kernels for float32, stride 1, dilation 1, one group.
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
 *   out  (N, K, OH, OWp)  OWp = OW rounded up to 16; the columns past OW are junk
 *   gwt  (C, kh, kw, Kp)  weight gradient, output channel last, Kp = K rounded up to 16
 *
 * A "vector" is 16 floats (GCC vector extension): one AVX-512 register, two AVX ones, four SSE
 * ones. target_clones compiles each kernel for AVX-512, FMA (AVX2-era) and plain x86-64 and picks
 * one when the library loads, so one build runs on any x86-64 machine; other CPUs get portable C.
 *
 * The caller runs a function on one thread per core at once (ctypes releases the GIL during the
 * call); the threads take images from a shared counter, so one that starts late takes fewer. The
 * functions return 0, or -1 when a work buffer cannot be allocated.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
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
HELPER v16 splat(float s) { return (v16){s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}; }

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
            else
                for (int x = 0; x < W; x++) dr[left + x] = sr[x * sw];
            memset(dr + left + W, 0, sizeof(float) * (Wp - left - W));
        }
        memset(d + (size_t)(top + H) * Wp, 0, sizeof(float) * (size_t)(Hp - top - H) * Wp);
    }
}

#define KB 8 /* output channels per register block of the forward kernel */

/* One output row segment of 32 (two = 1) or 16 (two = 0) pixels for NK output channels, with
 * the accumulators in registers (NK is a compile-time constant for the full block). */
#define FWD_BLOCK(NK)                                                                              \
    {                                                                                              \
        v16 acc0[NK], acc1[NK];                                                                    \
        for (int j = 0; j < (NK); j++) acc0[j] = acc1[j] = splat(bias ? bias[k0 + j] : 0.0f);    \
        for (int c = 0; c < C; c++)                                                                \
            for (int a = 0; a < kh; a++) {                                                         \
                const float *row = pad + ((size_t)c * Hp + y + a) * Wp + v * 16;                   \
                const float *wr = wt + (size_t)(c * kh + a) * kw * K + k0;                         \
                for (int b = 0; b < kw; b++, wr += K) {                                            \
                    const v16 x0 = ld(row + b), x1 = ld(row + b + 16);                             \
                    _Pragma("GCC unroll 8") for (int j = 0; j < (NK); j++) {                      \
                        const float s = wr[j];                                                     \
                        acc0[j] += x0 * s;                                                         \
                        acc1[j] += x1 * s;                                                         \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        for (int j = 0; j < (NK); j++) {                                                           \
            float *o = out + (((size_t)n * K + k0 + j) * OH + y) * OWp + v * 16;                   \
            st(o, acc0[j]);                                                                        \
            if (two) st(o + 16, acc1[j]);                                                          \
        }                                                                                          \
    }

/* The geometry of one convolution, shared by the kernels (mirrored by native.py's _Geometry). */
typedef struct {
    int N, C, H, W, K, kh, kw, pt, pl, OH, OW; /* input (N, C, H, W), weight (K, C, kh, kw), output (N, K, OH, OW) */
    long xs[4], gs[4];                         /* element strides of the input and of the output gradient */
} conv_geom;

HELPER int round16(int n) { return (n + 15) / 16 * 16; }
/* the padded row width the forward kernel reads for OWp outputs: an odd last vector pair reads 16 more */
HELPER int fwd_width(int OWp, int kw) { return round16(OWp + kw - 1 + 16); }
/* the next image for the calling thread: threads that start late simply take fewer */
HELPER int next_image(int *counter) { return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED); }

/* out_n[k, y, x] = bias[k] + sum_{c,a,b} pad[c, y + a, x + b] * wt[c, a, b, k] for one image. */
HELPER void fwd_image(const float *pad, int C, int Hp, int Wp, const float *wt, const float *bias, int K, int kh,
                      int kw, float *out_n, int OH, int OWp) {
    const int nvec = OWp / 16;
    const int n = 0;
    float *out = out_n;
    for (int k0 = 0; k0 < K; k0 += KB) {
        const int kn = K - k0 < KB ? K - k0 : KB;
        for (int y = 0; y < OH; y++)
            for (int v = 0; v < nvec; v += 2) {
                const int two = v + 1 < nvec;
                if (kn == KB)
                    FWD_BLOCK(KB)
                else if (kn == 4)
                    FWD_BLOCK(4)
                else
                    FWD_BLOCK(kn)
            }
    }
}

/* The forward convolution of the images the calling thread takes from *next (start it at 0):
 * out (N, K, OH, OWp) = bias + x * w, wt being w as (C, kh, kw, K), OWp = OW rounded up to 16. */
CLONES int dlia_conv_fwd(const conv_geom *p, const float *x, const float *wt, const float *bias, float *out,
                         int *next) {
    const int OWp = round16(p->OW), Hp = p->OH + p->kh - 1, Wp = fwd_width(OWp, p->kw);
    float *pad = alloc_floats((size_t)p->C * Hp * Wp);
    if (!pad) return -1;
    for (int n = next_image(next); n < p->N; n = next_image(next)) {
        pad_image(x + n * p->xs[0], p->xs[1], p->xs[2], p->xs[3], p->C, p->H, p->W, pad, Hp, Wp, p->pt, p->pl);
        fwd_image(pad, p->C, Hp, Wp, wt, bias, p->K, p->kh, p->kw, out + (size_t)n * p->K * p->OH * OWp, p->OH, OWp);
    }
    free(pad);
    return 0;
}

/* The weight gradient of a 3x3 kernel for NC input channels at once, vectorised over 16 output
 * channels: for every output pixel, one vector of g (16 channels) times each input value in the
 * 3x3 windows of the NC channels, broadcast. NC = 3 keeps 27 accumulators in registers. */
#define BWDW3_BLOCK(NC)                                                                            \
    {                                                                                              \
        v16 acc[NC][9];                                                                            \
        for (int i = 0; i < (NC); i++)                                                             \
            for (int t = 0; t < 9; t++) acc[i][t] = splat(0.0f);                                   \
        for (int y = 0; y < OH; y++) {                                                             \
            const float *gp = gt + (size_t)y * OW * Kp + kv * 16;                                  \
            const float *x0 = pad + ((size_t)c * Hp + y) * Wp;                                     \
            for (int x = 0; x < OW; x++, gp += Kp, x0++) {                                         \
                const v16 gv = ld(gp);                                                             \
                _Pragma("GCC unroll 3") for (int i = 0; i < (NC); i++) {                           \
                    const float *xi = x0 + (size_t)i * Hp * Wp;                                    \
                    _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++)                            \
                        acc[i][t] += gv * xi[(t / 3) * Wp + t % 3];                                \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (int i = 0; i < (NC); i++)                                                             \
            for (int t = 0; t < 9; t++) {                                                          \
                float *d = gwt + ((size_t)(c + i) * 9 + t) * Kp + kv * 16;                         \
                st(d, ld(d) + acc[i][t]);                                                          \
            }                                                                                      \
    }

/* The same for one input channel and 32 output channels (two vectors of g per pixel): 18
 * accumulators, 2 + 9 loads per 18 multiply-adds, so the loads never hold the arithmetic up. */
#define BWDW3_PAIR                                                                                 \
    {                                                                                              \
        v16 a0[9], a1[9];                                                                          \
        for (int t = 0; t < 9; t++) a0[t] = a1[t] = splat(0.0f);                                   \
        for (int y = 0; y < OH; y++) {                                                             \
            const float *gp = gt + (size_t)y * OW * Kp + kv * 16;                                  \
            const float *xi = pad + ((size_t)c * Hp + y) * Wp;                                     \
            for (int x = 0; x < OW; x++, gp += Kp, xi++) {                                         \
                const v16 g0 = ld(gp), g1 = ld(gp + 16);                                           \
                _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) {                              \
                    const float s = xi[(t / 3) * Wp + t % 3];                                      \
                    a0[t] += g0 * s;                                                               \
                    a1[t] += g1 * s;                                                               \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (int t = 0; t < 9; t++) {                                                              \
            float *d = gwt + ((size_t)c * 9 + t) * Kp + kv * 16;                                   \
            st(d, ld(d) + a0[t]);                                                                  \
            st(d + 16, ld(d + 16) + a1[t]);                                                        \
        }                                                                                          \
    }

/* The gradients of the images the calling thread takes from *next (start it at 0), from the input x
 * and the output gradient g:
 *   gx  (N, C, H, W16) the input gradient (W16 = W rounded up to 16), when not NULL: the forward
 *       kernel on g zero-padded by (kh - 1 - pt, kw - 1 - pl), with wtf = w flipped as (K, kh, kw, C);
 *   gwt (C, kh, kw, Kp) += the weight gradient, Kp = K rounded up to 16, when not NULL;
 *   bsum (K) += the bias gradient, when not NULL.
 * gwt and bsum belong to the calling thread; the caller adds the threads' up. */
CLONES int dlia_conv_bwd(const conv_geom *p, const float *x, const float *g, const float *wtf, float *gx,
                         float *gwt, double *bsum, int *next) {
    const int C = p->C, K = p->K, kh = p->kh, kw = p->kw, OH = p->OH, OW = p->OW, taps = kh * kw;
    const int Kp = round16(K), W16 = round16(p->W);
    const int Hg = p->H + kh - 1, Wg = fwd_width(W16, kw); /* g padded for the input gradient */
    const int Hp = OH + kh - 1, Wp = OW + kw - 1;         /* x padded for the weight gradient */
    const long *gs = p->gs;
    float *padg = gx ? alloc_floats((size_t)K * Hg * Wg) : NULL;
    float *pad = gwt ? alloc_floats((size_t)C * Hp * Wp) : NULL;
    float *gt = (gwt || bsum) ? alloc_floats((size_t)OH * OW * Kp) : NULL;
    if ((gx && !padg) || (gwt && !pad) || ((gwt || bsum) && !gt)) {
        free(padg);
        free(pad);
        free(gt);
        return -1;
    }
    for (int n = next_image(next); n < p->N; n = next_image(next)) {
        if (gx) {
            pad_image(g + n * gs[0], gs[1], gs[2], gs[3], K, OH, OW, padg, Hg, Wg, kh - 1 - p->pt, kw - 1 - p->pl);
            fwd_image(padg, K, Hg, Wg, wtf, NULL, C, kh, kw, gx + (size_t)n * C * p->H * W16, p->H, W16);
        }
        if (!gt) continue;
        /* g of image n with the channels last (zero past K), pixel by pixel: contiguous writes */
        float *d = gt;
        for (int y = 0; y < OH; y++)
            for (int xx = 0; xx < OW; xx++, d += Kp) {
                const float *s = g + n * gs[0] + y * gs[2] + xx * gs[3];
                for (int k = 0; k < K; k++) d[k] = s[k * gs[1]];
                for (int k = K; k < Kp; k++) d[k] = 0.0f;
                if (bsum)
                    for (int k = 0; k < K; k++) bsum[k] += d[k];
            }
        if (!gwt) continue;
        pad_image(x + n * p->xs[0], p->xs[1], p->xs[2], p->xs[3], C, p->H, p->W, pad, Hp, Wp, p->pt, p->pl);
        int kv = 0;
        if (kh == 3 && kw == 3)
            for (; kv + 2 <= Kp / 16; kv += 2)
                for (int c = 0; c < C; c++) BWDW3_PAIR
        for (; kv < Kp / 16; kv++) {
            if (kh == 3 && kw == 3) {
                int c = 0;
                for (; c + 3 <= C; c += 3) BWDW3_BLOCK(3)
                if (C - c == 2)
                    BWDW3_BLOCK(2)
                else if (C - c == 1)
                    BWDW3_BLOCK(1)
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
    free(padg);
    free(pad);
    free(gt);
    return 0;
}

/* An empty module, so that importing dlia.backend._native (as tools that walk packages do) works. */
static struct PyModuleDef native_module = {PyModuleDef_HEAD_INIT, "_native",
                                           "C kernels, called through ctypes from dlia/backend/native.py", -1, NULL};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&native_module); }
