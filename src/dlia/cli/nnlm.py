"""``dlia nnlm``: train Bengio et al. (2003)'s neural probabilistic language model on a corpus (a
sentence per line), measure its perplexity on a text, and draw sentences from it."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from dlia.cli.common import (
    check_memory,
    check_output,
    duration,
    keep_run_settings,
    non_negative_float,
    non_negative_int,
    path_name,
    positive_float,
    positive_int,
    resume_path,
    run_folder,
)
from dlia.cli.errors import UserError
from dlia.cli.progress import Progress

#: where checkpoints go when no --checkpoint-dir is given
RUNS = "runs/nnlm"




def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {value:g}")
    return value


def _order(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {text!r}") from None
    if not 2 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be between 2 (one word of context) and 64, got {value}")
    return value




#: train flags that set an ``NNLMConfig`` field: (flags, field, argparse type, help)
_CONFIG_FLAGS: list[tuple[tuple[str, ...], str, Any, str]] = [
    (("--order",), "order", _order, "n: predict a word from the n−1 before it"),
    (("--embedding-dim",), "embedding_dim", positive_int, "m, the length of the word vectors"),
    (("--hidden",), "hidden", non_negative_int, "tanh hidden units (0: only the direct connections)"),
    (("--optimizer",), "optimizer", None, "adam or sgd"),
    (("--lr",), "lr", positive_float, "learning rate (sgd wants ~0.1 to 0.5)"),
    (("--batch-size",), "batch_size", positive_int, "predicted words per step"),
    (("--epochs",), "epochs", positive_int, "passes over the training words at most"),
    (("--patience",), "patience", non_negative_int,
     "stop after this many epochs without a better validation perplexity (0: never)"),
    (("--weight-decay",), "weight_decay", non_negative_float, "L2 penalty added to the gradients"),
    (("--min-count",), "min_count", positive_int, "training words seen fewer times become <unk>"),
    (("--val-frac",), "val_frac", _fraction, "the last fraction of the lines held out for validation"),
]


def register(sub: argparse._SubParsersAction) -> None:
    from dlia.models.nnlm import NNLMConfig

    p = sub.add_parser("nnlm", help="Bengio's neural language model: train on a corpus, perplexity, sampling",
                       description="The neural probabilistic language model of Bengio et al. (2003): word vectors, "
                                   "a tanh layer and a softmax over the vocabulary (docs/language-models.md).")
    cmds = p.add_subparsers(dest="nnlm_command", metavar="ACTION", required=True)
    defaults = NNLMConfig()

    t = cmds.add_parser("train", help="train on a UTF-8 corpus (a sentence per line, words separated by white space)")
    t.add_argument("corpus", type=path_name, metavar="CORPUS", help="UTF-8 text, a sentence per line")
    for flags, name, kind, text in _CONFIG_FLAGS:
        t.add_argument(*flags, dest=name, default=None, type=kind, help=f"{text} (default {getattr(defaults, name)})",
                       choices=("adam", "sgd") if name == "optimizer" else None)
    t.add_argument("--no-direct", dest="direct", action="store_false", default=None,
                   help="no direct connections from the word vectors to the output")
    t.add_argument("--lowercase", action="store_true", default=None, help="lower-case the corpus")
    t.add_argument("--seed", type=int, default=None, help="random seed (default 0): the initial weights and the batch order")
    t.add_argument("--checkpoint-dir", type=path_name, metavar="DIR",
                   help=f"where a checkpoint is written after every epoch (default {RUNS})")
    t.add_argument("--resume", type=path_name, metavar="CKPT",
                   help="continue a run from its checkpoint (or the latest one in a folder), in that checkpoint's folder")
    t.add_argument("--max-time", type=positive_float, metavar="MINUTES", help="stop after this many minutes, with a checkpoint")
    t.set_defaults(run=train)

    e = cmds.add_parser("eval", help="perplexity of a trained model on a text (a sentence per line)")
    e.add_argument("checkpoint", type=path_name, metavar="CKPT", help="a checkpoint written by 'dlia nnlm train'")
    e.add_argument("text", type=path_name, metavar="TEXT", help="UTF-8 text, a sentence per line")
    e.set_defaults(run=evaluate)

    s = cmds.add_parser("sample", help="draw sentences from a trained model")
    s.add_argument("checkpoint", type=path_name, metavar="CKPT", help="a checkpoint written by 'dlia nnlm train'")
    s.add_argument("--n", type=positive_int, default=5, help="how many sentences (default 5)")
    s.add_argument("--max-len", type=positive_int, default=50, help="the most words a sentence gets (default 50)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0): same seed, same sentences")
    s.set_defaults(run=sample)


# -- reading text ----------------------------------------------------------------------------------
def _sentences(path: str, lowercase: bool, what: str) -> list[list[str]]:
    """The non-empty lines of a UTF-8 file as lists of words; every failure one ``UserError`` line."""
    from dlia.text import TextError, read_text, tokenize

    try:
        text = read_text(path)
    except TextError as e:
        raise UserError(str(e)) from None
    sentences = [s for s in (tokenize(line, lowercase) for line in text.splitlines()) if s]
    if not sentences:
        raise UserError(f"{what} {path} holds no words (only white space)")
    return sentences


def _encode(sentences: list[list[str]], vocab: list[str], what: str) -> list[Any]:
    from dlia.models.ngram import NGramError, encode_sentences

    try:
        return encode_sentences(sentences, vocab)
    except NGramError as e:  # a literal <s> or </s> in the text
        raise UserError(f"{what}: {e}") from None


def _split(sentences: list[list[str]], val_frac: float, path: str) -> tuple[list[list[str]], list[list[str]]]:
    """The first lines train, the last ``val_frac`` of them (at least one) validate."""
    if len(sentences) < 2:
        raise UserError(f"{path} has {len(sentences)} non-empty line; training needs at least 2 (the last "
                        f"--val-frac of the lines validate)")
    n_val = min(max(1, round(len(sentences) * val_frac)), len(sentences) - 1)
    return sentences[:-n_val], sentences[-n_val:]






# -- train -----------------------------------------------------------------------------------------
def train(args: argparse.Namespace) -> int:
    from dlia.io.checkpoint import remove_stale_checkpoint_temps
    from dlia.models.ngram import NGramError, build_vocab
    from dlia.models.nnlm import PREFIX, NNLMConfig, NNLMError, NNLMTrainer, read_checkpoint, training_bytes

    check_output(args.checkpoint_dir, "--checkpoint-dir", folder=True, inputs=[("CORPUS", args.corpus)])
    given = {name: getattr(args, name) for _, name, _, _ in _CONFIG_FLAGS if getattr(args, name) is not None}
    for name in ("direct", "lowercase", "seed"):
        if getattr(args, name) is not None:
            given[name] = getattr(args, name)
    resume_from = resume_path(args.resume, PREFIX, "nnlm") if args.resume else None
    if resume_from is not None:
        config, vocab, _ = read_checkpoint(resume_from)  # checked before anything is built from it
        out = resume_from.parent
        if args.checkpoint_dir is not None and Path(args.checkpoint_dir).resolve() != out.resolve():
            raise UserError(f"a resumed run continues in its own folder {out}; leave out --checkpoint-dir")
        keep_run_settings(config, given, "epochs")
    else:
        try:
            config = NNLMConfig(**given)
        except NNLMError as e:  # in the user's words: the flag, not the config field
            message = str(e).removeprefix("nnlm config: ")
            for flags, name, _, _ in _CONFIG_FLAGS:
                message = message.replace(f"{name} must", f"{flags[0]} must")
            raise UserError(message.replace("hidden 0 without direct connections", "--hidden 0 with --no-direct")) from None
        out = run_folder(args.checkpoint_dir, None, PREFIX, RUNS)  # never mix two runs' checkpoints
    sentences = _sentences(args.corpus, config.lowercase, "CORPUS")
    train_s, val_s = _split(sentences, config.val_frac, args.corpus)
    if resume_from is None:
        try:
            vocab = build_vocab(train_s, config.min_count)
        except NGramError as e:
            raise UserError(f"{args.corpus}: {e}") from None
        if len(vocab) == 3:
            raise UserError(f"no word of {args.corpus}'s training lines occurs --min-count {config.min_count} times; "
                            f"lower --min-count")
    check_memory(f"--embedding-dim {config.embedding_dim} --hidden {config.hidden} --batch-size {config.batch_size} "
                 f"with {len(vocab):,} words", training_bytes(config, len(vocab)), "use a smaller model, batch or vocabulary")
    train_ids, val_ids = _encode(train_s, vocab, args.corpus), _encode(val_s, vocab, args.corpus)
    if resume_from is not None:
        remove_stale_checkpoint_temps(out, PREFIX)  # a save killed mid-write left its temporary file
        trainer = NNLMTrainer.resume(resume_from, train_ids, val_ids, epochs=config.epochs)
        print(f"resuming from {resume_from} (epoch {trainer.epoch}, batch {trainer.batch})")
    else:
        trainer = NNLMTrainer(config, vocab, train_ids, val_ids)
    n_params = sum(p.numpy().size for p in trainer.model.parameters())
    print(f"{args.corpus}: {len(train_s):,} training lines ({len(trainer.y):,} predicted words), {len(val_s):,} validation "
          f"lines ({len(trainer.yv):,}); {len(vocab):,} words in the vocabulary (min count {config.min_count}); "
          f"{config.order}-gram NNLM, m={config.embedding_dim}, h={config.hidden}, "
          f"{'direct connections' if config.direct else 'no direct connections'}, {n_params:,} parameters")
    if trainer.done:
        print(f"already done ({trainer.epoch} epochs{', stopped early' if trainer.epoch < config.epochs else ''}); "
              f"nothing to do (raise --epochs to continue)")
        return 0
    bar: list[Progress] = []
    started, start_epoch = time.perf_counter(), trainer.epoch

    def new_bar() -> None:
        bar[:] = [Progress(total=len(trainer.y), desc=f"epoch {trainer.epoch + 1}/{config.epochs}")]
        bar[0].n = min(trainer.batch * config.batch_size, len(trainer.y))

    def on_batch(done: int, total: int, loss: float, rate: float) -> None:
        left = (total - done) + total * (config.epochs - trainer.epoch - 1)
        bar[0].update(done - bar[0].n, loss=loss, **{"tokens/s": int(rate), "ETA": duration(left / max(rate, 1e-9))})

    def on_epoch(tr: NNLMTrainer, path: Path | None) -> None:
        bar[0].close()
        mark = " (best)" if tr.best_epoch == tr.epoch else ""
        print(f"  epoch {tr.epoch}: training loss {tr.history['train_loss'][-1]:.4f} nats/word, validation perplexity "
              f"{tr.history['val_ppl'][-1]:.2f}{mark} → {path}")
        if not tr.done:
            new_bar()

    new_bar()
    try:
        done = trainer.fit(out, None if args.max_time is None else 60 * args.max_time, on_batch, on_epoch)
    except FloatingPointError as e:  # the last good checkpoint stays; no broken one is written
        bar[0].clear()
        raise UserError(f"{e} (now --lr {config.lr:g})") from None
    except BaseException:  # a full disk, Ctrl-C: the error line, not a half-drawn bar
        bar[0].clear()
        raise
    if not done:
        bar[0].clear()
        print(f"stopped by --max-time in epoch {trainer.epoch + 1} of {config.epochs}; continue with --resume {out}")
        return 0
    why = "early stopping" if trainer.epoch < config.epochs else f"{config.epochs} epochs"
    print(f"done ({why}; {trainer.epoch - start_epoch} epochs in {duration(time.perf_counter() - started)}): best "
          f"validation perplexity {trainer.best_ppl:.2f} at epoch {trainer.best_epoch}: {out / str(trainer.best_checkpoint)}")
    return 0


# -- eval and sample -------------------------------------------------------------------------------
def _load(path: str) -> tuple[Any, list[str], Any]:
    from dlia.models.nnlm import load_model

    p = Path(path)
    if not p.exists():
        raise UserError(f"no such checkpoint: {p} (write one with 'dlia nnlm train CORPUS')")
    if p.is_dir():
        raise UserError(f"{p} is a folder; give one of its checkpoint files (nnlm_epoch*.npz)")
    return load_model(p)  # a CheckpointError is one line, said by dlia's main


def evaluate(args: argparse.Namespace) -> int:
    from dlia.models.nnlm import perplexity

    model, vocab, config = _load(args.checkpoint)
    sentences = _sentences(args.text, config.lowercase, "TEXT")
    ids = _encode(sentences, vocab, args.text)
    words = sum(len(s) for s in ids)
    known = set(vocab)
    unknown = sum(w not in known for s in sentences for w in s)
    if unknown == words:
        raise UserError(f"every word of {args.text} ({words:,}) is outside the model's vocabulary; its perplexity would "
                        f"only say how well the model predicts <unk> (check --lowercase, or the language)")
    ppl = perplexity(model, ids)
    print(f"{args.text}: perplexity {ppl:.2f} over {words + len(ids):,} predicted tokens ({len(ids):,} sentences, "
          f"{words:,} words + one </s> each; {unknown:,} unknown words scored as <unk>)")
    return 0


def sample(args: argparse.Namespace) -> int:
    from dlia.models.nnlm import generate_iter

    if args.n > MAX_SAMPLES:
        raise UserError(f"--n {args.n:,} is more sentences than anyone reads; at most {MAX_SAMPLES:,}")
    if args.max_len > MAX_SAMPLES:
        raise UserError(f"--max-len {args.max_len:,} is more words than a sentence needs; at most {MAX_SAMPLES:,}")
    model, vocab, _ = _load(args.checkpoint)
    for s in generate_iter(model, args.n, max_len=args.max_len, seed=args.seed):  # each printed as it comes
        print(" ".join(vocab[i] for i in s), flush=True)
    return 0


#: the most sentences ``sample`` draws in one run
MAX_SAMPLES = 1_000_000
