"""word2vec against gensim: training speed and the quality of the vectors, same corpus, same settings.

Corpus: ``../shared/data/enwiki-sample.txt`` (469k tokens, one article a line, cut into sentences
of at most 10,000 words as gensim's ``LineSentence``), and tiny-shakespeare's words (speed only: its
vocabulary answers few analogy questions). Settings (the issue's): vectors of 100, window 5,
negative sampling with 5 negatives, subsampling 1e-4, 5 epochs, min-count 5, 2 threads/workers;
skip-gram with α 0.025 and CBOW with α 0.05 (the C tool's defaults for each).

Speed: corpus words (every token read, in the vocabulary or not, as gensim counts them) × epochs
per second of training: ``Word2Vec.train`` against gensim's ``train(corpus_file=...)`` (its fastest
path: no Python iterator), vocabulary building excluded on both sides.

Quality (enwiki only), of gensim's model trained from ``LineSentence`` (see ``theirs`` for why not
the ``corpus_file`` one, whose scores are in the notes): accuracy on the analogy questions
(``questions-words.txt``, the 30,000 most frequent words, the C tool's compute-accuracy rules;
coverage = questions whose four words are in those 30,000) and Spearman ρ on WordSim-353, each
side evaluated by its own code (which the tests hold equal on the same vectors). Each repeat
uses another seed; the target compares the means.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO_ROOT, Config, Metric, Target, interleave, metrics_from

NAME = "word2vec"
DATA = REPO_ROOT.parent / "shared" / "data"
ENWIKI, SHAKESPEARE = DATA / "enwiki-sample.txt", DATA / "tinyshakespeare.txt"
QUESTIONS, WORDSIM = DATA / "questions-words.txt", DATA / "wordsim353.tsv"
SETTINGS = {"vector_size": 100, "window": 5, "negative": 5, "sample": 1e-4, "epochs": 5, "min_count": 5, "threads": 2}
ALPHA = {"skipgram": 0.025, "cbow": 0.05}
RESTRICT = 30000


def ours(path: Path, model: str, seed: int, quality: bool) -> dict[str, float]:
    """dlia: read the vocabulary and the corpus (untimed), train (timed), evaluate."""
    from dlia.models.word2vec import Word2Vec, Word2VecConfig
    from dlia.text import WordVocab, count_words, encode_corpus

    counts = count_words(path)
    vocab = WordVocab.build(counts.counts, min_count=SETTINGS["min_count"])
    corpus = encode_corpus(path, vocab)
    cfg = Word2VecConfig(model=model, alpha=ALPHA[model], seed=seed + 1, **SETTINGS)
    m = Word2Vec(vocab.words, vocab.counts, cfg)
    t0 = time.perf_counter()
    m.train(corpus)
    seconds = time.perf_counter() - t0
    out = {"train words/s": corpus.raw_tokens * cfg.epochs / seconds, "train s": seconds}
    if quality:
        wv = m.wv
        analogies = wv.evaluate_analogies(QUESTIONS, restrict_vocab=RESTRICT)
        out.update({"analogy accuracy": 100 * analogies.accuracy,
                    "analogy coverage": 100 * analogies.seen / analogies.total,
                    "wordsim353 rho": 100 * wv.evaluate_pairs(WORDSIM).spearman})
    return out


def _gensim(model: str, seed: int) -> Any:
    from gensim.models import Word2Vec

    return Word2Vec(vector_size=SETTINGS["vector_size"], window=SETTINGS["window"], negative=SETTINGS["negative"],
                    sample=SETTINGS["sample"], min_count=SETTINGS["min_count"], workers=SETTINGS["threads"],
                    sg=int(model == "skipgram"), alpha=ALPHA[model], seed=seed + 1, hs=0)


def _gensim_quality(m: Any, prefix: str = "") -> dict[str, float]:
    score, sections = m.wv.evaluate_word_analogies(str(QUESTIONS), restrict_vocab=RESTRICT)
    total = next(s for s in sections if s["section"] == "Total accuracy")
    seen = len(total["correct"]) + len(total["incorrect"])
    questions = sum(1 for line in QUESTIONS.read_text().splitlines() if line and not line.startswith(":"))
    return {f"{prefix}analogy accuracy": 100 * score, f"{prefix}analogy coverage": 100 * seen / questions,
            f"{prefix}wordsim353 rho": 100 * float(m.wv.evaluate_word_pairs(str(WORDSIM))[1][0])}


def theirs(path: Path, model: str, seed: int, quality: bool) -> dict[str, float]:
    """gensim 4. Speed: ``build_vocab(corpus_file=...)`` (untimed), ``train(corpus_file=...)`` (timed),
    its fastest path. Quality: a second model trained from ``LineSentence`` (gensim's usual API), whose
    learning rate falls as the settings say; in ``corpus_file`` mode each of the N workers computes
    the epoch's progress from its own words only, so α falls N times slower than the settings ask
    (word2vec_corpusfile.pyx, ``get_next_alpha``): that model's scores are recorded too, as notes."""
    from gensim.models.word2vec import LineSentence

    m = _gensim(model, seed)
    m.build_vocab(corpus_file=str(path))
    t0 = time.perf_counter()
    m.train(corpus_file=str(path), total_words=m.corpus_total_words, epochs=SETTINGS["epochs"])
    seconds = time.perf_counter() - t0
    out = {"train words/s": m.corpus_total_words * SETTINGS["epochs"] / seconds, "train s": seconds}
    if quality:
        out.update(_gensim_quality(m, "corpus_file "))
        sentences = LineSentence(str(path))
        it = _gensim(model, seed)
        it.build_vocab(sentences)
        t0 = time.perf_counter()
        it.train(sentences, total_examples=it.corpus_count, epochs=SETTINGS["epochs"])
        out["LineSentence train words/s"] = it.corpus_total_words * SETTINGS["epochs"] / (time.perf_counter() - t0)
        out.update(_gensim_quality(it))
    return out


def run(cfg: Config) -> list[Metric]:
    rows: list[Metric] = []
    repeats = cfg.repeats
    for corpus, path, quality in (("enwiki", ENWIKI, True), ("shakespeare", SHAKESPEARE, False)):
        if not path.is_file():
            continue
        for model in ("skipgram", "cbow"):
            def a(r: int, model: str = model, path: Path = path, quality: bool = quality) -> dict[str, Any]:
                return ours(path, model, r, quality)

            def b(r: int, model: str = model, path: Path = path, quality: bool = quality) -> dict[str, Any]:
                return theirs(path, model, r, quality)

            mine, peer = interleave(a, b, repeats, cfg.settle)
            spec = [("train words/s", "words/s", True, Target("ratio", ">=", 1.0))]
            if quality:
                spec += [("analogy accuracy", "%", True, Target("difference", ">=", -1.0)),
                         ("analogy coverage", "%", True, None),
                         ("wordsim353 rho", "x100", True, Target("difference", ">=", -1.0))]
            for m in metrics_from(NAME, mine, peer, spec, peer="gensim"):
                m.name = f"{corpus} {model} {m.name}"
                m.notes = {**SETTINGS, "alpha": ALPHA[model], "model": model, "corpus": path.name,
                           "seeds": list(range(1, repeats + 1)), "restrict_vocab": RESTRICT,
                           "train_seconds_dlia": [x["train s"] for x in mine],
                           "train_seconds_gensim_corpus_file": [x["train s"] for x in peer]}
                if quality:
                    m.notes["gensim_quality_from"] = "LineSentence (speed: corpus_file)"
                    m.notes["gensim_LineSentence_words_per_s"] = [x["LineSentence train words/s"] for x in peer]
                    for key in ("analogy accuracy", "wordsim353 rho"):
                        m.notes[f"gensim_corpus_file_{key.replace(' ', '_')}"] = [x[f"corpus_file {key}"] for x in peer]
                rows.append(m)
    return rows
