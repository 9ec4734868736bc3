/* The gate math of one LSTM or GRU time step, forward and backward, for float32.
 *
 * Why: a recurrent layer runs, per time step, one matrix product (NumPy/BLAS) and then the gate
 * math: sigmoids, tanhs and products on a few (B, H) blocks. In NumPy that is 10-20 small array
 * operations per step, each a pass over memory plus ~1 µs of call overhead; at batch 50 and 128
 * units it was about half of a char-rnn training step. Here each step's gate math is one call that
 * reads every input once and writes every output once.
 *
 * The reference: lstm_cell_forward, lstm_cell_backward, gru_cell_forward and gru_cell_backward in
 * dlia/core/ops/rnn.py compute the same values in NumPy (the tests compare the two); their
 * docstrings are the specification, the comments below repeat the math.
 *
 * Memory layout: every array is C-contiguous, float32, B rows of k·H floats, the k blocks of a
 * row side by side (the gate order is PyTorch's):
 *   LSTM  gx, gh, acts, dpre (B, 4H)  blocks i, f, g, o
 *         c_prev, c, h, tc, dy, dh, dc (B, H)
 *   GRU   gx, gh, dgx, dgh (B, 3H)   blocks r, z, n;  b_hh (3H) or NULL
 *         acts (B, 4H)              blocks r, z, n, W_hn·h + b_hn
 *         h_prev, h, dy, dh, dh_dir (B, H)
 * Arrays must not overlap, except that an output may be the very same array as an input (each
 * element is read before it is written): the LSTM's acts may be its gx (the layer op writes the
 * gates over the input projection), the GRU's h may be h_prev, and dc and dh_dir are read and
 * then overwritten by design.
 *
 * Accuracy: sigmoid and tanh are computed with exp_approx and tanh_approx below, which vectorise
 * (glibc's expf and tanhf are calls to scalar functions that gcc does not vectorise without
 * -ffast-math). Both are within 2e-7 relative error of the exact function for every float32
 * input (tests/backend/test_rnn_kernels.py checks this against float64 over [-1e4, 1e4]),
 * saturate cleanly for large |x| (σ(-1e4) = 0, tanh(1e4) = 1, never inf or NaN) and pass NaN on.
 *
 * Threads: the rows are independent; with threads > 1 OpenMP splits them into equal blocks. The
 * Python side asks for more than one thread only for large steps (dlia/backend/rnn.py says where
 * it pays). Without OpenMP the pragmas are ignored and every call runs on the calling thread.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* one build for every x86-64 machine: gcc compiles each entry point for AVX-512, FMA (AVX2 era)
 * and plain x86-64, and the loader picks one when the library loads */
#define CLONES __attribute__((target_clones("avx512f", "fma", "default")))
#else
#define CLONES
#endif

#define HELPER static inline __attribute__((always_inline))

/* ---- elementary functions ------------------------------------------------------------------- */

/* e^x for x in float32's range, written so that a loop of it vectorises.
 *
 * x = n·ln2 + r with n = round(x/ln2) and |r| ≤ ln2/2, so e^x = 2^n · e^r. ln2 is split into a
 * high part with few mantissa bits (n·LN2_HI is exact) and a low part, so r is exact to float32
 * rounding. e^r is its Taylor polynomial to degree 7 (the first term left out, r^8/8!, is below
 * 6e-9 relative on |r| ≤ 0.347) and 2^n is built directly in the exponent bits. x is clamped to
 * [-87.3, 88] so that 2^n stays a normal float (n in [-126, 127]): e^88 ≈ 1.7e38 is finite, and
 * e^-87.3 ≈ 1.2e-38 is as small as the callers ever need. A NaN stays NaN: the clamps compare
 * false and keep it, r and p carry it, and whatever exponent its conversion to int gives, p·2^n
 * is NaN (the tests check this). */
HELPER float exp_approx(float x) {
    const float LOG2E = 1.44269504088896341f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    x = x > 88.0f ? 88.0f : x;
    x = x < -87.3f ? -87.3f : x;
    /* round to nearest without floorf (a library call that blocks vectorising): adding 1.5·2^23
     * pushes the fraction out of the mantissa, subtracting it again leaves the rounded value */
    const float ROUND = 12582912.0f;
    float n = (x * LOG2E + ROUND) - ROUND;
    float r = x - n * LN2_HI;
    r = r - n * LN2_LO;
    /* Horner form of 1 + r + r²/2! + ... + r⁷/7! */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23; /* 2^n: the biased exponent, mantissa zero */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* σ(x) = 1 / (1 + e^-x). For x → -∞ the denominator grows to 1.7e38 and σ to 6e-39, for
 * x → +∞ e^-x goes to 1.2e-38 and σ rounds to 1: no overflow, no NaN. */
HELPER float sigmoid_approx(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

/* tanh(x), odd, computed on |x| and the sign put back.
 *   |x| < 0.625:  tanh(x) = x + x·x²·P(x²), P a degree-4 polynomial fitted (least squares on the
 *                 relative error, in float64) for this file; 8e-8 relative error in float32.
 *   |x| ≥ 0.625:  tanh(|x|) = 1 − 2/(1 + e^{2|x|}); here tanh ≥ 0.55, so the subtraction from 1
 *                 loses at most one bit. |x| is capped at 10, where tanh is 1 in float32.
 * Both branches are computed and one is selected, which is what lets the loop vectorise. */
HELPER float tanh_approx(float x) {
    float a = __builtin_fabsf(x);
    float z = x * x;
    float p = -5.5365292355e-3f;
    p = p * z + 2.0473767071e-2f;
    p = p * z - 5.3682960569e-2f;
    p = p * z + 1.3330654800e-1f;
    p = p * z - 3.3333244920e-1f;
    float small = x + x * z * p;
    float capped = a > 10.0f ? 10.0f : a;
    float large = 1.0f - 2.0f / (1.0f + exp_approx(2.0f * capped));
    large = __builtin_copysignf(large, x);
    return a < 0.625f ? small : large; /* false for NaN: large, which carries it */
}

/* ---- one row of each step: the H units of batch row b ---------------------------------------- */
/* Row b of a (B, k·H) array starts at base + b·k·H (size_t: B·4H may pass 2^31). Each gate block
 * of a row gets its own pointer and every loop indexes with j alone: with indices such as
 * gx[2 * H + j] (int arithmetic, sign-extended to an address) gcc 12 could not prove the accesses
 * contiguous and vectorised them as gathers and scatters built lane by lane, ~6× slower
 * (measured: LSTM forward 31 → 5 µs per call at B = 50, H = 128). */

/* The LSTM cell on n units, each gate's pre-activation the sum of two blocks (x·W_ihᵀ + b and
 * h·W_hhᵀ), one pointer per gate block so that gcc vectorises with plain loads:
 *   i, f, o = σ(x· + h·) of their blocks, g = tanh(x· + h·) of its block; acts = [i, f, g, o]
 *   c = f∘c_prev + i∘g,   tc = tanh(c),   h = o∘tc */
HELPER void lstm_units(int n, const float *xi, const float *xf, const float *xg, const float *xo, const float *hi,
                       const float *hf, const float *hg, const float *ho, const float *c_prev, float *ai, float *af,
                       float *ag, float *ao, float *c, float *h, float *tc) {
#pragma omp simd
    for (int j = 0; j < n; j++) {
        float i = sigmoid_approx(xi[j] + hi[j]);
        float f = sigmoid_approx(xf[j] + hf[j]);
        float g = tanh_approx(xg[j] + hg[j]);
        float o = sigmoid_approx(xo[j] + ho[j]);
        float cj = f * c_prev[j] + i * g;
        float t = tanh_approx(cj);
        ai[j] = i;
        af[j] = f;
        ag[j] = g;
        ao[j] = o;
        c[j] = cj;
        tc[j] = t;
        h[j] = o * t;
    }
}

/* LSTM forward, one row: the H units of batch row b, gx and gh both (B, 4H). */
HELPER void lstm_fwd_row(int b, int H, const float *gx, const float *gh, const float *c_prev, float *acts, float *c,
                         float *h, float *tc) {
    size_t r1 = (size_t)b * H, r4 = 4 * r1;
    const float *xi = gx + r4, *hi = gh + r4;
    float *ai = acts + r4;
    lstm_units(H, xi, xi + H, xi + 2 * H, xi + 3 * H, hi, hi + H, hi + 2 * H, hi + 3 * H, c_prev + r1, ai, ai + H,
               ai + 2 * H, ai + 3 * H, c + r1, h + r1, tc + r1);
}

/* LSTM backward, one row. δh = dy + dh reaches h_t, dc reaches c_t:
 *   δc = dc + δh·o·(1 − tc²)
 *   dpre = [δc·g·i(1−i), δc·c_prev·f(1−f), δc·i·(1−g²), δh·tc·o(1−o)]
 *   dc ← δc·f  (the gradient reaching c_{t−1}) */
HELPER void lstm_bwd_row(int b, int H, const float *acts, const float *c_prev, const float *tc, const float *dy,
                         const float *dh, float *dc, float *dpre) {
    size_t r1 = (size_t)b * H, r4 = 4 * r1;
    const float *ai = acts + r4, *af = ai + H, *ag = af + H, *ao = ag + H;
    float *di = dpre + r4, *df = di + H, *dg = df + H, *d_o = dg + H;
    c_prev += r1, tc += r1, dy += r1, dh += r1, dc += r1;
#pragma omp simd
    for (int j = 0; j < H; j++) {
        float i = ai[j], f = af[j], g = ag[j], o = ao[j];
        float t = tc[j];
        float dht = dy[j] + dh[j];
        float dct = dc[j] + dht * o * (1.0f - t * t);
        di[j] = dct * g * (i * (1.0f - i));
        df[j] = dct * c_prev[j] * (f * (1.0f - f));
        dg[j] = dct * i * (1.0f - g * g);
        d_o[j] = dht * t * (o * (1.0f - o));
        dc[j] = dct * f;
    }
}

/* GRU forward, one row; bias is b_hh (3H), or NULL for none, added to gh:
 *   r, z = σ(gx + gh + b) of their blocks;  hn = gh_n + b_n;  n = tanh(gx_n + r∘hn)
 *   acts = [r, z, n, hn];  h = (1 − z)∘n + z∘h_prev = n + z∘(h_prev − n)
 * bias is never NULL here: without one, the entry point passes a row of zeros (one loop for both
 * cases; a test of bias inside the loop kept gcc from vectorising it). */
HELPER void gru_fwd_row(int b, int H, const float *gx, const float *gh, const float *bias, const float *h_prev,
                        float *acts, float *h) {
    size_t r1 = (size_t)b * H, r3 = 3 * r1, r4 = 4 * r1;
    const float *xr = gx + r3, *xz = xr + H, *xn = xz + H;
    const float *hr = gh + r3, *hz = hr + H, *hn_ = hz + H;
    const float *br = bias, *bz = bias + H, *bn = bias + 2 * H;
    float *ar = acts + r4, *az = ar + H, *an = az + H, *ahn = an + H;
    h_prev += r1, h += r1;
#pragma omp simd
    for (int j = 0; j < H; j++) {
        float r = sigmoid_approx(xr[j] + (hr[j] + br[j]));
        float z = sigmoid_approx(xz[j] + (hz[j] + bz[j]));
        float hn = hn_[j] + bn[j];
        float n = tanh_approx(xn[j] + r * hn);
        float hp = h_prev[j];
        ar[j] = r;
        az[j] = z;
        an[j] = n;
        ahn[j] = hn;
        h[j] = n + z * (hp - n);
    }
}

/* GRU backward, one row. δh = dy + dh + dh_dir reaches h_t (dh_dir: what the next step passed
 * straight through z∘h):
 *   δn = δh·(1−z)·(1−n²)   δz = δh·(h_prev − n)·z(1−z)   δr = δn·hn·r(1−r)
 *   dgx = [δr, δz, δn],  dgh = [δr, δz, δn·r],  dh_dir ← δh·z */
HELPER void gru_bwd_row(int b, int H, const float *acts, const float *h_prev, const float *dy, const float *dh,
                        float *dh_dir, float *dgx, float *dgh) {
    size_t r1 = (size_t)b * H, r3 = 3 * r1, r4 = 4 * r1;
    const float *ar = acts + r4, *az = ar + H, *an = az + H, *ahn = an + H;
    float *xr = dgx + r3, *xz = xr + H, *xn = xz + H;
    float *hr = dgh + r3, *hz = hr + H, *hn = hz + H;
    h_prev += r1, dy += r1, dh += r1, dh_dir += r1;
#pragma omp simd
    for (int j = 0; j < H; j++) {
        float r = ar[j], z = az[j], n = an[j], ghn = ahn[j];
        float dht = dy[j] + dh[j] + dh_dir[j];
        float dn = dht * (1.0f - z) * (1.0f - n * n);
        float dr = dn * ghn * (r * (1.0f - r));
        float dz = dht * (h_prev[j] - n) * (z * (1.0f - z));
        xr[j] = dr;
        xz[j] = dz;
        xn[j] = dn;
        hr[j] = dr;
        hz[j] = dz;
        hn[j] = dn * r;
        dh_dir[j] = dht * z;
    }
}

/* ---- the entry points: B rows, on `threads` OpenMP threads ---------------------------------- */
/* One thread runs the rows in a plain loop, without entering OpenMP at all (the common case:
 * a step of batch 50 × 128 units takes a few µs, less than waking a second core). */

CLONES void dlia_rnn_lstm_fwd(int B, int H, const float *gx, const float *gh, const float *c_prev, float *acts,
                              float *c, float *h, float *tc, int threads) {
    if (threads <= 1) {
        for (int b = 0; b < B; b++) lstm_fwd_row(b, H, gx, gh, c_prev, acts, c, h, tc);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int b = 0; b < B; b++) lstm_fwd_row(b, H, gx, gh, c_prev, acts, c, h, tc);
}

CLONES void dlia_rnn_lstm_bwd(int B, int H, const float *acts, const float *c_prev, const float *tc, const float *dy,
                              const float *dh, float *dc, float *dpre, int threads) {
    if (threads <= 1) {
        for (int b = 0; b < B; b++) lstm_bwd_row(b, H, acts, c_prev, tc, dy, dh, dc, dpre);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int b = 0; b < B; b++) lstm_bwd_row(b, H, acts, c_prev, tc, dy, dh, dc, dpre);
}

CLONES void dlia_rnn_gru_fwd(int B, int H, const float *gx, const float *gh, const float *b_hh, const float *h_prev,
                             float *acts, float *h, int threads) {
    float *zeros = NULL;
    if (!b_hh) { /* no bias: add zeros (3H floats, ~0.1 µs to allocate, against a step's ≥ 3 µs) */
        zeros = calloc((size_t)3 * H, sizeof(float));
        if (!zeros) abort(); /* out of memory for 3H floats: nothing sensible is left to do */
        b_hh = zeros;
    }
    if (threads <= 1) {
        for (int b = 0; b < B; b++) gru_fwd_row(b, H, gx, gh, b_hh, h_prev, acts, h);
    } else {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int b = 0; b < B; b++) gru_fwd_row(b, H, gx, gh, b_hh, h_prev, acts, h);
    }
    free(zeros);
}

CLONES void dlia_rnn_gru_bwd(int B, int H, const float *acts, const float *h_prev, const float *dy, const float *dh,
                             float *dh_dir, float *dgx, float *dgh, int threads) {
    if (threads <= 1) {
        for (int b = 0; b < B; b++) gru_bwd_row(b, H, acts, h_prev, dy, dh, dh_dir, dgx, dgh);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int b = 0; b < B; b++) gru_bwd_row(b, H, acts, h_prev, dy, dh, dh_dir, dgx, dgh);
}

/* ---- the LSTM forward step with its recurrent product: gates = gx + h_prev·W_hhᵀ, then the cell -- */
/* Why: BLAS re-packs W_hh at every step's small product (B = 50 rows) and writes the (B, 4H)
 * product out for the gate math to read back. Here W_hh is packed once per sequence into panels
 * that hold the 4 gates of 16 hidden units, and each panel's gate math runs on the product while it
 * is still in registers/L1. Measured at B = 50, one thread, in cache: 57 µs per step at H = 128
 * against 64 for OpenBLAS's product + dlia_rnn_lstm_fwd, 800 against 914 µs at H = 512.
 *
 * Packed layout (dlia_rnn_lstm_pack): P = ceil(H/16) panels; panel p, row k (k < H) holds 64 floats:
 *   packed[((p·H + k)·4 + q)·16 + l] = W_hh[q·H + 16p + l, k]   (gate q in i, f, g, o; lane l < 16)
 * and 0 where 16p + l ≥ H. So a panel is H rows of 64 contiguous floats, one per k, which the
 * product streams in order. */

typedef float v16 __attribute__((vector_size(64), aligned(4))); /* 16 floats; aligned(4): any float address */

#define PANEL_ROWS 6 /* batch rows per pass over a panel: 6 × 4 accumulators of 16 floats fit AVX-512's 32 registers */

void dlia_rnn_lstm_pack(int H, const float *w_hh, float *packed) {
    int P = (H + 15) / 16;
    for (int p = 0; p < P; p++)
        for (int q = 0; q < 4; q++)
            for (int l = 0; l < 16; l++) {
                int u = 16 * p + l;
                float *dst = packed + ((size_t)p * H * 4 + q) * 16 + l; /* then + k·64 for row k */
                if (u < H) {
                    const float *src = w_hh + ((size_t)q * H + u) * H; /* row q·H + u of W_hh */
                    for (int k = 0; k < H; k++) dst[(size_t)k * 64] = src[k];
                } else {
                    for (int k = 0; k < H; k++) dst[(size_t)k * 64] = 0.0f;
                }
            }
}

/* pre[r·64 + q·16 + l] = Σ_k h_prev[b0 + r, k] · panel[k·64 + q·16 + l], for r < rows (the rows
 * past `rows` repeat the last one and are not used). The 24 accumulators stay in registers: they
 * are stored once, at the end, through a pointer (a memcpy from them made gcc keep them in memory
 * and store them at every k, at half the speed). Its own function, compiled for each target, so
 * that its registers are not shared with the gate math's. */
CLONES __attribute__((noinline)) static void panel_product(int H, int b0, int rows, const float *h_prev,
                                                         const float *panel, float *pre) {
    v16 acc[PANEL_ROWS][4];
    for (int r = 0; r < PANEL_ROWS; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = (v16){0};
    const float *hr[PANEL_ROWS];
    for (int r = 0; r < PANEL_ROWS; r++) hr[r] = h_prev + (size_t)(b0 + (r < rows ? r : rows - 1)) * H;
    for (int k = 0; k < H; k++) {
        const v16 *wk = (const v16 *)(panel + (size_t)k * 64);
        v16 w0 = wk[0], w1 = wk[1], w2 = wk[2], w3 = wk[3];
        for (int r = 0; r < PANEL_ROWS; r++) {
            float x = hr[r][k];
            acc[r][0] += x * w0;
            acc[r][1] += x * w1;
            acc[r][2] += x * w2;
            acc[r][3] += x * w3;
        }
    }
    for (int r = 0; r < PANEL_ROWS; r++)
        for (int q = 0; q < 4; q++) ((v16 *)pre)[r * 4 + q] = acc[r][q];
}

/* Panel p (units 16p .. 16p + n − 1) of rows b0 .. b0 + rows − 1: the product, then lstm_units on
 * those units, with gh read from pre. */
HELPER void lstm_fused_panel(int H, int b0, int rows, int p, const float *gx, const float *h_prev, const float *packed,
                             const float *c_prev, float *acts, float *c, float *h, float *tc) {
    float pre[PANEL_ROWS * 64];
    panel_product(H, b0, rows, h_prev, packed + (size_t)p * H * 64, pre);
    int u0 = 16 * p, n = H - u0 < 16 ? H - u0 : 16;
    for (int r = 0; r < rows; r++) {
        size_t b = (size_t)(b0 + r), r1 = b * H + u0, r4 = b * 4 * H + u0;
        const float *xi = gx + r4, *hi = pre + r * 64; /* the product's 4 gates lie 16 apart */
        float *ai = acts + r4;
        lstm_units(n, xi, xi + H, xi + 2 * H, xi + 3 * H, hi, hi + 16, hi + 32, hi + 48, c_prev + r1, ai, ai + H,
                   ai + 2 * H, ai + 3 * H, c + r1, h + r1, tc + r1);
    }
}

/* One LSTM step: dlia_rnn_lstm_fwd with gh = h_prev·W_hhᵀ computed here from the packed W_hh.
 * h_prev must not overlap h, c or acts (it is read by every panel while they are written); acts may
 * be gx. With threads > 1 the panels are split between the threads (each writes its own units). */
CLONES void dlia_rnn_lstm_fwd_fused(int B, int H, const float *gx, const float *h_prev, const float *packed,
                                    const float *c_prev, float *acts, float *c, float *h, float *tc, int threads) {
    int P = (H + 15) / 16;
    if (threads <= 1) {
        for (int p = 0; p < P; p++)
            for (int b0 = 0; b0 < B; b0 += PANEL_ROWS)
                lstm_fused_panel(H, b0, B - b0 < PANEL_ROWS ? B - b0 : PANEL_ROWS, p, gx, h_prev, packed, c_prev, acts,
                                 c, h, tc);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int p = 0; p < P; p++)
        for (int b0 = 0; b0 < B; b0 += PANEL_ROWS)
            lstm_fused_panel(H, b0, B - b0 < PANEL_ROWS ? B - b0 : PANEL_ROWS, p, gx, h_prev, packed, c_prev, acts, c,
                             h, tc);
}

/* ---- whole sequences in one call: every time step of the forward, or of the backward ----------- */
/* Why: at char-rnn's sizes (batch 50, H = 128) a step is ~50 µs, and per step the Python loop, the
 * ctypes call and (backward) OpenBLAS's product each cost a fixed few µs; worse, one step is too
 * small to split between two cores (waking the second core costs more than it saves, and a busy
 * core makes every step wait). But the batch rows of a recurrence are independent of each other:
 * row b of step s needs only row b of step s − 1. So these kernels run the whole time loop in C and
 * split the ROWS between the threads once per sequence: each thread runs every step on its own rows,
 * with no synchronisation between steps. Each row's arithmetic is the same whatever the number of
 * threads (same order of every sum), so results do not depend on it.
 *
 * The products use packed copies of W_hh, made once per sequence (see the two pack functions), and
 * run in register blocks of up to PANEL_ROWS rows × 64 columns (rows_product); a thread splits its
 * rows into near-equal blocks (25 rows: 5 blocks of 5, not 4 of 6 and one of 1, which would cost a
 * whole block's pass over the weights for one row). Sequences are time-major and C-contiguous:
 * step s of a (T, B, n) array starts at s·B·n. */

/* out[r·64 + l] (+)= Σ_{k<K} x[r·ldx + k] · panel[k·64 + l] for r < R (R a compile-time constant after
 * inlining, so the R × 4 accumulators stay in registers; stored once at the end, as in
 * panel_product). `add`: start from out's values instead of 0 (the next K_CHUNK of a longer sum). */
HELPER void rows_product_n(const int R, int K, const float *x, size_t ldx, const float *panel, float *out, int add) {
    v16 acc[PANEL_ROWS][4];
    for (int r = 0; r < R; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = add ? ((v16 *)out)[r * 4 + q] : (v16){0};
    for (int k = 0; k < K; k++) {
        const v16 *wk = (const v16 *)(panel + (size_t)k * 64);
        v16 w0 = wk[0], w1 = wk[1], w2 = wk[2], w3 = wk[3];
        for (int r = 0; r < R; r++) {
            float xv = x[r * ldx + k];
            acc[r][0] += xv * w0;
            acc[r][1] += xv * w1;
            acc[r][2] += xv * w2;
            acc[r][3] += xv * w3;
        }
    }
    for (int r = 0; r < R; r++)
        for (int q = 0; q < 4; q++) ((v16 *)out)[r * 4 + q] = acc[r][q];
}

/* rows_product_n for 1 ≤ R ≤ PANEL_ROWS rows, one specialised copy per R */
CLONES __attribute__((noinline)) static void rows_product(int R, int K, const float *x, size_t ldx, const float *panel,
                                                        float *out, int add) {
    switch (R) {
    case 1: rows_product_n(1, K, x, ldx, panel, out, add); break;
    case 2: rows_product_n(2, K, x, ldx, panel, out, add); break;
    case 3: rows_product_n(3, K, x, ldx, panel, out, add); break;
    case 4: rows_product_n(4, K, x, ldx, panel, out, add); break;
    case 5: rows_product_n(5, K, x, ldx, panel, out, add); break;
    default: rows_product_n(6, K, x, ldx, panel, out, add); break;
    }
}

/* A panel is K rows of 64 floats: 128 KB at K = 512, more than L1 (48 KB here), and every row block
 * reads all of it, at L2's speed (measured: 57 GFLOP/s at H = 512 against 78 at H = 128, whose
 * forward panels fit L1). So the sum over k runs in chunks of K_CHUNK rows (32 KB), each chunk
 * read by every row block while it is in L1, the partial sums kept in memory between chunks (a
 * few KB). The order of each sum is unchanged (k ascending). */
#define K_CHUNK 128

/* out + i·PANEL_ROWS·64 (block i) = the rows of block i of x times the panel (K rows), for the nb
 * blocks of rows [r0, r1) (x points at row 0, rows ldx apart) */
HELPER void blocks_product(int r0, int r1, int nb, int K, const float *x, size_t ldx, const float *panel, float *out);

/* Rows [r0, r1) in blocks of at most PANEL_ROWS, near-equal: block i is [block_start(i), block_start(i+1)). */
HELPER int n_blocks(int r0, int r1) { return (r1 - r0 + PANEL_ROWS - 1) / PANEL_ROWS; }
HELPER int block_start(int r0, int r1, int nb, int i) { return r0 + (int)((long)(r1 - r0) * i / nb); }

HELPER void blocks_product(int r0, int r1, int nb, int K, const float *x, size_t ldx, const float *panel, float *out) {
    for (int k0 = 0; k0 < K; k0 += K_CHUNK) {
        int kn = K - k0 < K_CHUNK ? K - k0 : K_CHUNK;
        for (int i = 0; i < nb; i++) {
            int b0 = block_start(r0, r1, nb, i), R = block_start(r0, r1, nb, i + 1) - b0;
            rows_product(R, kn, x + (size_t)b0 * ldx + k0, ldx, panel + (size_t)k0 * 64, out + i * PANEL_ROWS * 64,
                         k0 > 0);
        }
    }
}

/* The thread's share of B rows: [B·id/n, B·(id+1)/n). */
#ifdef _OPENMP
#include <omp.h>
#define SHARE(B, r0, r1)                                                                                           \
    int r0 = (int)((long)(B) * omp_get_thread_num() / omp_get_num_threads());                                     \
    int r1 = (int)((long)(B) * (omp_get_thread_num() + 1) / omp_get_num_threads())
#else
#define SHARE(B, r0, r1) int r0 = 0, r1 = (B)
#endif

/* Forward, rows [r0, r1), steps 0 .. T−1: at step s, gates = gx[s] + h[s]·W_hhᵀ (packed by
 * dlia_rnn_lstm_pack), then lstm_units: acts[s], c[s + 1], h[s + 1], tc[s]. h and c are (T + 1, B, H)
 * with the initial state in block 0; acts may be gx. Per step the loop runs panel by panel, and
 * within a panel over the thread's row blocks, so a panel (16 units' 4 gates: H·64 floats) is read
 * from memory once per step and then from L1. */
HELPER void lstm_fwd_seq_rows(int T, int B, int H, int r0, int r1, const float *gx, float *hseq, const float *packed,
                              float *cseq, float *acts, float *tcseq) {
    if (r1 <= r0) return; /* no rows (batch 0, or more threads than rows) */
    int P = (H + 15) / 16, nb = n_blocks(r0, r1);
    size_t s1 = (size_t)B * H, s4 = 4 * s1; /* one step of a (T, B, H) and of a (T, B, 4H) array */
    float *pre = malloc((size_t)nb * PANEL_ROWS * 64 * sizeof(float)); /* the product of every row block */
    if (!pre) abort(); /* out of memory for a few KB: nothing sensible is left to do */
    for (int s = 0; s < T; s++) {
        const float *h_prev = hseq + s * s1, *c_prev = cseq + s * s1, *gxs = gx + s * s4;
        float *h = hseq + (s + 1) * s1, *c = cseq + (s + 1) * s1, *as = acts + s * s4, *tc = tcseq + s * s1;
        for (int p = 0; p < P; p++) {
            int u0 = 16 * p, n = H - u0 < 16 ? H - u0 : 16;
            blocks_product(r0, r1, nb, H, h_prev, H, packed + (size_t)p * H * 64, pre);
            for (int i = 0; i < nb; i++) {
                int b0 = block_start(r0, r1, nb, i), R = block_start(r0, r1, nb, i + 1) - b0;
                for (int r = 0; r < R; r++) {
                    size_t b = (size_t)(b0 + r), r1_ = b * H + u0, r4 = b * 4 * H + u0;
                    const float *xi = gxs + r4, *hi = pre + (i * PANEL_ROWS + r) * 64; /* 4 gates, 16 apart */
                    float *ai = as + r4;
                    lstm_units(n, xi, xi + H, xi + 2 * H, xi + 3 * H, hi, hi + 16, hi + 32, hi + 48, c_prev + r1_, ai,
                               ai + H, ai + 2 * H, ai + 3 * H, c + r1_, h + r1_, tc + r1_);
                }
            }
        }
    }
    free(pre);
}

/* The forward of one LSTM layer over T steps (shapes as in lstm_fwd_seq_rows), rows split between
 * `threads` threads. */
CLONES void dlia_rnn_lstm_fwd_seq(int T, int B, int H, const float *gx, float *hseq, const float *packed, float *cseq,
                                  float *acts, float *tcseq, int threads) {
    if (threads <= 1) {
        lstm_fwd_seq_rows(T, B, H, 0, B, gx, hseq, packed, cseq, acts, tcseq);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        SHARE(B, r0, r1);
        lstm_fwd_seq_rows(T, B, H, r0, r1, gx, hseq, packed, cseq, acts, tcseq);
    }
}

/* W_hh (4H, H) packed for the backward product dh = dpre·W_hh (dpre (B, 4H)): ceil(H/64) panels of
 * 4H rows × 64 floats, panel p row j holding W_hh[j, 64p .. 64p + 63] (0 past H), contiguous so the
 * product streams it in order. */
void dlia_rnn_lstm_pack_bwd(int H, const float *w_hh, float *packed) {
    int P = (H + 63) / 64;
    for (int p = 0; p < P; p++)
        for (int j = 0; j < 4 * H; j++)
            for (int l = 0; l < 64; l++) {
                int k = 64 * p + l;
                packed[((size_t)p * 4 * H + j) * 64 + l] = k < H ? w_hh[(size_t)j * H + k] : 0.0f;
            }
}

/* Backward, rows [r0, r1), steps T−1 down to 0: lstm_bwd_row on step s (dy[s], acts[s], c[s] = c_{s−1},
 * tc[s]; dh and dc (B, H) carry the gradients reaching h_s and c_s), then dh = dpre[s]·W_hh for the
 * step before (packed_bwd by dlia_rnn_lstm_pack_bwd). A row's dh is read by its gate backward before
 * its product overwrites it. */
HELPER void lstm_bwd_seq_rows(int T, int B, int H, int r0, int r1, const float *acts, const float *cseq,
                              const float *tcseq, const float *dy, const float *packed_bwd, float *dh, float *dc,
                              float *dpre) {
    if (r1 <= r0) return; /* no rows (batch 0, or more threads than rows) */
    int P = (H + 63) / 64, nb = n_blocks(r0, r1);
    size_t s1 = (size_t)B * H, s4 = 4 * s1;
    float *out = malloc((size_t)nb * PANEL_ROWS * 64 * sizeof(float)); /* the product of every row block */
    if (!out) abort();
    for (int s = T - 1; s >= 0; s--) {
        const float *as = acts + s * s4;
        float *ds = dpre + s * s4;
        for (int b = r0; b < r1; b++) lstm_bwd_row(b, H, as, cseq + s * s1, tcseq + s * s1, dy + s * s1, dh, dc, ds);
        for (int p = 0; p < P; p++) {
            int k0 = 64 * p, n = H - k0 < 64 ? H - k0 : 64;
            blocks_product(r0, r1, nb, 4 * H, ds, 4 * H, packed_bwd + (size_t)p * 4 * H * 64, out);
            for (int i = 0; i < nb; i++) {
                int b0 = block_start(r0, r1, nb, i), R = block_start(r0, r1, nb, i + 1) - b0;
                for (int r = 0; r < R; r++)
                    memcpy(dh + (size_t)(b0 + r) * H + k0, out + (i * PANEL_ROWS + r) * 64, n * sizeof(float));
            }
        }
    }
    free(out);
}

/* The backward of one LSTM layer over T steps (shapes as in lstm_bwd_seq_rows): dpre (T, B, 4H) out,
 * dh and dc (B, H) in (the gradients reaching h_T and c_T from later batches: zeros, and the final
 * state's) and out (those reaching h_0 and c_0). dy (T, B, H) is read only. */
CLONES void dlia_rnn_lstm_bwd_seq(int T, int B, int H, const float *acts, const float *cseq, const float *tcseq,
                                  const float *dy, const float *packed_bwd, float *dh, float *dc, float *dpre,
                                  int threads) {
    if (threads <= 1) {
        lstm_bwd_seq_rows(T, B, H, 0, B, acts, cseq, tcseq, dy, packed_bwd, dh, dc, dpre);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        SHARE(B, r0, r1);
        lstm_bwd_seq_rows(T, B, H, r0, r1, acts, cseq, tcseq, dy, packed_bwd, dh, dc, dpre);
    }
}

/* The elementary functions on their own, for the tests of their accuracy: out[k] = f(x[k]) with
 * f = exp (0), σ (1) or tanh (2). */
CLONES void dlia_rnn_elementary(int which, long n, const float *x, float *out) {
    if (which == 0) {
#pragma omp simd
        for (long k = 0; k < n; k++) out[k] = exp_approx(x[k]);
    } else if (which == 1) {
#pragma omp simd
        for (long k = 0; k < n; k++) out[k] = sigmoid_approx(x[k]);
    } else {
#pragma omp simd
        for (long k = 0; k < n; k++) out[k] = tanh_approx(x[k]);
    }
}

/* rnn.py loads the library only when this matches its own number, so that a library left over
 * from an older source (a failed rebuild keeps the old file) is never called with new arguments. */
int dlia_rnn_version(void) { return 4; }

/* An empty module, so that importing dlia.backend._rnn (as tools that walk packages do) works. */
static struct PyModuleDef rnn_module = {PyModuleDef_HEAD_INIT, "_rnn",
                                        "C kernels, called through ctypes from dlia/backend/rnn.py", -1,
                                        NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__rnn(void) { return PyModule_Create(&rnn_module); }
