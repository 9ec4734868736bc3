"""``dlia word2vec``: train word vectors on a text corpus (CBOW or skip-gram, as the C word2vec and
gensim), and query them: similar words, analogies, the analogy and similarity benchmarks, pictures."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlia.cli.common import (
    check_memory,
    check_output,
    keep_run_settings,
    non_negative_float,
    non_negative_int,
    path_name,
    picture,
    positive_float,
    positive_int,
)
from dlia.cli.errors import UserError
from dlia.cli.progress import Progress

#: what the commands read and write when no name is given
VECTORS = "vectors.bin"
#: the class name a word2vec checkpoint records (``dlia.models.word2vec.Word2Vec``)
MODEL_CLASS = "Word2Vec"






#: train flags that set a ``Word2VecConfig`` field: (flags, field, argparse type, help)
_CONFIG_FLAGS: list[tuple[tuple[str, ...], str, Any, str]] = [
    (("--model",), "model", None, "cbow or skipgram"),
    (("--size", "--vector-size"), "vector_size", positive_int, "length of the word vectors"),
    (("--window",), "window", positive_int, "largest distance of a neighbour (each word draws a reduced window)"),
    (("--negative",), "negative", non_negative_int, "negative samples per example (0: none, then --hs)"),
    (("--sample",), "sample", non_negative_float, "subsampling threshold for frequent words (0: off)"),
    (("--epochs", "--iter"), "epochs", positive_int, "passes over the corpus"),
    (("--min-count",), "min_count", positive_int, "drop words seen fewer times"),
    (("--max-vocab",), "max_vocab", positive_int, "keep only the most frequent words"),
    (("--alpha",), "alpha", positive_float, "starting learning rate (default 0.05 for cbow, 0.025 for skipgram)"),
    (("--threads",), "threads", positive_int, "training threads (Hogwild; one thread is deterministic)"),
]


def register(sub: argparse._SubParsersAction) -> None:
    from dlia.models.word2vec import Word2VecConfig

    p = sub.add_parser("word2vec", help="word vectors: train CBOW or skip-gram on a corpus, find similar words and analogies",
                       description="word2vec (Mikolov et al. 2013): train and query word vectors (docs/word2vec.md).")
    cmds = p.add_subparsers(dest="word2vec_command", metavar="ACTION", required=True)
    defaults = Word2VecConfig()

    t = cmds.add_parser("train", help="train word vectors on a UTF-8 text corpus (default: tiny-shakespeare's words)")
    t.add_argument("corpus", nargs="?", type=path_name, metavar="CORPUS",
                   help="UTF-8 text, words separated by white space, a sentence per line (default: tiny-shakespeare)")
    t.add_argument("-o", "--output", type=path_name, default=VECTORS,
                   help=f"the vectors (default {VECTORS}): the C tool's binary format, or text for .txt/.vec names")
    t.add_argument("--format", choices=("binary", "text"), help="the output's format (default: from its name)")
    for flags, name, kind, text in _CONFIG_FLAGS:
        default = getattr(defaults, name)
        t.add_argument(*flags, dest=name, type=kind, default=None, choices=("cbow", "skipgram") if name == "model" else None,
                       help=text + ("" if name == "alpha" else f" (default {default})"))
    t.add_argument("--hs", action="store_true", default=None,
                   help="hierarchical softmax (with --negative 0: the only output layer)")
    t.add_argument("--lowercase", action="store_true", default=None, help="lower-case the corpus")
    t.add_argument("--seed", type=int, default=None, help="random seed (default 1): same seed and --threads 1, same vectors")
    t.add_argument("--save-vocab", type=path_name, metavar="FILE", help="also write the vocabulary (word count per line)")
    t.add_argument("--checkpoint", type=path_name, metavar="FILE",
                   help="where the run's state is saved to resume it (default: OUTPUT.ckpt.npz); removed when training ends")
    t.add_argument("--checkpoint-every", type=positive_float, default=10.0, metavar="MINUTES",
                   help="minutes between checkpoints (default 10); Ctrl-C and --max-time also save one")
    t.add_argument("--resume", type=path_name, metavar="CKPT", help="continue an interrupted run from its checkpoint")
    t.add_argument("--max-time", type=positive_float, metavar="MINUTES", help="stop after this many minutes, with a checkpoint")
    t.set_defaults(run=train)

    def vectors_arg(q: argparse.ArgumentParser) -> None:
        q.add_argument("-v", "--vectors", type=path_name, default=VECTORS, help=f"word vectors file (default {VECTORS})")
        q.add_argument("--unicode-errors", choices=("strict", "replace", "ignore"), default="strict",
                       help="words whose bytes are not UTF-8 (as in the GoogleNews vectors): refuse, replace or drop them")
        q.add_argument("--limit", type=positive_int, help="read only the first (most frequent) N vectors")

    s = cmds.add_parser("similar", help="the words nearest to WORD (cosine similarity); --minus subtracts words")
    s.add_argument("words", nargs="+", metavar="WORD", help="one or more words (their mean is the query)")
    s.add_argument("--minus", nargs="+", default=[], metavar="WORD", help="words to subtract from the query")
    s.add_argument("--topn", type=positive_int, default=10, help="how many words to list (default 10)")
    s.add_argument("-o", "--output", type=picture, metavar="PNG", help="also draw the word and its neighbours")
    vectors_arg(s)
    s.set_defaults(run=similar)

    a = cmds.add_parser("analogy", help="A is to B as ? is to C: the words nearest to A − B + C (king man woman → queen)")
    a.add_argument("a", metavar="A")
    a.add_argument("b", metavar="B")
    a.add_argument("c", metavar="C")
    a.add_argument("--method", choices=("add", "mul"), default="add", help="3CosAdd (default) or 3CosMul (Levy & Goldberg)")
    a.add_argument("--topn", type=positive_int, default=5, help="how many answers to list (default 5)")
    vectors_arg(a)
    a.set_defaults(run=analogy)

    e = cmds.add_parser("eval", help="analogy accuracy (Mikolov's questions) and word-similarity correlation (WordSim-353)")
    e.add_argument("--questions", type=path_name, metavar="FILE",
                   help="analogy questions (default: questions-words.txt, shipped)")
    e.add_argument("--pairs", type=path_name, nargs="+", metavar="FILE",
                   help="word-pair similarity files (default: WordSim-353, shipped; SimLex-999's format is read too)")
    e.add_argument("--restrict-vocab", type=positive_int, default=30000,
                   help="answer among the N most frequent words, and skip questions outside them (default 30000)")
    e.add_argument("--method", choices=("add", "mul"), default="add", help="3CosAdd (default) or 3CosMul")
    vectors_arg(e)
    e.set_defaults(run=evaluate)

    pl = cmds.add_parser("plot", help="draw related word pairs projected to 2-D (PCA), or a word's neighbours")
    what = pl.add_mutually_exclusive_group(required=True)
    what.add_argument("--pairs", metavar="NAME_OR_FILE",
                      help="male-female, verb-tense, country-capital, or a file of word pairs (two words per line)")
    what.add_argument("--neighbours", "--neighbors", metavar="WORD", help="a word and its nearest neighbours")
    pl.add_argument("--topn", type=positive_int, default=12, help="neighbours to draw (default 12)")
    pl.add_argument("-o", "--output", type=picture, required=True, metavar="PNG", help="the picture to write")
    vectors_arg(pl)
    pl.set_defaults(run=plot)


# -- training -------------------------------------------------------------------------------------------


def _text_error(e: Exception) -> UserError:
    return UserError(str(e))


@contextlib.contextmanager
def _corpus_file(given: str | None) -> Iterator[tuple[Path, str]]:
    """(a path to read, the corpus's name): CORPUS, or tiny-shakespeare (the shipped copy, unpacked
    into a temporary file that is removed afterwards)."""
    if given is not None:
        yield Path(given), given
        return
    from dlia.cli.charrnn import shakespeare

    text = shakespeare()
    fd, name = tempfile.mkstemp(prefix="dlia-tinyshakespeare.", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        yield Path(name), "tiny-shakespeare"
    finally:
        os.unlink(name)


def _fingerprint(corpus: Any) -> dict[str, int]:
    """What identifies the corpus a run trained on (so a resume on another one is refused)."""
    return {"words": int(len(corpus.ids)), "sentences": int(len(corpus.starts) - 1),
            "crc32": zlib.crc32(memoryview(corpus.ids).cast("B")) ^ zlib.crc32(memoryview(corpus.starts).cast("B"))}


def _output_format(path: str, given: str | None) -> bool:
    """Whether the vectors are written in the binary format."""
    if given is not None:
        return given == "binary"
    return Path(path).suffix.lower() not in (".txt", ".vec", ".text")


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[Any, Any, dict[str, Any]]:
    """(config, vocabulary, checkpoint) of a word2vec checkpoint, everything checked before a model is
    built from it.

    Raises:
        UserError: a missing, corrupt or foreign checkpoint, one line.
    """
    from dlia.io import CheckpointError, load_checkpoint
    from dlia.io.checkpoint import expect_model_class, expect_shapes
    from dlia.models.word2vec import Word2VecConfig, Word2VecError
    from dlia.text import VocabError, WordVocab

    p = Path(path)
    if not p.exists():
        raise UserError(f"no such checkpoint: {p}")
    try:
        ckpt = load_checkpoint(p)
        expect_model_class(ckpt, MODEL_CLASS, "word2vec", "dlia word2vec train")
        try:
            config = Word2VecConfig.from_dict(ckpt.config)
            vocab = WordVocab(ckpt.vocab or [], ckpt.extra.get("counts", []))
        except (Word2VecError, VocabError, TypeError, ValueError) as e:
            raise CheckpointError(f"{p}: its settings are damaged ({e})") from None
        v, d = len(vocab), config.vector_size
        shapes = {"syn0": (v, d)}
        if config.negative:
            shapes["syn1neg"] = (v, d)
        if config.hs:
            shapes["syn1"] = (max(v - 1, 1), d)
        expect_shapes(ckpt, shapes, f"its {v}-word vocabulary and --size {d} ask")
        if not isinstance(ckpt.extra.get("chunks_done"), int) or not isinstance(ckpt.extra.get("corpus"), dict):
            raise CheckpointError(f"{p}: it does not say where the run stopped")
    except CheckpointError as e:
        raise UserError(str(e)) from None
    return config, vocab, {"ckpt": ckpt}


def _save_checkpoint(path: Path, model: Any, vocab: Any, fingerprint: dict[str, int], name: str) -> None:
    from dlia.io import save_checkpoint

    save_checkpoint(path, model=model, step=model.chunks_done, config=model.config.to_dict(), vocab=list(vocab.words),
                    extra={"counts": [int(c) for c in vocab.counts], "chunks_done": model.chunks_done,
                           "corpus": fingerprint, "corpus_name": name})


def train(args: argparse.Namespace) -> int:
    from dlia.models.word2vec import KeyedVectors, Word2Vec, Word2VecConfig, Word2VecError
    from dlia.text import TextError, VocabError, WordVocab, count_words, encode_corpus

    binary = _output_format(args.output, args.format)
    # a resumed run keeps saving into the checkpoint it resumed from (unless told otherwise)
    ckpt_path = Path(args.checkpoint or args.resume or f"{args.output}.ckpt.npz")
    inputs = [("CORPUS", args.corpus), ("--resume", args.resume)]
    check_output(args.output, "--output", inputs=inputs)
    check_output(ckpt_path, "--checkpoint", inputs=[("CORPUS", args.corpus), ("--output", args.output)])
    if args.resume and args.checkpoint and ckpt_path.exists() and not _same(ckpt_path, args.resume):
        raise UserError(f"--checkpoint {ckpt_path} holds another run's state; give a new name, or leave --checkpoint "
                        f"out to keep saving into {args.resume}")
    check_output(args.save_vocab, "--save-vocab", inputs=[*inputs, ("--output", args.output), ("--checkpoint", ckpt_path)])
    outputs = [("--output", args.output), ("--checkpoint", ckpt_path), ("--save-vocab", args.save_vocab)]
    for k, (flag, path) in enumerate(outputs):  # files not written yet: compared by name
        for other, there in outputs[k + 1:]:
            if path is not None and there is not None and os.path.abspath(path) == os.path.abspath(there):
                raise UserError(f"{flag} and {other} name the same file {path}; give each its own")
    given = {name: getattr(args, name) for _, name, _, _ in _CONFIG_FLAGS if getattr(args, name) is not None}
    for name in ("hs", "lowercase", "seed"):
        if getattr(args, name) is not None:
            given[name] = getattr(args, name)
    if args.resume:
        import re

        from dlia.io.atomic import remove_stale_temp_files

        config, vocab, saved = read_checkpoint(args.resume)
        remove_stale_temp_files(ckpt_path.parent, re.escape(ckpt_path.name))  # a save killed mid-write left one
        keep_run_settings(config, given)
    else:
        if ckpt_path.exists():  # never overwrite an interrupted run's state
            raise UserError(f"{ckpt_path} holds an interrupted run: continue it with --resume {ckpt_path}, "
                            f"or remove it to start afresh")
        try:
            config = Word2VecConfig(**given)
        except Word2VecError as e:
            raise UserError(_in_flags(str(e))) from None
    with _corpus_file(args.corpus) as (path, name):
        started = time.perf_counter()
        try:
            if not args.resume:
                bar = Progress(desc="counting words (bytes)")  # seen on a terminal only: cleared at the end

                def counting(done: int, total: int) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                try:
                    counted = count_words(path, lowercase=config.lowercase, progress=counting)
                finally:
                    bar.clear()
                vocab = WordVocab.build(counted.counts, min_count=config.min_count, max_vocab=config.max_vocab)
            # the corpus's ids take 4 bytes a word (at most one word per 2 bytes of text), the model
            # its matrices: checked before either is allocated
            check_memory(f"--size {config.vector_size} with {len(vocab):,} words",
                         4 * len(vocab) * config.vector_size * (1 + bool(config.negative) + bool(config.hs))
                         + 2 * _size_of(path, name), "use a smaller --size, --max-vocab or a higher --min-count")
            corpus = encode_corpus(path, vocab, lowercase=config.lowercase, max_sentence_length=config.max_sentence_length)
        except (TextError, VocabError) as e:
            raise _text_error(e) from None
        if len(corpus.ids) == 0:
            raise UserError(f"{name}: no word of the vocabulary is in it")
        fingerprint = _fingerprint(corpus)
        try:
            model = Word2Vec(vocab.words, vocab.counts, config)
        except Word2VecError as e:  # counts a resumed checkpoint damaged (all zero, say)
            raise UserError(f"{args.resume or name}: {e}") from None
        if args.resume:
            ckpt = saved["ckpt"]
            if ckpt.extra["corpus"] != fingerprint:
                raise UserError(f"{name} is not the corpus {args.resume} was trained on; give that corpus to --resume")
            model.load_arrays(ckpt.model_state)
            model.chunks_done = ckpt.extra["chunks_done"]
            total = -(-len(corpus.ids) // config.chunk_words) * config.epochs
            if not 0 <= model.chunks_done <= total:
                raise UserError(f"{args.resume}: its settings are damaged (it says {model.chunks_done:,} chunks are done "
                                f"of {total:,})")
        print(f"{name}: {corpus.raw_tokens:,} words, {len(vocab):,} distinct kept (min-count {config.min_count}), "
              f"{len(corpus.ids):,} in the vocabulary; {config.model}, vectors of {config.vector_size}, window "
              f"{config.window}, {'negative sampling ' + str(config.negative) if config.negative else ''}"
              f"{' + ' if config.negative and config.hs else ''}{'hierarchical softmax' if config.hs else ''}, "
              f"{config.epochs} epoch{'s' * (config.epochs != 1)}, {config.threads} thread{'s' * (config.threads != 1)}"
              f"{'' if _kernel_available() else ' (NumPy: the compiled kernel is not built, far slower)'}")
        done = _fit(model, corpus, vocab, ckpt_path, fingerprint, name, args)
    vectors = KeyedVectors(vocab.words, model.syn0, vocab.counts)
    vectors.save_word2vec_format(args.output, binary=binary)
    if args.save_vocab:
        vocab.save(args.save_vocab)
    if done:
        if ckpt_path.exists():
            ckpt_path.unlink()
        print(f"vectors of {len(vocab):,} words → {args.output} ({'binary' if binary else 'text'}; "
              f"{time.perf_counter() - started:.1f} s in all)")
    else:
        print(f"stopped by --max-time at epoch {model.epoch_of(len(corpus.ids)):.2f} of {config.epochs}; "
              f"vectors so far → {args.output}; continue with --resume {ckpt_path}")
    return 0


#: the messages of Word2VecConfig start with its field's name; the user typed a flag
_FLAG_NAMES = {"vector-size": "--size", "window": "--window", "negative": "--negative", "epochs": "--epochs",
               "min-count": "--min-count", "max-vocab": "--max-vocab", "threads": "--threads", "sample": "--sample",
               "alpha": "--alpha", "seed": "--seed"}


def _in_flags(message: str) -> str:
    first, _, rest = message.partition(" ")
    if first in _FLAG_NAMES:
        message = f"{_FLAG_NAMES[first]} {rest}"
    return message.replace("with negative 0", "with --negative 0").replace("(hs)", "(--hs)")


def _size_of(path: Path, name: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        raise UserError(f"no such file: {name}") from None


def _same(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _kernel_available() -> bool:
    from dlia.backend import w2v

    return bool(w2v.available)


def _fit(model: Any, corpus: Any, vocab: Any, ckpt_path: Path, fingerprint: dict[str, int], name: str,
         args: argparse.Namespace) -> bool:
    """Train to the end (True) or until --max-time (False), saving checkpoints; Ctrl-C saves one and re-raises."""
    from dlia.models.word2vec import Word2VecError

    n = len(corpus.ids)
    run_words = n * model.config.epochs
    bar = Progress(total=run_words, desc="training")
    bar.n = start = round(model.epoch_of(n) * n)  # a resumed run's bar starts where it stopped
    started = time.perf_counter()
    deadline = None if args.max_time is None else started + 60 * args.max_time
    every = 60 * args.checkpoint_every

    def progress(at: int, total: int, alpha: float) -> None:
        rate = (at - start) / max(time.perf_counter() - started, 1e-9)
        eta = f"{(total - at) / rate:.0f}s" if rate > 0 else "?"
        bar.update(at - bar.n, **{"words/s": int(rate), "alpha": f"{alpha:.5f}", "ETA": eta})

    try:
        while True:
            def stop(since: float = time.perf_counter()) -> bool:  # since: this leg's start (the last save)
                now = time.perf_counter()
                return now - since >= every or (deadline is not None and now >= deadline)

            try:
                model.train(corpus, progress=progress, stop=stop)
            except Word2VecError as e:  # a diverged run: nothing is written
                bar.clear()
                raise UserError(str(e).replace("alpha", "--alpha")) from None
            finished = model.chunks_done >= -(-len(corpus.ids) // model.config.chunk_words) * model.config.epochs
            if finished:
                bar.close()
                return True
            _save_checkpoint(ckpt_path, model, vocab, fingerprint, name)
            if deadline is not None and time.perf_counter() >= deadline:
                bar.close()
                return False
    except KeyboardInterrupt:
        bar.clear()
        _save_checkpoint(ckpt_path, model, vocab, fingerprint, name)
        print(f"interrupted at epoch {model.epoch_of(len(corpus.ids)):.2f}; continue with --resume {ckpt_path}")
        raise
    except BaseException:
        bar.clear()
        raise


# -- queries ---------------------------------------------------------------------------------------------


def load_vectors(args: argparse.Namespace) -> Any:
    """The vectors of ``--vectors``, every failure one ``UserError`` line."""
    from dlia.models.word2vec import KeyedVectors

    p = Path(args.vectors)
    if not p.exists():
        raise UserError(f"no such vectors file: {p} (write one with 'dlia word2vec train CORPUS -o {p}')")
    if p.is_dir():
        raise UserError(f"{p} is a folder, not a vectors file")
    try:
        return KeyedVectors.load_word2vec_format(p, unicode_errors=args.unicode_errors, limit=args.limit)
    except ValueError as e:  # FormatError and friends: the file and what is wrong
        message = str(e).replace("pass unicode_errors='replace' or 'ignore'", "use --unicode-errors replace or ignore")
        raise UserError(message) from None
    except OSError as e:
        raise UserError(f"cannot read {p}: {e.strerror or e}") from None


def _query(fn: Any, *a: Any, **k: Any) -> Any:
    """Run a query; a word the vectors lack is one line naming it."""
    try:
        return fn(*a, **k)
    except ValueError as e:
        raise UserError(str(e)) from None


def _print_ranked(rows: list[tuple[str, float]]) -> None:
    width = max((len(w) for w, _ in rows), default=0)
    for word, score in rows:
        print(f"{word:<{width}}  {score:.4f}")


def similar(args: argparse.Namespace) -> int:
    check_output(args.output, "--output", inputs=[("--vectors", args.vectors)])
    wv = load_vectors(args)
    rows = _query(wv.most_similar, positive=args.words, negative=args.minus, topn=args.topn)
    _print_ranked(rows)
    if args.output:
        from dlia.viz.embeddings import neighbours_plot

        if len(args.words) == 1 and not args.minus:
            _draw_neighbours(wv, args.words[0], args.output, args.topn, neighbours_plot)
        else:  # a query of several words is no point of the vectors: its neighbours' similarities only
            label = " + ".join(args.words) + "".join(f" − {w}" for w in args.minus)
            written = _query(neighbours_plot, label, rows, None, args.output, title=f"nearest to {label}")
            print(f"picture → {written.path}")
    return 0


def _draw_neighbours(wv: Any, word: str, output: str, topn: int, draw: Any) -> None:
    rows = _query(wv.most_similar, positive=[word], topn=topn)
    written = _query(draw, word, rows, wv, output, title=f"{word} and its {len(rows)} nearest neighbours")
    print(f"picture → {written.path}")


def analogy(args: argparse.Namespace) -> int:
    wv = load_vectors(args)
    rows = _query(wv.analogy, args.a, args.b, args.c, method=args.method, topn=args.topn)
    print(f"{args.a} is to {args.b} as ? is to {args.c}  ({args.a} − {args.b} + {args.c}, 3Cos{args.method.capitalize()}):")
    _print_ranked(rows)
    return 0


@contextlib.contextmanager
def _shipped(name: str) -> Iterator[Path]:
    """A data file shipped gzipped inside the package (``dlia.data.SHIPPED``), unpacked to a temporary file."""
    from dlia.data import shipped_file

    packed = shipped_file(name + ".gz")
    if packed is None:
        raise UserError(f"{name} is not shipped with this installation; give the file with the option")
    fd, tmp = tempfile.mkstemp(prefix="dlia-", suffix="-" + name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(gzip.decompress(packed.read_bytes()))
        yield Path(tmp)
    finally:
        os.unlink(tmp)


def evaluate(args: argparse.Namespace) -> int:
    wv = load_vectors(args)
    with contextlib.ExitStack() as stack:
        questions = Path(args.questions) if args.questions else stack.enter_context(_shipped("questions-words.txt"))
        pairs = [Path(p) for p in args.pairs] if args.pairs else [stack.enter_context(_shipped("wordsim353.tsv"))]
        for p in [questions, *pairs]:
            if not p.exists():
                raise UserError(f"no such file: {p}")
            if not p.is_file():
                raise UserError(f"{p} is {'a folder' if p.is_dir() else 'not a regular file (a pipe, socket or device)'}, "
                                f"not a text file")
        report = _query(wv.evaluate_analogies, questions, restrict_vocab=args.restrict_vocab, method=args.method)
        print(f"analogies ({args.questions or 'questions-words.txt'}, the {args.restrict_vocab:,} most frequent words, "
              f"3Cos{args.method.capitalize()}):")
        print(report.format())
        from dlia.models.word2vec import EvaluationError

        for given, p in zip(args.pairs or ["WordSim-353"], pairs):
            try:
                r = wv.evaluate_pairs(p)
            except EvaluationError as e:  # too few pairs in the vocabulary: said, not an error of the run
                print(f"{given}: no correlation: {str(e).replace(str(p) + ': ', '')}")
                continue
            except ValueError as e:  # a malformed file
                raise UserError(str(e).replace(str(p), given)) from None
            print(f"{given}: Spearman rho {r.spearman:.4f}, Pearson r {r.pearson:.4f} "
                  f"({r.used} pairs, {r.skipped} skipped: a word not in the vectors)")
    return 0


def plot(args: argparse.Namespace) -> int:
    check_output(args.output, "--output", inputs=[("--vectors", args.vectors), ("--pairs", args.pairs)])
    from dlia.viz import embeddings

    wv = load_vectors(args)
    if args.neighbours:
        _draw_neighbours(wv, args.neighbours, args.output, args.topn, embeddings.neighbours_plot)
        return 0
    try:
        pairs = embeddings.pairs(args.pairs)
    except (ValueError, OSError) as e:
        raise UserError(str(e)) from None
    result = _query(embeddings.pairs_plot, pairs, wv, args.output, title=f"{args.pairs} ({Path(args.vectors).name})")
    print(f"picture → {result.path}: {len(result.used)} pairs")
    if result.skipped:
        print(f"skipped (a word not in the vectors): {', '.join('–'.join(p) for p in result.skipped)}")
    return 0
