"""``dlia ngram``: train an n-gram language model on a text corpus (MLE, add-k, Katz, modified
Kneser-Ney; ``dlia.models.ngram``), then score held-out text, sample sentences, and ask for one
probability with the backoff path that gave it.

Text is read as the models read it: a line is a sentence (lines as ``str.splitlines`` cuts them, as
``dlia nnlm`` and ``dlia lm compare`` read them: ``\n``, ``\r\n``, a lone ``\r`` and the other Unicode
line breaks), words are separated by white space (``dlia.text.tokenize``), empty lines are no
sentence; ``<s>`` and ``</s>`` are added by the model, so a corpus that holds them literally is
refused; a literal ``<unk>`` is the unknown word.
"""

from __future__ import annotations

import argparse
import math
import stat
import time
from pathlib import Path
from typing import Any

import numpy

from dlia.cli.common import check_memory, check_output, path_name, positive_float, positive_int, seed
from dlia.cli.errors import UserError

#: what ``train`` writes when no name is given
MODEL = "model.arpa"
#: output suffix → format
FORMATS = {".arpa": "ARPA", ".npz": "dlia checkpoint"}
#: bytes per token and per order while counting: the padded stream, the packed keys, numpy.unique's
#: sort copy, inverse and counts, and the row of every token (six int64 arrays; measured peak ~5)
COUNT_BYTES_PER_TOKEN = 48
#: a line is one sentence however long (the sentence cut of word2vec's corpus reader is not wanted here)
NO_SENTENCE_CUT = 1 << 62
#: bytes per byte of corpus while it is held as text and as lists of words (a short word is a ~55-byte
#: str plus an 8-byte pointer for ~6 bytes of text)
READ_BYTES_PER_BYTE = 16
#: the most sentences ``sample --n`` draws (each is printed as soon as it is drawn)
MAX_SAMPLES = 10**6


def _k(text: str) -> float:
    """add-k's --k: positive, finite, at most ``dlia.models.ngram.MAX_K``."""
    from dlia.models.ngram import MAX_K

    value = positive_float(text)
    if value > MAX_K:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_K:g} (a larger k makes every distribution "
                                         f"uniform), got {value:g}")
    return value


def _samples(text: str) -> int:
    value = positive_int(text)
    if value > MAX_SAMPLES:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SAMPLES:,}, got {value:,}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    from dlia.models.ngram import SMOOTHINGS

    p = sub.add_parser("ngram", help="n-gram language models: train (MLE, add-k, Katz, Kneser-Ney), perplexity, sampling",
                       description="n-gram language models (docs/language-models.md): count n-grams of a corpus, "
                                   "write ARPA files KenLM and SRILM read, score held-out text, generate sentences.")
    cmds = p.add_subparsers(dest="ngram_command", metavar="ACTION", required=True)

    t = cmds.add_parser("train", help="count the n-grams of a UTF-8 corpus (a sentence per line) and write the model")
    t.add_argument("corpus", type=path_name, metavar="CORPUS", help="UTF-8 text, a sentence per line, words separated by spaces")
    t.add_argument("--order", type=positive_int, default=3, help="n, the length of the n-grams (default 3)")
    t.add_argument("--smoothing", choices=SMOOTHINGS, default="kn",
                   help="kn: interpolated modified Kneser-Ney (default); katz: Katz backoff; add-k; mle: maximum likelihood")
    t.add_argument("--k", type=_k, default=1.0, help="add-k's pseudo-count, at most 1e6 (default 1: Laplace)")
    t.add_argument("--min-count", type=positive_int, default=1, help="words seen fewer times become <unk> (default 1)")
    t.add_argument("--lowercase", action="store_true", help="lower-case the corpus")
    t.add_argument("-o", "--output", type=path_name, default=MODEL,
                   help=f"the model (default {MODEL}): ARPA text for .arpa, a dlia checkpoint for .npz (exact, faster to read)")
    t.set_defaults(run=train)

    def model_arg(q: argparse.ArgumentParser) -> None:
        q.add_argument("model", type=path_name, metavar="MODEL", help="a model from 'dlia ngram train' (.arpa or .npz), "
                                                                      "or an ARPA file of KenLM or SRILM")

    e = cmds.add_parser("eval", help="perplexity of a text (a sentence per line) under a model")
    model_arg(e)
    e.add_argument("text", type=path_name, metavar="TEXT", help="UTF-8 text, a sentence per line")
    e.add_argument("--lowercase", action="store_true", help="lower-case the text (as the corpus was, if trained so)")
    e.set_defaults(run=evaluate)

    s = cmds.add_parser("sample", help="generate sentences word by word from the model")
    model_arg(s)
    s.add_argument("--n", type=_samples, default=5, help=f"how many sentences (default 5, at most {MAX_SAMPLES:,})")
    s.add_argument("--max-len", type=positive_int, default=50, help="the most words of a sentence (default 50)")
    s.add_argument("--prefix", default="", metavar="WORDS", help="words every sentence starts with (not <s> or </s>)")
    s.add_argument("--seed", type=seed, default=0, help="random seed (default 0): same seed, same sentences")
    s.set_defaults(run=sample)

    q = cmds.add_parser("prob", help="P(last word | the words before it), and the backoff path that answered")
    model_arg(q)
    q.add_argument("words", nargs="+", metavar="WORDS",
                   help='"w1 w2 ... wn": the probability of wn after w1..wn-1 (start with <s> for a sentence start)')
    q.add_argument("--lowercase", action="store_true", help="lower-case the words")
    q.set_defaults(run=prob)


# -- reading --------------------------------------------------------------------------------------------


def _format(output: str) -> str:
    suffix = Path(output).suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"cannot write --output {output}: give a name ending in .arpa (ARPA text) or .npz (dlia checkpoint)")
    return FORMATS[suffix]


def load_model(path: str) -> Any:
    """The model in ``path``: a dlia checkpoint (a zip file) or an ARPA file, every failure one
    ``UserError`` line."""
    from dlia.io import CheckpointError
    from dlia.models.ngram import NGramLM

    p = Path(path)
    if not p.exists():
        raise UserError(f"no such model file: {p} (write one with 'dlia ngram train CORPUS -o {p}')")
    try:
        mode = p.stat().st_mode
    except OSError as e:
        raise UserError(f"cannot read {p}: {e.strerror or e}") from None
    if stat.S_ISDIR(mode):
        raise UserError(f"{p} is a folder, not a model file")
    if not stat.S_ISREG(mode):  # a FIFO would block forever, a device never end
        raise UserError(f"{p} is not a regular file (a pipe, socket or device), so not a model file")
    try:
        with open(p, "rb") as f:
            zipped = f.read(4) == b"PK\x03\x04"  # an .npz is a zip archive, whatever its name
        return NGramLM.load(p) if zipped else NGramLM.load_arpa(p)
    except (CheckpointError, ValueError) as e:  # ArpaError and NGramError are ValueErrors
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"cannot read {p}: {e.strerror or e}") from None


def _sentences(path: str, lowercase: bool) -> list[list[str]]:
    """The non-empty lines of a (small) UTF-8 text file as lists of words."""
    from dlia.text import TextError, read_text, tokenize

    try:
        text = read_text(path)
    except TextError as e:
        raise UserError(str(e)) from None
    # str.splitlines, as dlia nnlm and dlia lm compare cut lines (dlia.text's streaming readers cut at
    # "\n" only, which word2vec relies on; a lone "\r" or a Unicode line break is a line end here)
    sentences = [s for s in (tokenize(line, lowercase) for line in text.splitlines()) if s]
    if not sentences:
        raise UserError(f"{path} holds no words (only whitespace)")
    return sentences


def _words(given: list[str], lowercase: bool) -> list[str]:
    from dlia.text import tokenize

    return [w for part in given for w in tokenize(part, lowercase)]


# -- train ----------------------------------------------------------------------------------------------


def train(args: argparse.Namespace) -> int:
    from collections import Counter

    from dlia.models.ngram import BOS, EOS, UNK, UNK_ID, NGramError, NGramLM
    from dlia.text import EncodedCorpus, VocabError, WordVocab

    kind = _format(args.output)
    check_output(args.output, "--output", inputs=[("CORPUS", args.corpus)])
    started = time.perf_counter()
    try:
        size = Path(args.corpus).stat().st_size
    except OSError:
        size = 0  # _sentences names what is wrong with the file
    check_memory(f"reading {args.corpus} ({size:,} bytes)", READ_BYTES_PER_BYTE * size, "use a part of the corpus")
    sentences = _sentences(args.corpus, args.lowercase)  # lines as dlia nnlm and dlia lm compare cut them
    counted: Counter[str] = Counter()
    for s in sentences:
        counted.update(s)
    for special in (BOS, EOS):
        if special in counted:
            raise UserError(f"{args.corpus} holds the token {special}; sentence boundaries are added by the model "
                            f"(a line is a sentence), so remove it from the text")
    # the counting arrays are ~order × tokens int64s, several at once (COUNT_BYTES_PER_TOKEN)
    tokens = sum(counted.values())
    padded = tokens + 2 * len(sentences)
    check_memory(f"--order {args.order} on {tokens:,} words", COUNT_BYTES_PER_TOKEN * args.order * padded,
                 "use a lower --order or a part of the corpus")
    try:
        counts = {w: c for w, c in counted.items() if w != UNK}  # a literal <unk> is the unknown word
        kept = WordVocab.build(counts, min_count=args.min_count) if counts else None
        words = [BOS, EOS, UNK, *(kept.words if kept else [])]
        vocab = WordVocab(words, [0, 0, 0, *(kept.counts.tolist() if kept else [])])
        corpus = EncodedCorpus.from_sentences(sentences, vocab, max_sentence_length=NO_SENTENCE_CUT, unknown=UNK_ID)
    except VocabError as e:
        raise UserError(str(e)) from None
    del sentences
    read = time.perf_counter() - started
    lengths = numpy.diff(corpus.starts)
    longest = int(lengths.max())
    if args.order > longest + 2:  # <s> w1 .. wL </s>: no longer n-gram exists
        raise UserError(f"--order {args.order} is longer than any sentence of {args.corpus} (the longest has {longest} "
                        f"words, {longest + 2} tokens with <s> and </s>); use --order {longest + 2} or less")
    unknown = int((corpus.ids == UNK_ID).sum())
    print(f"{args.corpus}: {corpus.raw_tokens:,} words in {len(corpus):,} sentences, {len(counted):,} distinct, "
          f"{len(words) - 3:,} kept (--min-count {args.min_count}) + <s> </s> <unk>; {unknown:,} words → <unk>")
    lm = NGramLM(args.order, args.smoothing, k=args.k)
    started = time.perf_counter()
    try:
        lm.fit(list(corpus), vocab=words)
    except NGramError as e:
        raise UserError(str(e)) from None
    fitted = time.perf_counter() - started
    tokens = corpus.raw_tokens + len(corpus)  # predicted tokens: the words and each sentence's </s>
    sizes = ", ".join(f"{len(lm.keys[m]):,} {m}-grams" for m in range(1, lm.order + 1))
    print(f"{lm.order}-gram model, {_smoothing_name(lm)}: {sizes}")
    if lm.smoothing in ("kn", "katz"):
        print(_discounts(lm))
    print(f"read in {read:.2f} s ({corpus.raw_tokens / max(read, 1e-9):,.0f} words/s); counted and estimated in "
          f"{fitted:.2f} s ({tokens / max(fitted, 1e-9):,.0f} tokens/s)")
    try:
        written = lm.save_arpa(args.output) if kind == "ARPA" else lm.save(args.output)
    except NGramError as e:  # an add-k model too large to list in ARPA
        raise UserError(str(e)) from None
    print(f"model → {written} ({kind})")
    return 0


def _smoothing_name(lm: Any) -> str:
    return {"mle": "maximum likelihood", "add-k": f"add-k (k = {lm.k:g})", "katz": "Katz backoff",
            "kn": "interpolated modified Kneser-Ney", "arpa": "read from ARPA"}[lm.smoothing]


def _discounts(lm: Any) -> str:
    """One line: the discounts of every order (KN's D1, D2, D3+; Katz's Good-Turing ratios d1..dk)."""
    parts = []
    for m in range(1, lm.order + 1):
        d = ", ".join(f"{x:.3f}" for x in lm.discounts[m])
        fallback = " (fallback: too few counts)" if lm.smoothing == "kn" and lm.fallback[m] else ""
        parts.append(f"{m}-grams ({d}){fallback}")
    name = "discounts D1, D2, D3+" if lm.smoothing == "kn" else f"Good-Turing ratios d1..d{lm.katz_k}"
    return f"{name}: " + "; ".join(parts)


# -- eval, sample -------------------------------------------------------------------------------------


def evaluate(args: argparse.Namespace) -> int:
    from dlia.models.ngram import NGramError

    lm = load_model(args.model)
    sentences = _sentences(args.text, args.lowercase)
    try:
        r = lm.evaluate(sentences)
    except NGramError as e:  # a sentence holding <s> or </s>
        raise UserError(f"{args.text}: {e}") from None
    words = r.tokens - r.sentences
    if r.oov == words:
        raise UserError(f"{args.text}: none of its {words:,} words is in the model's vocabulary ({lm.V - 3:,} words); "
                        f"its perplexity would only measure <unk> (wrong file, or --lowercase missing?)")
    print(f"{args.text}: {r.sentences:,} sentences, {words:,} words, {r.oov:,} out of the vocabulary (scored as <unk>); "
          f"{r.tokens:,} tokens predicted (the words and each </s>)")
    print(f"log10 probability {r.log10_prob:.4f}, perplexity {r.perplexity:.6f}")
    if r.zero_prob:
        print(f"{r.zero_prob:,} tokens have probability 0 under this model, so the perplexity is infinite "
              f"(maximum likelihood gives 0 to a word never seen after a seen context; smoothing does not)")
    else:
        print("zero-probability tokens: 0")
    return 0


def sample(args: argparse.Namespace) -> int:
    from dlia.models.ngram import BOS, EOS, NGramError

    prefix = _words([args.prefix], False)
    for special in (BOS, EOS):
        if special in prefix:
            raise UserError(f"--prefix holds {special}: every sentence starts after <s> and ends at </s> on its own; "
                            f"give words only")
    lm = load_model(args.model)
    rng = numpy.random.default_rng(args.seed)
    for _ in range(args.n):  # printed as drawn: a long run shows its first sentences at once
        try:
            sentence = " ".join(lm.sample(rng, args.max_len, prefix))
        except NGramError as e:
            raise UserError(str(e)) from None
        print(sentence if sentence else "(empty: </s> came first)", flush=True)
    return 0


# -- prob -----------------------------------------------------------------------------------------------


def _row(lm: Any, ids: list[int]) -> int:
    """The row of an m-gram (word ids) in the model's table of order m, −1 when it is not listed."""
    row = ids[0]
    for m, w in enumerate(ids[1:], start=2):
        key = row * lm.V + w
        at = int(numpy.searchsorted(lm.keys[m], key))
        if at == len(lm.keys[m]) or lm.keys[m][at] != key:
            return -1
        row = at
    return row


def _is_context(lm: Any, m: int, row: int) -> bool:
    """Whether the m-gram at ``row`` was seen followed by a word (some (m+1)-gram starts with it)."""
    lo, hi = numpy.searchsorted(lm.keys[m + 1], [row * lm.V, row * lm.V + lm.V])
    return bool(hi > lo)


def backoff_path(lm: Any, word: str, context: list[str]) -> tuple[float, list[str]]:
    """P(word | context) and how it was found, one line per order tried, longest first.

    Backoff form (every smoothing but add-k): the longest listed n-gram ``h w`` answers with its
    stored P, times the backoff weight bow(h') of every longer context h' backed off from (1 for a
    context never seen). add-k: the longest context seen in training answers, with P(w | h) listed
    or bow(h)/(V−1) for a word never seen after it.

    Returns:
        (the probability, the lines of the path).
    """
    from dlia.models.ngram import UNK_ID

    index = {w: i for i, w in enumerate(lm.vocab)}
    n, V = lm.order, lm.V
    ids = [index.get(w, UNK_ID) for w in context][max(len(context) - (n - 1), 0):] if n > 1 else []
    w = index.get(word, UNK_ID)
    names = [lm.vocab[i] for i in ids] + [lm.vocab[w]]
    lines, factor = [], 1.0
    for m in range(len(ids) + 1, 0, -1):
        gram = " ".join(names[-m:])
        row = _row(lm, [*ids[len(ids) - (m - 1):], w]) if m > 1 else w
        h = ids[len(ids) - (m - 1):] if m > 1 else []
        hrow = _row(lm, h) if h else -1
        if lm.smoothing == "add-k" and m > 1:
            if hrow < 0 or not _is_context(lm, m - 1, hrow):
                lines.append(f"{m}-gram {gram!r}: its context {' '.join(names[-m:-1])!r} was never seen; shorter context")
                continue
            if row >= 0:
                p = float(lm.probs[m][row])
                lines.append(f"{m}-gram {gram!r}: listed, P = {p:.6g} (answered by the {m}-gram)")
            else:
                p = float(lm.bows[m - 1][hrow]) / (V - 1)
                lines.append(f"{m}-gram {gram!r}: context seen, word not: P = bow {lm.bows[m - 1][hrow]:.6g} / {V - 1} "
                             f"words = {p:.6g} (answered by the {m}-gram's context)")
            return p, lines
        if row >= 0:
            p = float(lm.probs[m][row])
            lines.append(f"{m}-gram {gram!r}: listed, P = {p:.6g} (answered by the {m}-gram)")
            if factor != 1.0:
                lines.append(f"P = {factor:.6g} (backoff weights) × {p:.6g} = {factor * p:.6g}")
            return factor * p, lines
        bow = float(lm.bows[m - 1][hrow]) if hrow >= 0 else 1.0
        seen = f"backoff weight of {' '.join(names[-m:-1])!r} = {bow:.6g}" if hrow >= 0 else \
            f"context {' '.join(names[-m:-1])!r} never seen (weight 1)"
        lines.append(f"{m}-gram {gram!r}: not listed; {seen}")
        factor *= bow
    raise AssertionError("every word is listed as a unigram")  # pragma: no cover


def prob(args: argparse.Namespace) -> int:
    lm = load_model(args.model)
    words = _words(args.words, args.lowercase)
    if not words:
        raise UserError("give at least one word: \"w1 w2 ... wn\" asks P(wn | w1 .. wn-1)")
    *context, word = words
    if word == "<s>":
        raise UserError("<s> is never predicted (it only starts a sentence); ask for another word")
    unknown = sorted({w for w in words if w not in lm.vocab})
    if unknown:
        print(f"not in the vocabulary, read as <unk>: {', '.join(unknown)}")
    used = context[max(len(context) - (lm.order - 1), 0):] if lm.order > 1 else []
    if lm.order == 1 and context:
        print("a 1-gram model ignores the words before: P(word) alone")
    elif len(used) < len(context):
        print(f"a {lm.order}-gram model looks at the last {lm.order - 1} word{'s' * (lm.order != 2)} only: {' '.join(used)}")
    from dlia.models.ngram import NGramError

    try:
        p, lines = backoff_path(lm, word, context)
    except NGramError as e:
        raise UserError(str(e)) from None
    for line in lines:
        print("  " + line)
    log = f"{math.log10(p):.4f}" if p > 0 else "-inf"
    print(f"P({word} | {' '.join(used) or '(no context)'}) = {p:.6g} (log10 {log})")
    return 0
