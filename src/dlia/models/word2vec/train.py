"""Training word2vec (Mikolov et al. 2013): CBOW and skip-gram, negative sampling and hierarchical
softmax, frequent-word subsampling and the reduced window, as the C tool and gensim train them.

The model is two matrices: ``syn0`` (V, D), the input vectors, which are the word vectors one keeps,
and the output vectors, ``syn1neg`` (V, D) for negative sampling or ``syn1`` (V − 1, D), one per inner
node of a Huffman tree over the vocabulary, for hierarchical softmax. One training example is an
input vector ``l1`` and the targets of a word w:

- skip-gram: ``l1 = syn0[c]`` for each neighbour c of w (one example per neighbour);
- CBOW: ``l1`` = the mean (or sum) of ``syn0[c]`` over w's neighbours (one example per word).

Its loss is that of logistic regressions on ``f = l1 · v_t``: for negative sampling the target w
(label 1) against K words drawn from the unigram distribution raised to 0.75 (label 0),
−log σ(f_w) − Σ log σ(−f_k); for hierarchical softmax the inner nodes on w's path from the root,
label = 1 − the path's bit there. One SGD step with learning rate α:
``g_t = (label_t − σ(f_t))·α``, ``v_t += g_t·l1`` and the input rows get ``Σ_t g_t·v_t``
(every neighbour's row, for CBOW). All scores of an example are computed before any of its
updates. σ comes from the C tool's 1000-entry table on (−6, 6); beyond, σ is taken as 0 or 1
(negative sampling) or the node is skipped (hierarchical softmax), as the C tool does.

Randomness is counter-based: every draw is a hash of (seed, epoch, corpus position, purpose)
(``draws``), so the kernel's threads, the NumPy reference and a resumed run all make the same
draws; the learning rate falls linearly with the position in the whole run. ``_w2v.c`` runs the
loop in C (``dlia.backend.w2v``); ``numpy_train`` is the same computation in NumPy, exact with
``batch=1`` (examples applied one at a time, for the tests) and batched otherwise (the fallback
where the kernel was not built: several thousand words per second instead of a million).
"""

from __future__ import annotations

import ctypes
import heapq
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy

from dlia.backend import w2v as kernel

EXP_TABLE_SIZE, MAX_EXP = 1000, 6
#: the longest Huffman code; a vocabulary whose tree is deeper is refused (2^40 words would be needed
#: with any sensible counts; the C tool uses the same bound)
MAX_CODE = 40
_M32 = numpy.uint64(0xFFFFFFFF)


#: the largest value of each integer setting (larger ones are refused, not wrapped: the kernel keeps
#: several in 32-bit fields, and none of these makes sense beyond)
LIMITS = {"vector_size": 1_000_000, "window": 1_000_000, "negative": 1_000_000, "epochs": 1_000_000,
          "min_count": 2**62, "max_vocab": 2**31 - 1, "threads": 4096, "max_sentence_length": 2**31 - 1,
          "chunk_words": 100_000_000}


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class Word2VecError(ValueError):
    """A configuration or corpus word2vec cannot train on; the message says what to change."""


@dataclass
class Word2VecConfig:
    """What the model is and how it trains; defaults are the final C word2vec's.

    Attributes:
        model: ``"cbow"`` or ``"skipgram"``.
        vector_size: D, the length of each word vector.
        window: the largest distance of a neighbour; each word draws a reduced window 1..window.
        negative: negative samples per example (0: none; then ``hs`` must be on).
        hs: hierarchical softmax over a Huffman tree.
        sample: the subsampling threshold t: a word of frequency f is kept with probability
            (√(f/t) + 1)·t/f (capped at 1); 0 keeps every word.
        epochs: passes over the corpus.
        min_count, max_vocab: the vocabulary: words seen at least ``min_count`` times, the most
            frequent ``max_vocab`` of them (None: all).
        alpha: the starting learning rate (None: 0.05 for CBOW, 0.025 for skip-gram); it falls
            linearly to ``alpha · min_alpha_ratio`` over the whole run.
        cbow_mean: CBOW's input is the mean of the neighbours' vectors (else their sum).
        threads: OpenMP threads of the compiled kernel (at most one per core is used).
        seed: every random draw (initial vectors, subsampling, windows, negatives) follows from it.
        lowercase: lower-case the corpus when reading it.
        max_sentence_length: longer lines are cut into sentences of at most this many words (gensim's rule).
        chunk_words: words per unit of work a thread takes (a run of whole sentences).
    """

    model: str = "cbow"
    vector_size: int = 100
    window: int = 5
    negative: int = 5
    hs: bool = False
    sample: float = 1e-3
    epochs: int = 5
    min_count: int = 5
    max_vocab: int | None = None
    alpha: float | None = None
    min_alpha_ratio: float = 1e-4
    cbow_mean: bool = True
    threads: int = 2
    seed: int = 1
    lowercase: bool = False
    max_sentence_length: int = 10000
    chunk_words: int = 10000

    def __post_init__(self) -> None:
        if self.model not in ("cbow", "skipgram"):
            raise Word2VecError(f"model must be 'cbow' or 'skipgram', not {self.model!r}")
        for name, high in LIMITS.items():  # the kernel keeps some in 32-bit fields: no silent wrapping
            value = getattr(self, name)
            low = 0 if name == "negative" else 1
            if name == "max_vocab" and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise Word2VecError(f"{name.replace('_', '-')} must be an integer, got {value!r}")
            if not low <= value <= high:
                raise Word2VecError(f"{name.replace('_', '-')} must be within {low}..{high:,}, got {value:,}")
        for name in ("hs", "cbow_mean", "lowercase"):
            if not isinstance(getattr(self, name), bool):
                raise Word2VecError(f"{name.replace('_', '-')} must be true or false, got {getattr(self, name)!r}")
        if self.negative == 0 and not self.hs:
            raise Word2VecError("with negative 0, hierarchical softmax (hs) must be on: the model needs an output layer")
        if not _number(self.sample) or not 0 <= self.sample < math.inf:
            raise Word2VecError(f"sample must be 0 or more, got {self.sample!r}")
        if self.alpha is not None and not (_number(self.alpha) and 0 < self.alpha < math.inf):
            raise Word2VecError(f"alpha must be positive, got {self.alpha!r}")
        if not _number(self.min_alpha_ratio) or not 0 <= self.min_alpha_ratio <= 1:
            raise Word2VecError(f"min-alpha-ratio must be within [0, 1], got {self.min_alpha_ratio!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2**64:
            raise Word2VecError(f"seed must be an integer within [0, 2^64), got {self.seed!r}")

    @property
    def sg(self) -> bool:
        return self.model == "skipgram"

    @property
    def start_alpha(self) -> float:
        return self.alpha if self.alpha is not None else (0.025 if self.sg else 0.05)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Word2VecConfig:
        """The config a checkpoint saved (unknown keys refused, so a damaged file is noticed)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise Word2VecError(f"unknown word2vec settings: {', '.join(sorted(unknown))}")
        return cls(**d)


# -- the tables -------------------------------------------------------------------------------------


def exp_table() -> numpy.ndarray:
    """σ on 1001 points of [−6, 6], the C tool's table: entry i is σ((2i/1000 − 1)·6), float32.
    ``f`` is looked up at index ⌊(f + 6)·(1000/12)⌋, computed in float32 (entry 1000 serves f = 6)."""
    x = (numpy.arange(EXP_TABLE_SIZE + 1, dtype=numpy.float64) / EXP_TABLE_SIZE * 2 - 1) * MAX_EXP
    return (1.0 / (1.0 + numpy.exp(-x))).astype(numpy.float32)


def mix(x: numpy.ndarray | int) -> numpy.ndarray:
    """splitmix64's finaliser on uint64 (wrapping arithmetic): the hash behind every random draw."""
    with numpy.errstate(over="ignore"):  # NumPy warns of wrapping only for scalars; it is meant
        z = numpy.asarray(x, dtype=numpy.uint64) + numpy.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> numpy.uint64(30))) * numpy.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> numpy.uint64(27))) * numpy.uint64(0x94D049BB133111EB)
        return z ^ (z >> numpy.uint64(31))


def epoch_key(seed: int, epoch: int) -> int:
    """The key of one epoch's draws: mix(seed ^ mix(epoch))."""
    return int(mix(numpy.uint64(seed) ^ mix(numpy.uint64(epoch))))


def keep_thresholds(counts: numpy.ndarray, sample: float) -> numpy.ndarray:
    """Subsampling: word i is kept when a 32-bit draw is below ``keep[i]`` = P(keep)·2^32, with the
    C tool's P(keep) = (√(c/(t·T)) + 1)·(t·T)/c for count c, threshold t, T = Σ counts (capped at 1;
    t = 0 keeps everything). uint64 (V,)."""
    counts = numpy.asarray(counts, dtype=numpy.float64)
    if sample <= 0:
        return numpy.full(len(counts), 1 << 32, dtype=numpy.uint64)
    tt = sample * counts.sum()
    with numpy.errstate(divide="ignore"):
        p = (numpy.sqrt(counts / tt) + 1) * tt / counts
    return numpy.round(numpy.minimum(p, 1.0) * 2.0**32).astype(numpy.uint64)


def alias_table(counts: numpy.ndarray, power: float = 0.75) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Walker's alias table of the distribution p_i ∝ count_i^power, for O(1) negative draws.

    A draw r picks column i = ⌊(r >> 32)·V / 2^32⌋, then i itself when ``r & 0xFFFFFFFF`` <
    ``keep[i]``, else ``alias[i]``: column i holds ``keep[i]/2^32`` of i and the rest of
    ``alias[i]``, so P(i) = (keep_i + Σ_{j: alias_j = i} (2^32 − keep_j)) / (V·2^32), which equals
    p_i up to the rounding of ``keep`` to integers (Vose's construction). Returns (keep uint64, alias int32).
    """
    w = numpy.asarray(counts, dtype=numpy.float64) ** power
    n = len(w)
    if n == 0 or not w.sum() > 0:
        raise Word2VecError("negative sampling needs at least one word with a positive count")
    scaled = w * (n / w.sum())  # mean 1
    keep = numpy.ones(n, dtype=numpy.float64)
    alias = numpy.arange(n, dtype=numpy.int32)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:  # one column settled per step (Vose): O(V) Python steps, ~0.1 s per 100k words
        s, g = small.pop(), large.pop()
        keep[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    # what is left is ≈ 1 up to rounding: kept whole
    return numpy.round(keep * 2.0**32).astype(numpy.uint64), alias


def alias_probabilities(keep: numpy.ndarray, alias: numpy.ndarray) -> numpy.ndarray:
    """The distribution an alias table draws from (for the tests)."""
    n = len(keep)
    k = keep.astype(numpy.float64) / 2.0**32
    return (k + numpy.bincount(alias, weights=1.0 - k, minlength=n)) / n


def huffman(counts: numpy.ndarray) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """The Huffman tree of hierarchical softmax: for each word its code (the bits on the way from
    the root: 0 = first child) and the inner nodes on that way (indices into ``syn1``, 0 .. V − 2;
    the root is V − 2).

    Built by merging the two least frequent nodes V − 1 times (heap ordered by count, ties by
    creation order: leaves by id, then inner nodes as created, so the tree is deterministic).
    Returns codes uint8 (V, MAX_CODE), points int32 (V, MAX_CODE) (entries past a word's length are
    0) and code_len uint8 (V,). One word gets an empty code (no tree).
    """
    counts = numpy.asarray(counts, dtype=numpy.int64)
    v = len(counts)
    codes = numpy.zeros((v, MAX_CODE), dtype=numpy.uint8)
    points = numpy.zeros((v, MAX_CODE), dtype=numpy.int32)
    length = numpy.zeros(v, dtype=numpy.uint8)
    if v < 2:
        return codes, points, length
    heap = [(int(c), i) for i, c in enumerate(counts)]  # node ids: leaves 0..V-1, inner node k is V + k
    heapq.heapify(heap)
    parent = numpy.zeros(2 * v - 1, dtype=numpy.int64)
    bit = numpy.zeros(2 * v - 1, dtype=numpy.uint8)
    for k in range(v - 1):
        c1, a = heapq.heappop(heap)
        c2, b = heapq.heappop(heap)
        parent[a], parent[b], bit[b] = v + k, v + k, 1
        heapq.heappush(heap, (c1 + c2, v + k))
    root = 2 * v - 2
    for w in range(v):  # walk up from each leaf; the path is read root-first
        path_bits, path_nodes, node = [], [], w
        while node != root:
            path_bits.append(bit[node])
            node = int(parent[node])
            path_nodes.append(node - v)
        if len(path_bits) > MAX_CODE:
            raise Word2VecError(f"the Huffman tree is deeper than {MAX_CODE} (word {w}); hierarchical softmax cannot use it")
        n = len(path_bits)
        codes[w, :n] = path_bits[::-1]
        points[w, :n] = path_nodes[::-1]
        length[w] = n
    return codes, points, length


# -- the model --------------------------------------------------------------------------------------


class Word2Vec:
    """A word2vec model over a vocabulary: the input vectors (the word vectors), the output vectors
    and the tables training draws from.

    Args:
        words: the vocabulary, most frequent first (``dlia.text.WordVocab.words``).
        counts: their counts (int, same length).
        config: the model and training settings.

    Example:
        >>> from dlia.text import WordVocab, EncodedCorpus  # doctest: +SKIP
        >>> model = Word2Vec(vocab.words, vocab.counts, Word2VecConfig(model="skipgram"))  # doctest: +SKIP
        >>> model.train(corpus)  # doctest: +SKIP
        >>> model.wv.most_similar("king")  # doctest: +SKIP
    """

    def __init__(self, words: list[str], counts: numpy.ndarray, config: Word2VecConfig | None = None) -> None:
        self.config = config or Word2VecConfig()
        self.words = list(words)
        self.counts = numpy.asarray(counts, dtype=numpy.int64)
        if len(self.words) != len(self.counts) or not self.words:
            raise Word2VecError(f"{len(self.words)} words but {len(self.counts)} counts; the vocabulary must not be empty")
        cfg, v = self.config, len(self.words)
        rng = numpy.random.default_rng(cfg.seed)
        # input vectors uniform in ±1/D (gensim's; the C tool's ±0.5/D gave WordSim-353 ρ about 2
        # points lower on enwiki-sample, skip-gram, mean of 4 seeds), output vectors zero (both)
        self.syn0 = ((rng.random((v, cfg.vector_size), dtype=numpy.float32) * numpy.float32(2) - numpy.float32(1))
                     / numpy.float32(cfg.vector_size))
        self.syn1neg = numpy.zeros((v, cfg.vector_size), dtype=numpy.float32) if cfg.negative else None
        self.syn1 = numpy.zeros((max(v - 1, 1), cfg.vector_size), dtype=numpy.float32) if cfg.hs else None
        #: chunks of the run trained so far (where a resumed run continues; see ``train``)
        self.chunks_done = 0
        self._tables()

    def _tables(self) -> None:
        cfg = self.config
        self.keep = keep_thresholds(self.counts, cfg.sample)
        if cfg.negative:
            self.alias_keep, self.alias = alias_table(self.counts)
        else:
            self.alias_keep, self.alias = numpy.zeros(1, numpy.uint64), numpy.zeros(1, numpy.int32)
        if cfg.hs:
            self.codes, self.points, self.code_len = huffman(self.counts)
        else:
            self.codes, self.points = numpy.zeros((1, MAX_CODE), numpy.uint8), numpy.zeros((1, MAX_CODE), numpy.int32)
            self.code_len = numpy.zeros(1, numpy.uint8)
        self.exp_table = exp_table()

    def __len__(self) -> int:
        return len(self.words)

    @property
    def wv(self) -> Any:
        """The word vectors as ``KeyedVectors`` (sharing ``syn0``, not a copy)."""
        from dlia.models.word2vec.vectors import KeyedVectors

        return KeyedVectors(self.words, self.syn0, self.counts)

    # -- training -----------------------------------------------------------------------------------

    def train(self, corpus: Any, progress: Callable[[int, int, float], None] | None = None,
              use_kernel: bool | None = None, until_epoch: int | None = None, stop: Callable[[], bool] | None = None,
              poll: float = 0.2) -> dict[str, int]:
        """Train on ``corpus`` (``ids`` int32 and sentence ``starts`` int64, as ``dlia.text.EncodedCorpus``)
        from where the model is (``chunks_done``) to the end of epoch ``until_epoch`` (default: the
        config's epochs; the learning rate always follows the config's whole run).

        The run is cut into chunks of ``config.chunk_words`` words (_w2v.c, "Work"); ``chunks_done``
        records how many are done, so ``train`` continues a stopped or interrupted run exactly where
        it ended (bit-identical with one thread: every draw depends only on the seed and position).

        Args:
            progress: called about every ``poll`` seconds with (words done in the run, words of the
                run, current α).
            use_kernel: the compiled kernel (True), the NumPy fallback (False), or the kernel where
                available (None).
            stop: checked about every ``poll`` seconds; returning True ends training after the
                chunks being trained. Ctrl-C does the same, then raises KeyboardInterrupt.

        Returns:
            {"words": corpus words trained on by this call, "kept": words subsampling kept}.
        """
        ids, starts = numpy.asarray(corpus.ids), numpy.asarray(corpus.starts)
        n = len(ids)
        if n == 0:
            raise Word2VecError("the corpus holds no word of the vocabulary")
        # everything the kernel reads is checked here: it trusts its arguments
        if ids.ndim != 1 or ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= len(self):
            raise Word2VecError(f"the corpus's word ids must be integers within 0..{len(self) - 1}")
        if (starts.ndim != 1 or starts.dtype.kind not in "iu" or len(starts) < 2 or starts[0] != 0 or starts[-1] != n
                or (numpy.diff(starts) < 0).any()):
            raise Word2VecError("the corpus's sentence starts do not cut its words into sentences")
        ids = numpy.ascontiguousarray(ids, dtype=numpy.int32)
        starts = numpy.ascontiguousarray(starts, dtype=numpy.int64)
        self._check_arrays()
        cfg = self.config
        per_epoch = -(-n // cfg.chunk_words)
        last = (cfg.epochs if until_epoch is None else min(until_epoch, cfg.epochs)) * per_epoch
        run_words = n * cfg.epochs
        first = self.chunks_done
        if not isinstance(first, int) or isinstance(first, bool) or not 0 <= first <= cfg.epochs * per_epoch:
            raise Word2VecError(f"chunks_done must be an integer within 0..{cfg.epochs * per_epoch} for this corpus, "
                                f"got {first!r}")
        if first >= last:
            return {"words": 0, "kept": 0}

        def position(chunk: int) -> int:  # the run position where a chunk starts
            e, k = divmod(chunk, per_epoch)
            return e * n + min(k * cfg.chunk_words, n)

        def report(done_words: int) -> None:
            if progress is not None:
                at = position(first) + done_words
                progress(at, run_words, self.alpha_at(at, run_words))

        if use_kernel is None:
            use_kernel = bool(kernel.available)
        if use_kernel:
            counters = numpy.zeros(2, dtype=numpy.int64)  # words done, words kept: written by the kernel's threads
            flag = numpy.zeros(1, dtype=numpy.int32)  # set to stop the kernel after the chunks it is training
            params = self._params(ids, starts, counters, flag, first, last, run_words)
            result: dict[str, Any] = {}
            finished = threading.Event()  # set when the kernel has returned: only then are the matrices still

            def run() -> None:
                try:
                    result["done"] = kernel.train(params)
                except BaseException as e:  # noqa: BLE001 (handed to the calling thread)
                    result["error"] = e
                finally:
                    finished.set()

            threading.Thread(target=run, name="word2vec", daemon=True).start()
            try:
                while not finished.wait(poll):
                    report(int(counters[0]))
                    if stop is not None and stop():
                        flag[0] = 1
            except KeyboardInterrupt:
                flag[0] = 1  # the kernel ends after the chunks it is training; wait for that, even through more Ctrl-C
                while not finished.is_set():
                    try:
                        finished.wait(0.05)
                    except KeyboardInterrupt:
                        pass
                self.chunks_done = result.get("done", first)
                raise
            report(int(counters[0]))
            if "error" in result:
                raise result["error"]
            self.chunks_done = result["done"]
            self._check_finite()
            return {"words": position(self.chunks_done) - position(first), "kept": int(counters[1])}
        kept, clock = 0, time.monotonic()
        for c in range(first, last):
            e, k = divmod(c, per_epoch)
            kept += numpy_train(self, ids, starts, e, k * cfg.chunk_words, min((k + 1) * cfg.chunk_words, n), run_words)
            self.chunks_done = c + 1
            if time.monotonic() - clock >= poll or c + 1 == last:
                clock = time.monotonic()
                report(position(c + 1) - position(first))
                if stop is not None and stop():
                    break
        self._check_finite()
        return {"words": position(self.chunks_done) - position(first), "kept": kept}

    def _check_arrays(self) -> None:
        """The matrices are what the kernel will read and write: float32, C-contiguous, of their shapes."""
        v, d = len(self), self.config.vector_size
        expected = {"syn0": (v, d), "syn1neg": (v, d) if self.config.negative else None,
                    "syn1": (max(v - 1, 1), d) if self.config.hs else None}
        for name, shape in expected.items():
            a = getattr(self, name)
            if shape is None:
                continue
            if not (isinstance(a, numpy.ndarray) and a.dtype == numpy.float32 and a.shape == shape and a.flags.c_contiguous
                    and a.flags.writeable):
                got = f"{a.dtype} {a.shape}" if isinstance(a, numpy.ndarray) else type(a).__name__
                raise Word2VecError(f"{name} must be a writable C-contiguous float32 array of shape {shape}, got {got}")

    def _check_finite(self) -> None:
        for name in ("syn0", "syn1neg", "syn1"):
            a = getattr(self, name)
            if a is not None and not numpy.isfinite(a).all():
                raise Word2VecError(f"training diverged ({name} holds NaN or infinite values): lower the learning "
                                    f"rate (alpha {self.config.start_alpha:g})")

    def epoch_of(self, corpus_words: int) -> float:
        """How many epochs of a corpus of ``corpus_words`` words the model has trained (fractional)."""
        per_epoch = -(-corpus_words // self.config.chunk_words)
        e, k = divmod(self.chunks_done, per_epoch)
        return e + min(k * self.config.chunk_words, corpus_words) / corpus_words

    def alpha_at(self, position: float, run_words: float) -> float:
        """The learning rate at a position of the run: α₀ − (α₀ − α_min)·position/run_words."""
        a0 = self.config.start_alpha
        return a0 - (a0 - a0 * self.config.min_alpha_ratio) * position / run_words

    def _params(self, ids: numpy.ndarray, starts: numpy.ndarray, counters: numpy.ndarray, flag: numpy.ndarray,
                first: int, last: int, run_words: int) -> kernel.Params:
        cfg = self.config
        p = kernel.Params()
        p.vocab, p.dim, p.window, p.negative = len(self), cfg.vector_size, cfg.window, cfg.negative
        p.hs, p.sg, p.cbow_mean, p.max_code = int(cfg.hs), int(cfg.sg), int(cfg.cbow_mean), MAX_CODE
        p.threads, p.seed = kernel.threads(cfg.threads), cfg.seed
        p.words, p.chunk_words, p.first_chunk, p.last_chunk = len(ids), cfg.chunk_words, first, last
        p.alpha0, p.min_alpha, p.run_words = cfg.start_alpha, cfg.start_alpha * cfg.min_alpha_ratio, float(run_words)
        p.sentences = len(starts) - 1
        self._keepalive = (ids, starts, counters, flag)  # the struct holds raw addresses: keep the arrays alive
        for name, a in (("syn0", self.syn0), ("syn1neg", self.syn1neg), ("syn1", self.syn1), ("ids", ids),
                        ("starts", starts), ("keep", self.keep), ("alias_keep", self.alias_keep), ("alias", self.alias),
                        ("codes", self.codes), ("points", self.points), ("code_len", self.code_len),
                        ("exp_table", self.exp_table), ("progress", counters[0:]), ("kept", counters[1:]),
                        ("stop", flag)):
            if a is not None:  # checked by train (_check_arrays) or made contiguous here
                setattr(p, name, ctypes.c_void_p(a.ctypes.data))
        return p

    # -- checkpoints ----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The trained matrices, for ``dlia.io.save_checkpoint`` (as a module's)."""
        from dlia.core.tensor import Tensor

        out = {"syn0": Tensor(self.syn0)}
        if self.syn1neg is not None:
            out["syn1neg"] = Tensor(self.syn1neg)
        if self.syn1 is not None:
            out["syn1"] = Tensor(self.syn1)
        return out

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: t.shape for name, t in self.state_dict().items()}

    def load_arrays(self, arrays: dict[str, numpy.ndarray]) -> None:
        """Copy saved matrices in (their shapes checked by the caller, ``expect_shapes``)."""
        for name in self.state_dict():
            getattr(self, name)[...] = arrays[name]


# -- the NumPy reference -------------------------------------------------------------------------------


def draws(key: int, positions: numpy.ndarray, k: numpy.ndarray | int) -> numpy.ndarray:
    """The draws of the kernel: mix(mix(key ^ position) + k), uint64 (broadcast)."""
    base = mix(numpy.uint64(key) ^ numpy.asarray(positions, dtype=numpy.uint64))
    with numpy.errstate(over="ignore"):
        return mix(base + numpy.asarray(k, dtype=numpy.uint64))


def _sigmoid(table: numpy.ndarray, f: numpy.ndarray) -> numpy.ndarray:
    """σ(f) from the table for |f| < 6 (clipped index elsewhere; the callers mask those)."""
    f = numpy.where(numpy.abs(f) <= MAX_EXP, f, numpy.float32(0))  # out of range or NaN: masked by the callers
    idx = ((f + numpy.float32(MAX_EXP)) * numpy.float32(EXP_TABLE_SIZE / MAX_EXP / 2)).astype(numpy.int64)
    return table[numpy.clip(idx, 0, EXP_TABLE_SIZE)]


def numpy_train(model: Word2Vec, ids: numpy.ndarray, starts: numpy.ndarray, epoch: int, qa: int, qb: int,
                run_words: int, batch: int | None = None) -> int:
    """The words at positions [qa, qb) of epoch ``epoch`` in NumPy: the kernel's draws and updates,
    applied ``batch`` examples at a time (each batch's scores from the weights before it; ``batch=1``
    is the kernel's one-at-a-time order). Updates ``model``'s matrices in place; returns the words
    kept among them.

    Batching is an approximation: a word that occurs m times in a batch gets m updates computed
    from the same stale weights, summed, which diverges when m is large (a small vocabulary, or the
    most frequent words). The default, V/16 examples (1 to 1024), keeps m small; tests with
    ``batch=1`` compare the reference with the kernel exactly.
    """
    if batch is None:
        batch = max(1, min(1024, len(model) // 16))
    cfg, table = model.config, model.exp_table
    w_max, key = cfg.window, epoch_key(cfg.seed, epoch)
    n_total = len(ids)
    # the whole sentences around [qa, qb): the neighbours of its first and last words are read there
    s0 = int(numpy.searchsorted(starts, qa, side="right")) - 1
    s1 = int(numpy.searchsorted(starts, qb, side="left"))
    q = numpy.arange(starts[s0], starts[s1], dtype=numpy.int64)  # corpus positions
    sent = numpy.repeat(numpy.arange(s0, s1), numpy.diff(starts[s0:s1 + 1]))
    words = ids[q]
    keep = (draws(key, q, 0) & _M32) < model.keep[words]
    q, sent, words = q[keep], sent[keep], words[keep]
    n = len(q)
    mine = (q >= qa) & (q < qb)  # the words this call trains
    if not mine.any():
        return 0
    reduced = w_max - ((draws(key, q, 1) >> numpy.uint64(32)) % numpy.uint64(w_max)).astype(numpy.int64)
    alpha = (cfg.start_alpha - (cfg.start_alpha - cfg.start_alpha * cfg.min_alpha_ratio)
             * (float(epoch) * n_total + q.astype(numpy.float64)) / run_words).astype(numpy.float32)
    # neighbours: offsets −W..W (0 excluded) within the reduced window and the same sentence
    offsets = numpy.array([d for d in range(-w_max, w_max + 1) if d != 0], dtype=numpy.int64)
    j = numpy.arange(n)[:, None] + offsets[None, :]  # (n, 2W)
    inside = (j >= 0) & (j < n)
    jc = numpy.clip(j, 0, n - 1)
    valid = inside & (numpy.abs(offsets)[None, :] <= reduced[:, None]) & (sent[jc] == sent[:, None]) & mine[:, None]
    if cfg.sg:  # one example per (word, neighbour), ordered by word then offset
        rows, cols = numpy.nonzero(valid)
        inputs = words[jc[rows, cols]][:, None]
        in_mask = numpy.ones_like(inputs, dtype=bool)
        center, slot = rows, offsets[cols] + w_max
    else:  # one example per word that has a neighbour
        center = numpy.nonzero(valid.any(axis=1))[0]
        inputs, in_mask = words[jc[center]], valid[center]
        slot = numpy.zeros(len(center), dtype=numpy.int64)
    targets, labels, t_mask = _targets(model, key, q[center], words[center], slot)
    for b0 in range(0, len(center), batch):
        sl = slice(b0, b0 + batch)
        with numpy.errstate(over="ignore", invalid="ignore"):  # a diverging run: train() reports it once
                _step(model, inputs[sl], in_mask[sl], {k: v[sl] for k, v in targets.items()},
                  {k: v[sl] for k, v in labels.items()}, {k: v[sl] for k, v in t_mask.items()}, alpha[center[sl]], table)
    return int(mine.sum())


def _targets(model: Word2Vec, key: int, pos: numpy.ndarray, word: numpy.ndarray, slot: numpy.ndarray) \
        -> tuple[dict[str, numpy.ndarray], dict[str, numpy.ndarray], dict[str, numpy.ndarray]]:
    """For each example: the HS inner nodes and labels, and the NS targets (w, then the K draws)
    with labels; masks mark the entries that take part (a code's length; a draw equal to w)."""
    cfg = model.config
    targets, labels, mask = {}, {}, {}
    if cfg.hs:
        length = model.code_len[word].astype(numpy.int64)
        targets["hs"] = model.points[word].astype(numpy.int64)
        labels["hs"] = numpy.float32(1) - model.codes[word].astype(numpy.float32)
        mask["hs"] = numpy.arange(MAX_CODE)[None, :] < length[:, None]
    if cfg.negative:
        k = cfg.negative
        r = draws(key, pos[:, None], numpy.uint64(2) + slot[:, None].astype(numpy.uint64) * numpy.uint64(k)
                  + numpy.arange(k, dtype=numpy.uint64)[None, :])
        column = ((r >> numpy.uint64(32)) * numpy.uint64(len(model))) >> numpy.uint64(32)
        neg = numpy.where((r & _M32) < model.alias_keep[column], column, model.alias[column]).astype(numpy.int64)
        targets["ns"] = numpy.concatenate([word[:, None], neg], axis=1)
        labels["ns"] = numpy.zeros(targets["ns"].shape, dtype=numpy.float32)
        labels["ns"][:, 0] = 1
        mask["ns"] = numpy.concatenate([numpy.ones((len(word), 1), bool), neg != word[:, None]], axis=1)
    return targets, labels, mask


def _step(model: Word2Vec, inputs: numpy.ndarray, in_mask: numpy.ndarray, targets: dict[str, numpy.ndarray],
          labels: dict[str, numpy.ndarray], t_mask: dict[str, numpy.ndarray], alpha: numpy.ndarray,
          table: numpy.ndarray) -> None:
    """One batch of examples (B of them): inputs (B, C) word ids with in_mask (B, C), targets per
    output layer (B, T) with labels and masks, α (B,)."""
    cfg = model.config
    syn0 = model.syn0
    rows = syn0[inputs] * in_mask[:, :, None]  # (B, C, D)
    l1 = rows.sum(axis=1, dtype=numpy.float32)
    if not cfg.sg and cfg.cbow_mean:
        l1 *= (numpy.float32(1) / in_mask.sum(axis=1).astype(numpy.float32))[:, None]
    neu1e = numpy.zeros_like(l1)
    for kind, out in (("hs", model.syn1), ("ns", model.syn1neg)):
        if kind not in targets:
            continue
        t, m = targets[kind], t_mask[kind]
        vt = out[t]  # (B, T, D)
        f = numpy.einsum("bd,btd->bt", l1, vt)
        if kind == "hs":
            m = m & (f > -MAX_EXP) & (f < MAX_EXP)  # nodes beyond ±6 are skipped
            s = _sigmoid(table, f)
        else:
            # as the kernel: 1 above 6, the table within [−6, 6], 0 below −6 and for NaN (a diverged run)
            s = numpy.where(f > MAX_EXP, numpy.float32(1), numpy.where(f >= -MAX_EXP, _sigmoid(table, f), numpy.float32(0)))
        g = ((labels[kind] - s) * alpha[:, None] * m).astype(numpy.float32)  # (B, T)
        neu1e += numpy.einsum("bt,btd->bd", g, vt)
        numpy.add.at(out, t[m], (g[:, :, None] * l1[:, None, :])[m])
    numpy.add.at(syn0, inputs[in_mask], numpy.broadcast_to(neu1e[:, None, :], rows.shape)[in_mask])
