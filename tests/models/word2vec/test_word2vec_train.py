"""word2vec training: the tables, the draws, one step against autodiff, the compiled kernel against
the NumPy reference, reproducibility and resume, and a planted-structure corpus that must be learnt."""

from __future__ import annotations

import heapq
from types import SimpleNamespace

import numpy
import pytest

import dlia
from dlia.backend import w2v as kernel
from dlia.models.word2vec.train import (
    MAX_CODE,
    Word2Vec,
    Word2VecConfig,
    Word2VecError,
    _targets,
    alias_probabilities,
    alias_table,
    draws,
    epoch_key,
    exp_table,
    huffman,
    keep_thresholds,
    mix,
    numpy_train,
)

needs_kernel = pytest.mark.skipif(not kernel.available, reason=f"compiled word2vec kernel: {kernel.reason()}")


def corpus(ids: list[int] | numpy.ndarray, starts: list[int]) -> SimpleNamespace:
    return SimpleNamespace(ids=numpy.asarray(ids, numpy.int32), starts=numpy.asarray(starts, numpy.int64))


def random_corpus(v: int = 30, n: int = 400, seed: int = 0) -> tuple[numpy.ndarray, SimpleNamespace]:
    rng = numpy.random.default_rng(seed)
    counts = numpy.sort(rng.integers(5, 200, v))[::-1]
    ids = rng.choice(v, size=n, p=counts / counts.sum())
    cuts = sorted(set(rng.integers(1, n, 4).tolist()))
    return counts, corpus(ids, [0, *cuts, n])


def words(v: int) -> list[str]:
    return [f"w{i}" for i in range(v)]


# -- tables -------------------------------------------------------------------------------------------


def test_mix_is_splitmix64() -> None:
    # splitmix64 seeded with 0: its first outputs are mix(0), mix(γ), mix(2γ) with γ = 0x9E3779B97F4A7C15
    assert int(mix(0)) == 0xE220A8397B1DCDAF
    assert int(mix(0x9E3779B97F4A7C15)) == 0x6E789E6AA1B965F4
    x = numpy.random.default_rng(1).integers(0, 2**63, 1000, dtype=numpy.int64).astype(numpy.uint64) * numpy.uint64(3)
    if kernel.available:
        numpy.testing.assert_array_equal(mix(x), kernel.mix(x))


def test_exp_table_is_the_c_tools() -> None:
    t = exp_table()
    assert t.dtype == numpy.float32 and t.shape == (1001,)
    assert t[0] == pytest.approx(1 / (1 + numpy.exp(6)), rel=1e-6)
    assert t[500] == pytest.approx(0.5)
    assert t[1000] == pytest.approx(1 / (1 + numpy.exp(-6)), rel=1e-6)
    assert numpy.all(numpy.diff(t) > 0)


def test_keep_thresholds_follow_the_c_tools_formula() -> None:
    counts = numpy.array([1000, 100, 10, 1])
    keep = keep_thresholds(counts, 1e-2)
    tt = 1e-2 * 1111
    for c, k in zip(counts, keep):
        p = min(1.0, (numpy.sqrt(c / tt) + 1) * tt / c)
        assert int(k) == round(p * 2**32)
    assert int(keep[-1]) == 2**32  # rare words are always kept
    assert (keep_thresholds(counts, 0) == 2**32).all()


def test_alias_table_draws_the_unigram_075_distribution() -> None:
    counts = numpy.array([500, 300, 120, 50, 20, 7, 2, 1])
    keep, alias = alias_table(counts)
    p = counts**0.75 / (counts**0.75).sum()
    numpy.testing.assert_allclose(alias_probabilities(keep, alias), p, rtol=0, atol=1e-9)
    # and the draws the kernel makes from it, counted over many positions
    r = draws(epoch_key(7, 0), numpy.arange(400_000), 2)
    col = ((r >> numpy.uint64(32)) * numpy.uint64(len(counts))) >> numpy.uint64(32)
    drawn = numpy.where((r & numpy.uint64(0xFFFFFFFF)) < keep[col], col, alias[col])
    freq = numpy.bincount(drawn.astype(numpy.int64), minlength=len(counts)) / len(drawn)
    numpy.testing.assert_allclose(freq, p, atol=3e-3)


def test_huffman_codes_of_a_small_vocabulary() -> None:
    # counts 5, 3, 2, 1: merge 1+2 → node 0 (3), then 3 (word 1) + node 0... ties: (3, word 1) < (3, node 4)
    codes, points, length = huffman(numpy.array([5, 3, 2, 1]))
    # node ids: leaves 0..3, inner nodes 4 (=syn1 row 0: 1+2), 5 (row 1: word1 + row 0), 6 (row 2, root: word0 + row1)
    assert length.tolist() == [1, 2, 3, 3]
    assert codes[0, :1].tolist() == [0] and points[0, :1].tolist() == [2]
    assert codes[1, :2].tolist() == [1, 0] and points[1, :2].tolist() == [2, 1]
    assert codes[2, :3].tolist() == [1, 1, 1] and points[2, :3].tolist() == [2, 1, 0]
    assert codes[3, :3].tolist() == [1, 1, 0] and points[3, :3].tolist() == [2, 1, 0]


def test_huffman_is_optimal_and_prefix_free() -> None:
    counts = numpy.random.default_rng(3).integers(1, 1000, 200)
    codes, points, length = huffman(counts)
    # the cost Σ count·length equals that of any Huffman tree (computed by merging costs)
    heap = list(map(int, counts))
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        cost += a + b
        heapq.heappush(heap, a + b)
    assert int((counts * length).sum()) == cost
    strings = ["".join(map(str, codes[w, :length[w]])) for w in range(len(counts))]
    assert len(set(strings)) == len(strings)
    assert not any(a != b and b.startswith(a) for a in strings for b in strings)
    assert (points[:, 0][length > 0] == len(counts) - 2).all()  # every path starts at the root
    assert length.max() <= MAX_CODE


def test_config_is_checked() -> None:
    with pytest.raises(Word2VecError, match="hierarchical softmax"):
        Word2VecConfig(negative=0, hs=False)
    with pytest.raises(Word2VecError, match="window"):
        Word2VecConfig(window=0)
    with pytest.raises(Word2VecError, match="model"):
        Word2VecConfig(model="glove")
    assert Word2VecConfig().start_alpha == 0.05 and Word2VecConfig(model="skipgram").start_alpha == 0.025
    assert Word2VecConfig.from_dict(Word2VecConfig(window=3).to_dict()) == Word2VecConfig(window=3)


# -- one step against autodiff -------------------------------------------------------------------------


def _sgd_step_by_autodiff(l1_rows: numpy.ndarray, mean: bool, out: numpy.ndarray, targets: numpy.ndarray,
                          labels: numpy.ndarray, alpha: float) -> tuple[numpy.ndarray, numpy.ndarray]:
    """The update word2vec makes, from dlia's autodiff of the example's loss (exact σ):
    L = −Σ_t [label_t·log σ(f_t) + (1 − label_t)·log σ(−f_t)], f_t = l1·v_t; returns −α·∂L/∂rows, −α·∂L/∂v."""
    rows = dlia.tensor(l1_rows.astype(numpy.float64), requires_grad=True)
    v = dlia.tensor(out[targets].astype(numpy.float64), requires_grad=True)
    l1 = rows.mean(axis=0) if mean else rows.sum(axis=0)
    f = v @ l1
    y = dlia.tensor(labels.astype(numpy.float64))
    loss = -(y * dlia.log(dlia.sigmoid(f)) + (1 - y) * dlia.log(dlia.sigmoid(-f))).sum()
    loss.backward()
    # CBOW gives every neighbour the gradient of l1 itself (not divided by their number), as the C tool
    d_rows = rows.grad.numpy() * (len(l1_rows) if mean else 1)
    return -alpha * d_rows, -alpha * v.grad.numpy()


@pytest.mark.parametrize("model", ["skipgram", "cbow"])
@pytest.mark.parametrize("layer", ["ns", "hs"])
def test_one_step_matches_autodiff(model: str, layer: str) -> None:
    """A corpus of one sentence of three words and window 1 (so no reduced window) and no subsampling:
    the first example's update equals −α·∇ of its loss (the σ table costs ~1e-3 relative)."""
    v, d = 6, 5
    counts = numpy.array([9, 7, 5, 4, 3, 2])
    cfg = Word2VecConfig(model=model, vector_size=d, window=1, negative=4 if layer == "ns" else 0, hs=layer == "hs",
                         sample=0, epochs=1, min_count=1, threads=1, seed=5)
    m = Word2Vec(words(v), counts, cfg)
    rng = numpy.random.default_rng(0)
    out = m.syn1neg if layer == "ns" else m.syn1
    out[...] = rng.normal(0, 0.5, out.shape).astype(numpy.float32)  # zeros would make a trivial first step
    m.syn0[...] = rng.normal(0, 0.5, m.syn0.shape).astype(numpy.float32)
    before0, before1 = m.syn0.copy(), out.copy()
    ids = numpy.array([1, 3, 2], numpy.int32)
    # the first example: skip-gram: word 1 at position 0 predicted from its neighbour 3 (offset +1, slot 2);
    # CBOW: word 1 from the mean of its neighbours (only 3)
    key = epoch_key(cfg.seed, 0)
    slot = numpy.array([2 if model == "skipgram" else 0])
    targets, labels, mask = _targets(m, key, numpy.array([0]), numpy.array([1]), slot)
    t, y = targets[layer][0][mask[layer][0]], labels[layer][0][mask[layer][0]]
    alpha = numpy.float32(cfg.start_alpha)  # position 0: α₀
    d_rows, d_v = _sgd_step_by_autodiff(before0[[3]], model == "cbow", before1, t, y, float(alpha))
    # run exactly that one example (the first of the sentence)
    one = Word2Vec(words(v), counts, cfg)
    one.syn0[...], (one.syn1neg if layer == "ns" else one.syn1)[...] = before0, before1
    _first_example_only(one, ids)
    got0, got1 = one.syn0 - before0, (one.syn1neg if layer == "ns" else one.syn1) - before1
    # the σ table is within 0.0031 of σ (a step of 12/1000 in f, σ' ≤ 1/4): each target's g within 0.0031·α
    slack = 0.0031 * alpha
    l1 = before0[3].astype(numpy.float64)
    assert (numpy.abs(got0[3] - d_rows[0]) <= slack * numpy.abs(before1[t]).sum(axis=0) + 1e-7).all()
    expected1 = numpy.zeros_like(before1, dtype=numpy.float64)
    numpy.add.at(expected1, t, d_v)
    bound = numpy.zeros_like(expected1)
    numpy.add.at(bound, t, numpy.broadcast_to(slack * numpy.abs(l1), d_v.shape))
    assert (numpy.abs(got1 - expected1) <= bound + 1e-7).all()
    assert numpy.abs(got0[3]).max() > 10 * slack  # the step is far larger than the slack
    assert numpy.abs(got0[3] - d_rows[0]).max() < 0.02 * numpy.abs(d_rows[0]).max()
    untouched = numpy.ones(v, bool)
    untouched[3] = False
    assert (got0[untouched] == 0).all()


def _first_example_only(model: Word2Vec, ids: numpy.ndarray) -> None:
    """Train on the first example of the sentence ``ids`` only (the NumPy reference's own example list,
    cut after one)."""
    import dlia.models.word2vec.train as train

    calls = []
    original = train._step

    def first(*args: object) -> None:
        if not calls:
            original(*args)
        calls.append(1)

    train._step = first
    try:
        numpy_train(model, ids, numpy.array([0, len(ids)]), 0, 0, len(ids), run_words=len(ids), batch=1)
    finally:
        train._step = original
    assert len(calls) > 1


# -- the kernel against the reference --------------------------------------------------------------------


@needs_kernel
@pytest.mark.parametrize("model", ["skipgram", "cbow"])
@pytest.mark.parametrize("negative,hs", [(5, False), (0, True), (3, True)])
def test_kernel_equals_numpy_reference(model: str, negative: int, hs: bool) -> None:
    counts, c = random_corpus()
    cfg = Word2VecConfig(model=model, vector_size=8, window=3, negative=negative, hs=hs, sample=1e-2, epochs=2,
                         min_count=1, threads=1, seed=11)
    a, b = Word2Vec(words(len(counts)), counts, cfg), Word2Vec(words(len(counts)), counts, cfg)
    done = a.train(c, use_kernel=True)
    kept = sum(numpy_train(b, c.ids, c.starts, e, 0, len(c.ids), run_words=len(c.ids) * 2, batch=1) for e in range(2))
    assert done["kept"] == kept and 0 < kept < 2 * len(c.ids)  # subsampling dropped some words, the same ones
    for x, y in ((a.syn0, b.syn0), (a.syn1neg, b.syn1neg), (a.syn1, b.syn1)):
        if x is not None:
            numpy.testing.assert_allclose(x, y, rtol=0, atol=1e-6)
    assert numpy.abs(a.syn0 - Word2Vec(words(len(counts)), counts, cfg).syn0).max() > 1e-3  # it trained


def test_numpy_fallback_trains_without_the_kernel() -> None:
    counts, c = random_corpus()
    cfg = Word2VecConfig(model="skipgram", vector_size=8, window=3, sample=0, epochs=1, min_count=1, seed=2)
    with kernel.use(False):
        assert not kernel.available
        m = Word2Vec(words(len(counts)), counts, cfg)
        m.train(c)
    assert numpy.isfinite(m.syn0).all() and numpy.abs(m.syn1neg).max() > 0


# -- reproducibility and resume ------------------------------------------------------------------------


@needs_kernel
def test_same_seed_same_vectors_and_resume_is_bit_identical() -> None:
    counts, c = random_corpus(v=40, n=20000, seed=4)
    cfg = Word2VecConfig(model="skipgram", vector_size=16, window=4, sample=1e-2, epochs=3, min_count=1, threads=1,
                         chunk_words=200)
    a, b = Word2Vec(words(40), counts, cfg), Word2Vec(words(40), counts, cfg)
    a.train(c)
    b.train(c)
    assert (a.syn0 == b.syn0).all() and (a.syn1neg == b.syn1neg).all()
    other = Word2Vec(words(40), counts, Word2VecConfig(**{**cfg.to_dict(), "seed": 2}))
    other.train(c)
    assert not (other.syn0 == a.syn0).all()
    # stopped at once (after the chunk being trained), then continued (from a copy, as a checkpoint would)
    r = Word2Vec(words(40), counts, cfg)
    r.train(c, until_epoch=1)
    seen: list[int] = []
    r.train(c, progress=lambda at, total, alpha: seen.append(at), stop=lambda: seen[-1] > seen[0], poll=0.0)
    per_epoch = -(-len(c.ids) // cfg.chunk_words)
    assert per_epoch < r.chunks_done < 3 * per_epoch
    assert r.epoch_of(len(c.ids)) == pytest.approx(r.chunks_done / per_epoch, abs=0.2)
    saved = {k: t.numpy().copy() for k, t in r.state_dict().items()}
    resumed = Word2Vec(words(40), counts, cfg)
    resumed.load_arrays(saved)
    resumed.chunks_done = r.chunks_done
    resumed.train(c)
    assert (resumed.syn0 == a.syn0).all() and (resumed.syn1neg == a.syn1neg).all()


def test_chunks_cut_inside_sentences_change_nothing() -> None:
    """The NumPy reference trained chunk by chunk, with chunk edges inside sentences, equals one
    pass over the whole epoch (every word reads its neighbours from its whole sentence)."""
    counts, c = random_corpus(v=20, n=300, seed=6)
    cfg = Word2VecConfig(model="skipgram", vector_size=6, window=3, sample=1e-2, epochs=1, min_count=1, seed=1)
    a, b = Word2Vec(words(20), counts, cfg), Word2Vec(words(20), counts, cfg)
    numpy_train(a, c.ids, c.starts, 0, 0, 300, run_words=300, batch=1)
    for qa in range(0, 300, 37):
        numpy_train(b, c.ids, c.starts, 0, qa, min(qa + 37, 300), run_words=300, batch=1)
    assert (a.syn0 == b.syn0).all() and (a.syn1neg == b.syn1neg).all()


@needs_kernel
def test_two_threads_train_the_same_model_up_to_races() -> None:
    counts, c = random_corpus(v=40, n=20000, seed=5)
    base = dict(model="cbow", vector_size=16, window=4, sample=1e-3, epochs=2, min_count=1, chunk_words=500)
    one = Word2Vec(words(40), counts, Word2VecConfig(**base, threads=1))
    two = Word2Vec(words(40), counts, Word2VecConfig(**base, threads=2))
    one.train(c)
    two.train(c)
    # two threads train the chunks in another order (and race): not the same numbers, the same geometry
    def cosines(x: numpy.ndarray) -> numpy.ndarray:
        u = x / numpy.linalg.norm(x, axis=1, keepdims=True)
        return (u @ u.T)[numpy.triu_indices(len(x), 1)]

    assert numpy.corrcoef(cosines(one.syn0), cosines(two.syn0))[0, 1] > 0.9


# -- planted structure ----------------------------------------------------------------------------------


def planted_corpus(seed: int = 0, sentences: int = 4000) -> tuple[list[str], numpy.ndarray, SimpleNamespace, list]:
    """Text with a planted relation: each of 8 places k has its own topic words, and its country
    and its capital each appear among them, next to "country" words or "city" words:

        "<topic k> the country <country k> <topic k>"   "<topic k> the city <capital k> <topic k>"

    (plus random fillers). A country's contexts are k's topic and "country", its capital's k's topic
    and "city", so capital_k − country_k is the same offset for every k: word2vec must find it.
    """
    rng = numpy.random.default_rng(seed)
    countries = ["france", "germany", "italy", "spain", "japan", "china", "egypt", "peru"]
    capitals = ["paris", "berlin", "rome", "madrid", "tokyo", "beijing", "cairo", "lima"]
    topics = [[f"t{k}_{j}" for j in range(4)] for k in range(len(countries))]
    fillers = [f"f{i}" for i in range(30)]
    sents = []
    for _ in range(sentences):
        k = rng.integers(len(countries))
        city = rng.random() < 0.5
        marker = ["the", "city" if city else "country", "of" if rng.random() < 0.5 else "named"]
        word = capitals[k] if city else countries[k]
        s = [*rng.choice(topics[k], 2), *marker, word, *rng.choice(topics[k], 2)]
        s = list(rng.choice(fillers, rng.integers(0, 3))) + s + list(rng.choice(fillers, rng.integers(0, 3)))
        sents.append([str(w) for w in s])
    vocab: dict[str, int] = {}
    for s in sents:
        for w in s:
            vocab[w] = vocab.get(w, 0) + 1
    order = sorted(vocab, key=lambda w: -vocab[w])
    index = {w: i for i, w in enumerate(order)}
    ids = numpy.array([index[w] for s in sents for w in s], numpy.int32)
    starts = numpy.cumsum([0] + [len(s) for s in sents])
    return order, numpy.array([vocab[w] for w in order]), corpus(ids, starts), list(zip(countries, capitals))


def _analogy(vectors: numpy.ndarray, index: dict[str, int], a: str, b: str, c: str) -> int:
    unit = vectors / numpy.linalg.norm(vectors, axis=1, keepdims=True)
    q = unit[index[b]] - unit[index[a]] + unit[index[c]]
    scores = unit @ q
    scores[[index[a], index[b], index[c]]] = -numpy.inf
    return int(numpy.argmax(scores))


@pytest.mark.parametrize("model,hs,compiled", [("skipgram", False, True), ("cbow", False, True), ("skipgram", True, True),
                                               ("cbow", True, True), ("cbow", False, False)])
def test_planted_analogies_are_solved(model: str, hs: bool, compiled: bool) -> None:
    if compiled and not kernel.available:
        pytest.skip(f"compiled word2vec kernel: {kernel.reason()}")
    order, counts, c, pairs = planted_corpus(sentences=4000 if compiled else 1500)  # NumPy: a few seconds
    index = {w: i for i, w in enumerate(order)}
    cfg = Word2VecConfig(model=model, vector_size=24, window=4, negative=0 if hs else 5, hs=hs, sample=0, epochs=10,
                         min_count=1, threads=1, seed=3)
    m = Word2Vec(order, counts, cfg)
    m.train(c, use_kernel=compiled)
    right = total = 0
    for a, b in pairs:
        for c2, d in pairs:
            if a != c2:
                total += 1
                right += _analogy(m.syn0, index, a, b, c2) == index[d]
    assert right / total >= 0.8, f"{right}/{total} country→capital analogies"


# -- what the kernel must never see -------------------------------------------------------------------


@pytest.mark.parametrize("field,value", [("window", 2**32 + 1), ("negative", 2**32), ("epochs", 10**19),
                                         ("vector_size", 0), ("window", 2.5), ("cbow_mean", "no"), ("seed", 1.5),
                                         ("chunk_words", 10**15), ("hs", 1), ("sample", float("nan")),
                                         ("alpha", float("inf")), ("threads", True)])
def test_settings_that_would_wrap_or_mislead_are_refused(field: str, value: object) -> None:
    with pytest.raises(Word2VecError, match=field.replace("_", "-")):
        Word2VecConfig(**{field: value})


def test_arrays_and_ids_are_checked_before_the_kernel() -> None:
    counts, c = random_corpus()
    cfg = Word2VecConfig(vector_size=8, min_count=1, epochs=1)
    m = Word2Vec(words(len(counts)), counts, cfg)
    m.syn0 = numpy.zeros((1, 8), numpy.float32)
    with pytest.raises(Word2VecError, match="syn0 must be"):
        m.train(c)
    m = Word2Vec(words(len(counts)), counts, cfg)
    m.syn0 = m.syn0.astype(numpy.float64)
    with pytest.raises(Word2VecError, match="float32"):
        m.train(c)
    m = Word2Vec(words(len(counts)), counts, cfg)
    wrapped = corpus(c.ids, c.starts)
    wrapped.ids = c.ids.astype(numpy.int64) + 2**32  # would wrap into range as int32
    with pytest.raises(Word2VecError, match="ids"):
        m.train(wrapped)
    for bad in (-3, len(c.ids)):  # chunks_done out of range (a tampered checkpoint)
        m = Word2Vec(words(len(counts)), counts, cfg)
        m.chunks_done = bad
        with pytest.raises(Word2VecError, match="chunks_done"):
            m.train(c)


@pytest.mark.parametrize("compiled", [True, False])
def test_a_diverging_run_is_one_error_not_a_crash(compiled: bool) -> None:
    if compiled and not kernel.available:
        pytest.skip(f"compiled word2vec kernel: {kernel.reason()}")
    counts, c = random_corpus(n=2000)
    m = Word2Vec(words(len(counts)), counts, Word2VecConfig(vector_size=20, min_count=1, epochs=3, alpha=1e30, sample=0))
    with pytest.raises(Word2VecError, match="diverged"):
        m.train(c, use_kernel=compiled)


@needs_kernel
def test_ctrl_c_stops_the_kernel_before_train_returns_and_the_run_resumes_exactly() -> None:
    import os
    import signal
    import threading

    counts, c = random_corpus(v=40, n=100_000, seed=8)
    cfg = Word2VecConfig(model="skipgram", vector_size=50, window=5, sample=0, epochs=12, min_count=1, threads=1,
                         chunk_words=2000)
    whole = Word2Vec(words(40), counts, cfg)
    whole.train(c)
    m = Word2Vec(words(40), counts, cfg)
    threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        m.train(c, poll=0.05)
    assert 0 < m.chunks_done < 12 * 50
    frozen = m.syn0.copy()
    import time

    time.sleep(0.2)
    assert (m.syn0 == frozen).all()  # the kernel had stopped when train returned
    resumed = Word2Vec(words(40), counts, cfg)
    resumed.load_arrays({k: t.numpy() for k, t in m.state_dict().items()})
    resumed.chunks_done = m.chunks_done
    resumed.train(c)
    assert (resumed.syn0 == whole.syn0).all() and (resumed.syn1neg == whole.syn1neg).all()
