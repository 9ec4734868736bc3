/* Large float32 matrix products on dlia's own OpenMP threads, each thread running one
 * single-threaded call of the OpenBLAS that NumPy ships (its sgemm, found by dlia/backend/blas.py).
 *
 * Why: NumPy's OpenBLAS runs a large product on its own pool of threads, and when the product is
 * done those threads keep polling for the next one for about 0.1 s (measured: 100 ms of CPU time
 * spent during a 200 ms sleep after one 2500×512·512×128 product). In a training step that
 * alternates products with dlia's compiled kernels (the LSTM's time loop, the convolutions) the
 * poller holds the second core whenever a kernel wants it: an LSTM forward on two threads took
 * 3.8 ms right after a product against 2.1 ms without one (3.3 ms on one thread). Splitting each
 * product between dlia's threads, with OpenBLAS told to use one thread for the moment of the call,
 * keeps both cores in one pool, the one the kernels use, and the product as fast (each half runs
 * OpenBLAS's own single-threaded kernel).
 *
 * The product (CBLAS, row-major): C = op(A)·op(B) + beta·C, op(A) M×K, op(B) K×N, C M×N with leading
 * dimension ldc; op(X) = X (trans 0, X stored row-major with leading dimension ldx) or Xᵀ (trans 1,
 * X stored K×M or N×K). The rows of C (or, when C has more columns than rows, its columns) are split
 * into one contiguous part per thread, each a multiple of 16 but the last; every element of C is
 * computed by exactly one call. The same call gives the same bits every time; a different number
 * of threads may not (OpenBLAS picks its kernel by the size of each part, as NumPy's own calls
 * differ between 1 and 2 OpenBLAS threads), the differences being float32 rounding.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* the two CBLAS interfaces: 64-bit integers (NumPy's "openblas64_" / "scipy_openblas64_") or 32-bit */
typedef void (*sgemm64_fn)(int order, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                           int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
typedef void (*sgemm32_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                           const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

/* One CBLAS call on the block rows [m0, m0 + m) × columns [n0, n0 + n) of C. */
static void block(const void *gemm, int ilp64, int ta, int tb, long m0, long m, long n0, long n, long K,
                  const float *A, long lda, const float *B, long ldb, float beta, float *C, long ldc) {
    const float *a = ta ? A + m0 : A + m0 * lda; /* op(A)'s rows m0.. : columns of A when transposed */
    const float *b = tb ? B + n0 * ldb : B + n0;
    float *c = C + m0 * ldc + n0;
    int ota = ta ? TRANS : NO_TRANS, otb = tb ? TRANS : NO_TRANS;
    if (ilp64)
        ((sgemm64_fn)gemm)(ROW_MAJOR, ota, otb, m, n, K, 1.0f, a, lda, b, ldb, beta, c, ldc);
    else
        ((sgemm32_fn)gemm)(ROW_MAJOR, ota, otb, (int)m, (int)n, (int)K, 1.0f, a, (int)lda, b, (int)ldb, beta, c,
                           (int)ldc);
}

/* Part p of `parts` of a length-n range, in multiples of 16 (the last part takes the rest). */
static void part(long n, int parts, int p, long *start, long *len) {
    long unit = (n / parts + 15) / 16 * 16;
    long s = unit * p, e = p == parts - 1 ? n : unit * (p + 1);
    if (s > n) s = n;
    if (e > n) e = n;
    *start = s;
    *len = e - s;
}

/* The product on `threads` threads (1: on the calling thread, one call). OpenBLAS's own thread count
 * is set to 1 for the duration (set/get: openblas_set_num_threads / openblas_get_num_threads), then
 * restored. */
void dlia_blas_sgemm(const void *gemm, int ilp64, const void *set, const void *get, int ta, int tb, long M, long N,
                     long K, const float *A, long lda, const float *B, long ldb, float beta, float *C, long ldc,
                     int threads) {
    int before = ((get_threads_fn)get)();
    if (threads > before) threads = before; /* the user's OPENBLAS_NUM_THREADS / openblas_set_num_threads caps it */
    if (before > 1) ((set_threads_fn)set)(1);
    if (threads <= 1) {
        block(gemm, ilp64, ta, tb, 0, M, 0, N, K, A, lda, B, ldb, beta, C, ldc);
    } else {
        int rows = M >= N; /* split the longer side */
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int p = 0; p < threads; p++) {
            long s, n;
            part(rows ? M : N, threads, p, &s, &n);
            if (n > 0) {
                if (rows)
                    block(gemm, ilp64, ta, tb, s, n, 0, N, K, A, lda, B, ldb, beta, C, ldc);
                else
                    block(gemm, ilp64, ta, tb, 0, M, s, n, K, A, lda, B, ldb, beta, C, ldc);
            }
        }
    }
    if (before > 1) ((set_threads_fn)set)(before);
}

/* blas.py loads the library only when this matches its own number, so that a library left over
 * from an older source (a failed rebuild keeps the old file) is never called with new arguments. */
int dlia_blas_version(void) { return 1; }

/* An empty module, so that importing dlia.backend._blas (as tools that walk packages do) works. */
static struct PyModuleDef blas_module = {PyModuleDef_HEAD_INIT, "_blas",
                                         "C driver, called through ctypes from dlia/backend/blas.py", -1,
                                         NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__blas(void) { return PyModule_Create(&blas_module); }
