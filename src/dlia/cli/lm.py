"""``dlia lm compare``: the paper's comparison (Bengio et al. 2003) on our data: n-gram models and the
neural language model, alone and mixed, by test perplexity (docs/language-models.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlia.cli.common import check_output, path_name, positive_float, positive_int
from dlia.cli.errors import UserError
from dlia.cli.progress import Progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lm", help="language models compared: n-grams (MLE, add-k, Katz, Kneser-Ney) and the NNLM",
                       description="Language models compared by test perplexity (docs/language-models.md).")
    cmds = p.add_subparsers(dest="lm_command", metavar="ACTION", required=True)
    c = cmds.add_parser("compare", help="test perplexity of n-gram models, Bengio's NNLM and their mixture on one corpus")
    c.add_argument("--corpus", default="enwiki", metavar="enwiki|shakespeare|FILE",
                   help="enwiki-sample (found where dlia looks for data files), tiny-shakespeare's words (shipped), or a "
                        "UTF-8 file of tokenized lines (default enwiki)")
    c.add_argument("--lowercase", action="store_true", help="lower-case FILE first")
    c.add_argument("--min-count", type=positive_int, default=2, help="training words seen fewer times become <unk> (2)")
    c.add_argument("-o", "--output", type=path_name, metavar="MD", help="also write the table as Markdown")
    c.add_argument("--no-nnlm", action="store_true", help="only the n-gram rows (seconds instead of minutes)")
    c.add_argument("--epochs", type=positive_int, default=10, help="NNLM epochs at most (early stopping: 2 without gain)")
    c.add_argument("--hidden", type=positive_int, default=100, help="NNLM tanh units (100)")
    c.add_argument("--embedding-dim", type=positive_int, default=60, help="NNLM word-vector length (60)")
    c.add_argument("--direct", action="store_true", help="NNLM direct connections from the word vectors to the output "
                                                          "(twice the time per epoch)")
    c.add_argument("--batch-size", type=positive_int, default=512, help="NNLM tokens per step (512)")
    c.add_argument("--lr", type=positive_float, default=3e-3, help="NNLM Adam step (3e-3)")
    c.add_argument("--seed", type=int, default=0, help="the NNLM's initial weights and batch order (0)")
    c.set_defaults(run=compare)


def _corpus(given: str, lowercase: bool) -> tuple[list[list[str]], str]:
    from dlia.models.lmcompare import read_lines

    if given == "enwiki":
        from dlia.data import DataNotFoundError, find_data_file

        try:
            path = find_data_file("enwiki-sample.txt")
        except DataNotFoundError as e:
            raise UserError(f"{e}; give a corpus file with --corpus FILE") from None
        return _read(path, lowercase), "enwiki-sample"
    if given == "shakespeare":
        from dlia.cli.charrnn import shakespeare

        return read_lines(shakespeare(), shakespeare_words=True), "tiny-shakespeare's words"
    return _read(Path(given), lowercase), given


def _read(path: Path, lowercase: bool) -> list[list[str]]:
    from dlia.models.lmcompare import read_lines
    from dlia.text import TextError, read_text

    try:
        return read_lines(read_text(path), lowercase=lowercase)
    except TextError as e:
        raise UserError(str(e)) from None


def compare(args: argparse.Namespace) -> int:
    from dlia.models import nnlm
    from dlia.models.lmcompare import CompareError, compare, split

    check_output(args.output, "--output", inputs=[("--corpus", args.corpus)])
    lines, name = _corpus(args.corpus, args.lowercase)
    try:
        train, valid, test = split(lines)
        config = None if args.no_nnlm else nnlm.NNLMConfig(
            order=5, embedding_dim=args.embedding_dim, hidden=args.hidden, direct=args.direct, batch_size=args.batch_size,
            lr=args.lr, epochs=args.epochs, seed=args.seed, min_count=args.min_count)
    except CompareError as e:
        raise UserError(str(e)) from None
    except nnlm.NNLMError as e:  # in the user's words: the flag, not the config field
        message = str(e).removeprefix("nnlm config: ")
        for field in ("batch_size", "embedding_dim", "hidden", "lr", "epochs", "seed", "min_count"):
            if message.startswith(field + " "):
                message = "--" + field.replace("_", "-") + message[len(field):]
        raise UserError(message) from None
    if config is not None:  # the NNLM's memory, from the vocabulary its training lines give
        from dlia.cli.common import check_memory
        from dlia.models.ngram import build_vocab

        check_memory(f"--hidden {args.hidden} --embedding-dim {args.embedding_dim} --batch-size {args.batch_size}",
                     nnlm.training_bytes(config, len(build_vocab(train, min_count=args.min_count))),
                     "use a smaller model or batch")
    bar: list[Progress] = []

    def on_batch(done: int, total: int, loss: float, rate: float) -> None:
        if not bar:
            bar.append(Progress(total=total, desc="NNLM epoch"))
        bar[0].update(done - bar[0].n, loss=loss, **{"tokens/s": int(rate)})

    def on_epoch(trainer: object, path: object) -> None:
        if bar:
            bar.pop().close()

    try:
        result = compare(train, valid, test, corpus=name, min_count=args.min_count, nnlm_config=config,
                         on_batch=on_batch, on_epoch=on_epoch)
    except CompareError as e:
        raise UserError(f"{name}: {e}") from None
    except FloatingPointError as e:  # the NNLM diverged
        if bar:
            bar[0].clear()
        raise UserError(f"{e} (--lr {args.lr:g})") from None
    table = result.markdown()
    print(table, end="")
    if args.output:
        from dlia.io.atomic import atomic_write

        with atomic_write(Path(args.output), "w") as f:
            f.write(table)
    return 0
