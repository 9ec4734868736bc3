/* word2vec's training loop (Mikolov et al. 2013): CBOW and skip-gram, negative sampling and
 * hierarchical softmax, frequent-word subsampling and the reduced ("dynamic") window, for float32.
 *
 * Why: the model is a tiny computation per training example (a few dot products of length D ≈ 100
 * and as many row updates) repeated for every word and every neighbour of every word, hundreds of
 * millions of times, each example reading rows the previous one may have written. NumPy cannot do
 * that without a Python step per example (or batching, which changes the algorithm); gensim runs it
 * in Cython and the original tool in C. This file is the same loop in C.
 *
 * The reference: dlia/models/word2vec/train.py (``numpy_train``) computes the same values in NumPy
 * from the same random draws; its docstrings are the specification, the comments below repeat it.
 * With ``batch=1`` the NumPy reference applies examples one at a time and equals this code up to
 * float32 rounding (the tests compare the two).
 *
 * The model, for a word w at corpus position p with neighbours (context) c:
 *   input vector   l1 = syn0[c] (skip-gram, once per neighbour c)
 *                       or mean/sum of syn0[c] over the neighbours (CBOW, once per word)
 *   targets        negative sampling: (w, label 1) and K words drawn from the unigram^0.75
 *                  distribution (label 0; a draw equal to w is skipped), scored with syn1neg;
 *                  hierarchical softmax: the inner nodes on w's Huffman path (label 1 − code bit),
 *                  scored with syn1
 *   for every target t (all scores first, from the weights as they are before the example):
 *     f = l1 · v_t,  g = (label − σ(f)) · α          (σ from a 1000-entry table on (−6, 6), as the
 *                                                      C tool: beyond ±6 σ is 0 or 1 for negative
 *                                                      sampling, and the node is skipped for HS)
 *     neu1e += g · v_t;   then  v_t += g · l1
 *   input rows          syn0[c] += neu1e  (every neighbour for CBOW; neu1e is not divided, as in
 *                                          the C tool and gensim)
 *
 * Randomness is counter-based, not a stream: every draw is a hash of (seed, epoch, corpus position
 * p, purpose), so it does not depend on how many draws came before, which thread ran the words, or
 * where a run was interrupted. draw(p, k) = mix(mix(epoch_key ^ p) + k) with mix = splitmix64's
 * finaliser; k = 0: keep-or-drop the word (subsampling), k = 1: the window reduction b, k = 2 +
 * slot·K + j: the j-th negative of the slot-th example of this word (slot 0 for CBOW; for skip-gram
 * the neighbour's offset + window, 0 .. 2·window).
 *   - subsampling: word w is kept when (draw & 0xFFFFFFFF) < keep[w] (keep = P(keep)·2^32, up to 2^32)
 *   - window: the neighbours are the kept words within window − b, b = (draw >> 32) % window
 *   - a negative: Walker's alias method, i = ((draw >> 32) · V) >> 32, i if (draw & 0xFFFFFFFF) <
 *     alias_keep[i], else alias[i]
 * The learning rate of a word at position p in epoch e falls linearly with the position in the
 * whole run: α = α₀ − (α₀ − α_min) · (e·N + p) / (E·N).
 *
 * Work: the run (E epochs of the N corpus words) is cut into chunks, chunk c being the words at
 * positions [k·chunk_words, (k+1)·chunk_words) of epoch c / per_epoch (k = c % per_epoch); a chunk
 * may start or end inside a sentence (its words' neighbours are read from the whole sentence).
 * One call trains chunks [first_chunk, last_chunk): each OpenMP thread takes the next chunk until
 * none is left or *stop is set, and adds each chunk's words to *progress as it finishes it, which
 * the caller reads (from another thread) for a progress bar. Chunks are taken in order and a
 * taken chunk is always finished, so when the call returns n, chunks [first_chunk, n) are done:
 * where a stopped run resumes. The threads update the shared matrices without locks ("Hogwild",
 * as gensim and the C tool): with one thread the result is deterministic; with more, two threads
 * may write the same row at once and results differ by those races (the draws themselves do not).
 *
 * Memory layout: syn0, syn1neg (V, D) and syn1 (V − 1, D) C-contiguous float32; ids int32 (N,) the
 * corpus, starts int64 (S + 1,) sentence boundaries (sentence s is ids[starts[s] : starts[s+1]]);
 * keep, alias_keep uint64 (V,), alias int32 (V,); codes uint8 and points int32 (V, max_code),
 * code_len uint8 (V,); exp_table float (1001,): σ at 1001 points of [−6, 6].
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* one build for every x86-64 machine: gcc compiles the training loop for AVX-512, FMA (AVX2 era)
 * and plain x86-64, and the loader picks one when the library loads */
#define CLONES __attribute__((target_clones("avx512f", "fma", "default")))
#else
#define CLONES
#endif

#define HELPER static inline __attribute__((always_inline))

#define EXP_TABLE_SIZE 1000
#define MAX_EXP 6

/* Everything one call needs; mirrored by Params in w2v.py (its size is checked when loading). */
typedef struct {
    int64_t vocab;        /* V */
    int32_t dim;          /* D */
    int32_t window;       /* the largest window (≥ 1) */
    int32_t negative;     /* K negatives per example (0: no negative sampling) */
    int32_t hs;           /* 1: hierarchical softmax */
    int32_t sg;           /* 1: skip-gram, 0: CBOW */
    int32_t cbow_mean;    /* 1: CBOW's input is the mean of the neighbours, 0: their sum */
    int32_t max_code;     /* columns of codes and points */
    int32_t threads;
    uint64_t seed;
    int64_t words;        /* N, corpus words (one epoch) */
    int64_t chunk_words;  /* words per chunk */
    int64_t first_chunk, last_chunk; /* the chunks this call trains */
    double alpha0, min_alpha;
    double run_words;     /* E·N: words of the whole run (for the learning rate) */
    float *syn0, *syn1neg, *syn1;
    const int32_t *ids;
    const int64_t *starts;
    int64_t sentences;    /* S: starts has S + 1 entries */
    const uint64_t *keep, *alias_keep;
    const int32_t *alias;
    const uint8_t *codes;
    const int32_t *points;
    const uint8_t *code_len;
    const float *exp_table;
    int64_t *progress;    /* words done, added to atomically as chunks finish */
    int32_t *stop;        /* set (by another thread) to end the call after the chunks being trained */
    int64_t *kept;        /* words subsampling kept, added to atomically */
} w2v_params;

HELPER uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* a negative sample from the hash r (Walker's alias method over the unigram^0.75 distribution) */
HELPER int64_t negative_word(const w2v_params *p, uint64_t r) {
    uint64_t i = ((r >> 32) * (uint64_t)p->vocab) >> 32;
    return (r & 0xFFFFFFFFull) < p->alias_keep[i] ? (int64_t)i : (int64_t)p->alias[i];
}

HELPER float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int k = 0; k < n; k++) s += a[k] * b[k];
    return s;
}

HELPER void axpy(float g, const float *x, float *y, int n) {
#pragma omp simd
    for (int k = 0; k < n; k++) y[k] += g * x[k];
}

/* σ(f) from the table, for |f| < MAX_EXP (the callers treat the rest) */
HELPER float sigmoid_table(const float *table, float f) {
    return table[(int)((f + (float)MAX_EXP) * ((float)EXP_TABLE_SIZE / MAX_EXP / 2))];
}

/* One training example: input vector l1 against the targets of word w. Adds the input's error to
 * neu1e (zeroed by the caller) and updates syn1neg/syn1. ``base`` is mix(epoch_key ^ position)
 * of the word, ``slot`` which example of that word this is (for the negatives' draws).
 * scores/grads/targets: buffers of max(K + 1, max_code) entries. */
HELPER void example(const w2v_params *p, const float *l1, float *neu1e, int64_t w, float alpha, uint64_t base,
                    int64_t slot, float *scores, int64_t *targets) {
    const int D = p->dim;
    if (p->hs) {
        const int len = p->code_len[w];
        const uint8_t *code = p->codes + (size_t)w * p->max_code;
        const int32_t *point = p->points + (size_t)w * p->max_code;
        for (int d = 0; d < len; d++) scores[d] = dot(l1, p->syn1 + (size_t)point[d] * D, D);
        for (int d = 0; d < len; d++) {
            float f = scores[d];
            /* beyond ±6 the node is skipped, as the C tool; so is a NaN (a run that diverged), which
             * must never reach the table's index */
            if (!(f > -MAX_EXP && f < MAX_EXP)) { scores[d] = 0.0f; continue; }
            scores[d] = (1.0f - (float)code[d] - sigmoid_table(p->exp_table, f)) * alpha;
        }
        for (int d = 0; d < len; d++) axpy(scores[d], p->syn1 + (size_t)point[d] * D, neu1e, D);
        for (int d = 0; d < len; d++) axpy(scores[d], l1, p->syn1 + (size_t)point[d] * D, D);
    }
    if (p->negative > 0) {
        const int K = p->negative;
        int n = 0;
        targets[n++] = w;
        for (int j = 0; j < K; j++) {
            int64_t t = negative_word(p, mix(base + 2 + (uint64_t)slot * K + j));
            if (t != w) targets[n++] = t;
        }
        for (int k = 0; k < n; k++) scores[k] = dot(l1, p->syn1neg + (size_t)targets[k] * D, D);
        for (int k = 0; k < n; k++) {
            float f = scores[k], label = k == 0 ? 1.0f : 0.0f, s;
            if (f > MAX_EXP) s = 1.0f;
            else if (f >= -MAX_EXP) s = sigmoid_table(p->exp_table, f);
            else s = 0.0f; /* below −6, or NaN (a run that diverged): never an index into the table */
            scores[k] = (label - s) * alpha;
        }
        for (int k = 0; k < n; k++) axpy(scores[k], p->syn1neg + (size_t)targets[k] * D, neu1e, D);
        for (int k = 0; k < n; k++) axpy(scores[k], l1, p->syn1neg + (size_t)targets[k] * D, D);
    }
}

HELPER int kept_word(const w2v_params *p, uint64_t key, int64_t q) {
    return (mix(mix(key ^ (uint64_t)q)) & 0xFFFFFFFFull) < p->keep[p->ids[q]];
}

/* Train the words at positions [a, b) of sentence s (a, b within it) in the epoch with draws key
 * ``key`` and run position offset ``position0`` (e·N); returns the words kept among them. pos and
 * sen hold (b − a) + 2·window entries: the kept words of [a, b) and up to window kept words on each
 * side (their neighbours), neu1 and neu1e D floats, scores/targets max(K + 1, max_code). */
CLONES static int64_t train_piece(const w2v_params *p, uint64_t key, double position0, int64_t s, int64_t a, int64_t b,
                                  int64_t *pos, int32_t *sen, float *neu1, float *neu1e, float *scores, int64_t *targets) {
    const int D = p->dim, W = p->window;
    const int64_t s_begin = p->starts[s], s_end = p->starts[s + 1];
    /* kept words: up to W before a (found backwards, then put in order), those of [a, b), up to W after */
    int64_t n = 0, first, last;
    for (int64_t q = a - 1; q >= s_begin && n < W; q--)
        if (kept_word(p, key, q)) pos[n++] = q;
    for (int64_t i = 0; i < n / 2; i++) { int64_t t = pos[i]; pos[i] = pos[n - 1 - i]; pos[n - 1 - i] = t; }
    first = n;
    for (int64_t q = a; q < b; q++)
        if (kept_word(p, key, q)) pos[n++] = q;
    last = n;
    for (int64_t q = b, after = 0; q < s_end && after < W; q++)
        if (kept_word(p, key, q)) { pos[n++] = q; after++; }
    for (int64_t i = 0; i < n; i++) sen[i] = p->ids[pos[i]];
    for (int64_t i = first; i < last; i++) {
        const int64_t w = sen[i];
        const uint64_t base = mix(key ^ (uint64_t)pos[i]);
        const int r = W - (int)((mix(base + 1) >> 32) % (uint64_t)W); /* the reduced window */
        const float alpha = (float)(p->alpha0 - (p->alpha0 - p->min_alpha) * (position0 + (double)pos[i]) / p->run_words);
        const int64_t lo = i - r < 0 ? 0 : i - r, hi = i + r >= n ? n - 1 : i + r;
        if (p->sg) {
            for (int64_t j = lo; j <= hi; j++) {
                if (j == i) continue;
                float *l1 = p->syn0 + (size_t)sen[j] * D;
                memset(neu1e, 0, sizeof(float) * D);
                example(p, l1, neu1e, w, alpha, base, j - i + W, scores, targets);
                axpy(1.0f, neu1e, l1, D);
            }
        } else {
            if (hi == lo) continue; /* no neighbour */
            memset(neu1, 0, sizeof(float) * D);
            for (int64_t j = lo; j <= hi; j++)
                if (j != i) axpy(1.0f, p->syn0 + (size_t)sen[j] * D, neu1, D);
            if (p->cbow_mean) {
                const float inv = 1.0f / (float)(hi - lo);
#pragma omp simd
                for (int k = 0; k < D; k++) neu1[k] *= inv;
            }
            memset(neu1e, 0, sizeof(float) * D);
            example(p, neu1, neu1e, w, alpha, base, 0, scores, targets);
            for (int64_t j = lo; j <= hi; j++)
                if (j != i) axpy(1.0f, neu1e, p->syn0 + (size_t)sen[j] * D, D);
        }
    }
    return last - first;
}

/* the sentence holding position q: the last s with starts[s] <= q */
static int64_t sentence_of(const w2v_params *p, int64_t q) {
    int64_t lo = 0, hi = p->sentences - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi + 1) / 2;
        if (p->starts[mid] <= q) lo = mid; else hi = mid - 1;
    }
    return lo;
}

/* Train chunk c (see "Work" above); returns the words subsampling kept. */
static int64_t train_chunk(const w2v_params *p, int64_t c, int64_t *pos, int32_t *sen, float *buf, int64_t *targets) {
    const int64_t per_epoch = (p->words + p->chunk_words - 1) / p->chunk_words;
    const int64_t e = c / per_epoch, k = c % per_epoch;
    const int64_t a = k * p->chunk_words, b = a + p->chunk_words < p->words ? a + p->chunk_words : p->words;
    const uint64_t key = mix(p->seed ^ mix((uint64_t)e));
    int64_t kept = 0;
    for (int64_t s = sentence_of(p, a), q = a; q < b; s++) {
        const int64_t piece_end = p->starts[s + 1] < b ? p->starts[s + 1] : b;
        if (piece_end > q)
            kept += train_piece(p, key, (double)e * (double)p->words, s, q, piece_end, pos, sen, buf, buf + p->dim,
                                buf + 2 * p->dim, targets);
        q = piece_end;
    }
    return kept;
}

/* Train chunks [first_chunk, last_chunk) until done or *stop is set; returns n such that chunks
 * [first_chunk, n) are trained, or −1 when a buffer could not be allocated (nothing was trained). */
long long dlia_w2v_train(const w2v_params *p) {
    /* every thread's buffers, allocated before any training so that a failure changes nothing */
    const int threads = p->threads < 1 ? 1 : p->threads;
    const int64_t slots = (p->negative + 1 > p->max_code ? p->negative + 1 : p->max_code) + 1;
    const int64_t words = p->chunk_words + 2 * (int64_t)p->window + 1, floats = 2 * (int64_t)p->dim + slots;
    int64_t *pos = malloc(sizeof(int64_t) * (size_t)(threads * (words + slots)));
    int32_t *sen = malloc(sizeof(int32_t) * (size_t)(threads * words));
    float *buf = malloc(sizeof(float) * (size_t)(threads * floats));
    if (!pos || !sen || !buf) {
        free(pos); free(sen); free(buf);
        return -1;
    }
    int64_t next = p->first_chunk;
#pragma omp parallel num_threads(threads)
    {
#ifdef _OPENMP
        const int64_t me = omp_get_thread_num();
#else
        const int64_t me = 0;
#endif
        int64_t *my_pos = pos + me * (words + slots);
        float *my_buf = buf + me * floats;
        while (!__atomic_load_n(p->stop, __ATOMIC_RELAXED)) {
            const int64_t c = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
            if (c >= p->last_chunk) break;
            const int64_t kept = train_chunk(p, c, my_pos, sen + me * words, my_buf, my_pos + words);
            const int64_t per_epoch = (p->words + p->chunk_words - 1) / p->chunk_words, k = c % per_epoch;
            const int64_t done = (k + 1) * p->chunk_words < p->words ? p->chunk_words : p->words - k * p->chunk_words;
            __atomic_fetch_add(p->kept, kept, __ATOMIC_RELAXED);
            __atomic_fetch_add(p->progress, done, __ATOMIC_RELAXED);
        }
    }
    free(pos); free(sen); free(buf);
    return next < p->last_chunk ? next : p->last_chunk;
}

/* The hash the draws use, for the NumPy reference's tests: out[k] = mix(x[k]). */
void dlia_w2v_mix(long long n, const uint64_t *x, uint64_t *out) {
    for (long long k = 0; k < n; k++) out[k] = mix(x[k]);
}

/* the layout check: w2v.py compares this with ctypes.sizeof of its mirror */
size_t dlia_w2v_sizeof_w2v_params(void) { return sizeof(w2v_params); }

/* w2v.py loads the library only when this matches its own number, so that a library left over
 * from an older source (a failed rebuild keeps the old file) is never called with new arguments. */
int dlia_w2v_version(void) { return 3; }

/* An empty module, so that importing dlia.backend._w2v (as tools that walk packages do) works. */
static struct PyModuleDef w2v_module = {PyModuleDef_HEAD_INIT, "_w2v",
                                        "C kernels, called through ctypes from dlia/backend/w2v.py", -1,
                                        NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__w2v(void) { return PyModule_Create(&w2v_module); }
