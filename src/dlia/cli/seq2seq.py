"""``dlia seq2seq``: train an encoder–decoder on the dates task or a parallel TSV corpus, resume it
exactly, translate with greedy or beam search (and draw the attention), evaluate on a test set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dlia.cli.common import (
    best_file,
    check_memory,
    check_output,
    duration,
    model_path,
    non_negative_float,
    path_name,
    picture,
    positive_float,
    positive_int,
    resume_path,
    run_folder,
)
from dlia.cli.errors import UserError
from dlia.cli.progress import EvaluationBars

#: the default of --checkpoint-dir
RUNS = "runs/seq2seq"
#: the most examples drawn for the dates task, beam width and output length (larger ones are refused)
MAX_TRAIN_SIZE, MAX_BEAM = 10_000_000, 1000
MAX_LEN = 10_000  # = dlia.models.translation.MAX_DECODE_LEN (the models are imported only when a command runs)
#: examples drawn with --show-attention when translating many texts
MAX_PICTURES = 4


def _at_most(limit: int) -> Any:
    def parse(text: str) -> int:
        value = positive_int(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"must be at most {limit:,}, got {value:,}")
        return value

    return parse


def _probability(text: str) -> float:
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {value:g}")
    return value


def _dropout(text: str) -> float:
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value:g}")
    return value


#: train flags: (flag, config ("model" or "train"), field, argparse type, CLI default, help)
_MODEL_FLAGS = [
    ("--cell", "cell", None, "gru", "gru, lstm or rnn (encoder and decoder)"),
    ("--embedding-size", "embedding_size", positive_int, 32, "source and target embeddings"),
    ("--hidden-size", "hidden_size", positive_int, 64, "hidden units (per encoder direction)"),
    ("--layers", "layers", positive_int, 1, "stacked recurrent layers in the encoder and the decoder"),
    ("--attention", "attention", None, "bahdanau", "none, bahdanau (additive) or luong (dot)"),
    ("--dropout", "dropout", _dropout, 0.2, "dropout on embeddings, between layers and before the output layer"),
]
_TRAIN_FLAGS = [
    ("--batch-size", "batch_size", positive_int, 64, "pairs per batch"),
    ("--learning-rate", "learning_rate", positive_float, 5e-3, "Adam's learning rate"),
    ("--grad-clip", "grad_clip", non_negative_float, 5.0, "clip the global gradient norm to this (0: off)"),
    ("--sampling", "sampling", _probability, 0.0, "scheduled sampling: probability of feeding the model's own output"),
    ("--max-epochs", "max_epochs", positive_int, 10, "epochs to train"),
    ("--max-steps", "max_steps", positive_int, None, "stop after this many iterations (default: no limit)"),
    ("--eval-every", "eval_every", positive_int, None, "iterations between evaluations (default: once per epoch)"),
    ("--beam", "beam", _at_most(MAX_BEAM), 1, "beam width of the evaluations' decoding (1: greedy)"),
    ("--length-norm", "length_norm", non_negative_float, 0.0, "GNMT length normalisation α of beam search"),
]


def register(sub: argparse._SubParsersAction) -> None:
    from dlia.models.seq2seq import ATTENTIONS, CELLS
    from dlia.models.translation import TOKEN_KINDS

    p = sub.add_parser("seq2seq", help="encoder-decoder with attention: train on dates or a TSV corpus, translate",
                       description="seq2seq: an RNN encoder-decoder with attention (docs/seq2seq.md).")
    cmds = p.add_subparsers(dest="seq2seq_command", metavar="ACTION", required=True)

    t = cmds.add_parser("train", help="train on the dates task or a parallel TSV corpus; --resume continues exactly")
    t.add_argument("--task", type=path_name, default=None, metavar="dates|FILE.tsv",
                   help="the dates task (default) or a UTF-8 file of source<TAB>target lines")
    for flag, name, kind, default, text in _MODEL_FLAGS:
        choices = CELLS if name == "cell" else ATTENTIONS if name == "attention" else None
        t.add_argument(flag, dest=name, type=kind, choices=choices, default=None, help=f"{text} (default {default})")
    t.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None,
                   help="a bidirectional encoder (default: on)")
    t.add_argument("--tokens", choices=TOKEN_KINDS, default=None,
                   help="characters or whitespace-separated words (default: char for dates, word for a TSV file)")
    for flag, name, kind, default, text in _TRAIN_FLAGS:
        t.add_argument(flag, dest=name, type=kind, default=None, help=f"{text} (default {default})")
    t.add_argument("--train-size", type=_at_most(MAX_TRAIN_SIZE), default=None,
                   help="dates task: training pairs drawn (default 20000)")
    t.add_argument("--checkpoint-dir", type=path_name, default=None,
                   help=f"folder of the checkpoints (default {RUNS}; with --resume, the resumed checkpoint's folder)")
    t.add_argument("--resume", type=path_name, metavar="CKPT_OR_DIR",
                   help="continue a run exactly from a checkpoint (or the latest in a folder)")
    t.add_argument("--max-time", type=positive_float, metavar="MINUTES",
                   help="stop after this many minutes of training, with a checkpoint")
    t.add_argument("--seed", type=int, default=None, help="random seed: data, weights, batches (default 0)")
    t.set_defaults(run=train)

    tr = cmds.add_parser("translate", help="translate texts (arguments, or lines of stdin) with a trained model")
    tr.add_argument("checkpoint", type=path_name, metavar="CKPT_OR_DIR",
                    help="a checkpoint, or a run folder (its best checkpoint is used)")
    tr.add_argument("texts", nargs="*", metavar="TEXT", help="texts to translate (none: one per line of stdin, streamed)")
    _decoding_flags(tr)
    tr.add_argument("--show-attention", type=picture, metavar="PNG",
                    help=f"draw the attention matrices (of the first {MAX_PICTURES} texts) into this picture")
    tr.set_defaults(run=translate)

    e = cmds.add_parser("eval", help="exact match and BLEU of a trained model on a test set")
    e.add_argument("checkpoint", type=path_name, metavar="CKPT_OR_DIR",
                   help="a checkpoint, or a run folder (its best checkpoint is used)")
    e.add_argument("--task", type=path_name, default=None, metavar="dates|FILE.tsv",
                   help="the dates test sets, or every pair of a TSV file (default: the run's own test sets)")
    _decoding_flags(e)
    e.set_defaults(run=evaluate)


def _decoding_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--beam", type=_at_most(MAX_BEAM), default=1, help="beam width (default 1: greedy)")
    p.add_argument("--length-norm", type=non_negative_float, default=0.0,
                   help="GNMT length normalisation α of beam search (default 0)")
    p.add_argument("--max-len", type=_at_most(MAX_LEN), default=None,
                   help="the most output tokens (default: the run's, twice its longest training target)")


# -- train -----------------------------------------------------------------------------------------
def _task(name: str | None, tokens: str | None, train_size: int | None, seed: int):
    """The task of --task (dates when None), in the user's words when something is wrong."""
    from dlia.data.tasks import dates_task, tsv_task
    from dlia.text import TextError

    if name is None or name == "dates":
        if tokens == "word":
            raise UserError("the dates task is character-level; leave out --tokens word")
        return dates_task(train_size or 20_000, seed)
    if train_size is not None:
        raise UserError("--train-size sets the size of the dates task; a TSV file's pairs are all used")
    try:
        return tsv_task(name, tokens or "word", seed)
    except TextError as e:
        raise UserError(str(e)) from None
    except ValueError as e:
        raise UserError(f"--task {e}") from None


def _configs(args: argparse.Namespace):
    """(Seq2SeqConfig, TrainConfig) from the flags, with the CLI's defaults; a bad value named by its flag."""
    from dlia.models.seq2seq import Seq2SeqConfig
    from dlia.models.translation import TrainConfig

    seed = 0 if args.seed is None else args.seed
    model = {name: default if getattr(args, name) is None else getattr(args, name) for _, name, _, default, _ in _MODEL_FLAGS}
    model["bidirectional"] = True if args.bidirectional is None else args.bidirectional
    train = {name: (default if getattr(args, name) is None else getattr(args, name)) for _, name, _, default, _ in _TRAIN_FLAGS}
    train["max_steps"] = train["max_steps"] or 0
    train["eval_every"] = train["eval_every"] or 0
    try:
        return Seq2SeqConfig(**model, seed=seed), TrainConfig(**train, seed=seed)
    except ValueError as e:
        message = str(e).removeprefix("seq2seq config: ").removeprefix("seq2seq training: ")
        for flag, name, *_ in _MODEL_FLAGS + _TRAIN_FLAGS:
            message = message.replace(f"{name} must", f"{flag} must")
        raise UserError(message) from None


def _given(args: argparse.Namespace) -> list[str]:
    """The model and data flags given on the command line (ignored when resuming)."""
    names = [(flag, name) for flag, name, *_ in _MODEL_FLAGS + _TRAIN_FLAGS if name not in ("max_epochs", "max_steps")]
    names += [("--bidirectional", "bidirectional"), ("--tokens", "tokens"), ("--train-size", "train_size"), ("--seed", "seed")]
    return [f"{flag} {getattr(args, name)}" for flag, name in names if getattr(args, name) is not None]


def train(args: argparse.Namespace) -> int:
    from dlia.data.tasks import task_from_description
    from dlia.io import CheckpointError
    from dlia.io.checkpoint import remove_stale_checkpoint_temps
    from dlia.models.translation import PREFIX, Seq2SeqTrainer, read_checkpoint, training_bytes, vocabularies

    check_output(args.checkpoint_dir, "--checkpoint-dir", folder=True, inputs=[("--task", args.task)])
    resume_from = resume_path(args.resume, PREFIX, "seq2seq") if args.resume else None
    if resume_from is not None:
        saved = read_checkpoint(resume_from)  # checked before anything is built from it
        out = run_folder(args.checkpoint_dir, resume_from, PREFIX, RUNS)  # never mix two runs' checkpoints
        ignored = _given(args)
        if ignored:
            print(f"resuming with the run's own settings; ignoring {', '.join(ignored)}")
        recorded = saved.task
        if args.task is not None and (args.task == "dates") != (recorded["task"] == "dates"):
            trained_on = "the dates task" if recorded["task"] == "dates" else recorded.get("path")
            raise UserError(f"{resume_from.name} was trained on {trained_on}, not --task {args.task}")
        try:
            task = task_from_description(recorded, None if args.task in (None, "dates") else args.task)
        except ValueError as e:
            raise UserError(f"cannot resume {resume_from.name}: {e}") from None
        model_config, config, vocabs = saved.model_config, saved.train, (saved.src_vocab, saved.tgt_vocab)
        if args.max_epochs is not None:
            config.max_epochs = args.max_epochs
        if args.max_steps is not None:
            config.max_steps = args.max_steps
    else:
        model_config, config = _configs(args)
        out = run_folder(args.checkpoint_dir, None, PREFIX, RUNS)
        task = _task(args.task, args.tokens, args.train_size, config.seed)
        vocabs = vocabularies(task)
    longest_src = max(len(vocabs[0].split(s)) for s, _ in task.train)
    longest_tgt = max(len(vocabs[1].split(t)) for _, t in task.train)
    check_memory(f"--embedding-size {model_config.embedding_size} --hidden-size {model_config.hidden_size} --layers "
                 f"{model_config.layers} --batch-size {config.batch_size}",
                 training_bytes(model_config, vocabs[0].size, vocabs[1].size, config.batch_size, longest_src, longest_tgt + 1),
                 "use a smaller model or batch")
    if resume_from is not None:
        remove_stale_checkpoint_temps(resume_from.parent, PREFIX)  # a save killed mid-write left its temporary file
        try:
            trainer = Seq2SeqTrainer.resume(resume_from, task, config.max_epochs, config.max_steps)
        except CheckpointError as e:
            raise UserError(str(e)) from None
        print(f"resuming from {resume_from} (iteration {trainer.iteration}, epoch {trainer.epoch:.2f})")
    else:
        trainer = Seq2SeqTrainer(model_config, config, task, vocabs)
    mc, total = model_config, trainer.total_iterations
    print(f"{task.name}: {len(task.train):,} training, {len(task.val):,} validation pairs, "
          f"{' and '.join(f'{len(v):,} test ({k})' for k, v in task.tests.items())}; {task.tokens} tokens, "
          f"{vocabs[0].size} source and {vocabs[1].size} target ids; {trainer.n_batches} batches of ≤ {config.batch_size} "
          f"per epoch in {len(trainer.buckets.buckets)} length buckets")
    print(f"model: {mc.layers}×{mc.hidden_size} {'bidirectional ' if mc.bidirectional else ''}{mc.cell.upper()} encoder, "
          f"{mc.attention} attention, embeddings {mc.embedding_size}, "
          f"{sum(p.size for p in trainer.model.parameters()):,} parameters")
    if trainer.iteration >= total:
        print("already trained to its end; nothing to do (raise --max-epochs or --max-steps to continue)")
    else:
        _train_loop(trainer, out, args.max_time)
    best = _best_path(trainer, out, resume_from)
    print(f"best validation loss {trainer.best_val_loss:.4g}: {best} (trained {duration(trainer.elapsed)} in all)")
    if trainer.iteration < total:
        print(f"stopped by --max-time at epoch {trainer.epoch:.2f}; continue with --resume {out}")
        return 0
    if best is not None and best.is_file():
        trainer.model.load_state_dict(read_checkpoint(best).checkpoint.model_state)
    _report_tests(trainer.model, vocabs, task.tests, config.beam, config.length_norm, trainer.max_len,
                  f"test sets, best checkpoint ({'greedy' if config.beam == 1 else f'beam {config.beam}'})")
    return 0


def _train_loop(trainer: Any, out: Path, max_time: float | None) -> None:
    from dlia.models.translation import fit

    config = trainer.config
    bars = EvaluationBars(trainer, trainer.total_iterations, trainer.eval_every, config.max_epochs, "tokens/s")
    with bars.running(f"lower --learning-rate (now {config.learning_rate:g}) or --grad-clip"):
        fit(trainer, out, None if max_time is None else 60 * max_time, bars.step,
            lambda ev, path: bars.evaluated(f"  validation: loss {ev.loss:.4g}, exact match {ev.exact:.1%}, "
                                            f"BLEU {100 * ev.bleu:.1f} → {path}"))


def _best_path(trainer: Any, out: Path, resume_from: Path | None) -> Path | None:
    best = best_file(trainer.best_checkpoint, out, resume_from)
    return best if best is not None or trainer.best_checkpoint is None else out / trainer.best_checkpoint


def _report_tests(model: Any, vocabs: Any, tests: dict[str, list], beam: int, length_norm: float, max_len: int,
                  title: str) -> None:
    from dlia.models.translation import evaluate as measure

    sets = dict(tests)
    if len(sets) > 1:
        sets["all"] = [p for pairs in tests.values() for p in pairs]
    print(f"{title}:")
    width = max(map(len, sets))
    for name, pairs in sets.items():
        ev = measure(model, vocabs, pairs, beam, length_norm, max_len)
        print(f"  {name:<{width}}  {ev.n:6,} pairs: exact match {ev.exact:7.2%}, BLEU {100 * ev.bleu:5.1f}, loss {ev.loss:.4g}")


# -- translate and eval ----------------------------------------------------------------------------
def _check_text(vocab: Any, text: str) -> None:
    """Refuse an empty text, or one with tokens the model does not know (named)."""
    from dlia.models.translation import UnknownTokenError

    if not vocab.split(text):
        raise UserError(f"cannot translate an empty text ({text!r})")
    try:
        vocab.encode(text)
    except UnknownTokenError as e:
        raise UserError(str(e)) from None


def translate(args: argparse.Namespace) -> int:
    from dlia.models.translation import PREFIX, read_checkpoint
    from dlia.models.translation import translate as run

    path = model_path(args.checkpoint, PREFIX, "seq2seq")
    check_output(args.show_attention, "--show-attention", inputs=[("CKPT_OR_DIR", str(path))])
    saved = read_checkpoint(path)
    vocabs = (saved.src_vocab, saved.tgt_vocab)
    for text in args.texts:  # every argument checked before the first output
        _check_text(vocabs[0], text)
    model = saved.model()
    max_len = args.max_len or saved.max_len
    shown = []
    lines = args.texts if args.texts else _stdin_lines()
    for text in lines:
        if not vocabs[0].split(text) and not args.texts:  # a blank line of stdin: a blank output line
            print(flush=True)
            continue
        _check_text(vocabs[0], text)
        result = run(model, vocabs, [text], args.beam, args.length_norm, max_len)[0]
        print(result.text, flush=True)
        if len(shown) < MAX_PICTURES:
            shown.append(result)
    if args.show_attention:
        if saved.model_config.attention == "none":
            raise UserError(f"{path.name} has no attention (--attention none) to show")
        if not shown:
            raise UserError("no text was translated, so there is no attention to show")
        from dlia.viz.attention import attention_plot

        picture_path = attention_plot([(r.source, r.tokens, r.attention) for r in shown], args.show_attention,
                                      f"attention of {path.name} ({'greedy' if args.beam == 1 else f'beam {args.beam}'})")
        print(f"attention of {len(shown)} translation{'s' * (len(shown) > 1)} → {picture_path}", file=sys.stderr)
    return 0


def _stdin_lines() -> Any:
    """The lines of stdin as text, one at a time (streamed), each decoded as UTF-8 on its own: a line
    that is not UTF-8 is one error naming its number (the lines before it are translated already)."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream without bytes under it (tests that replace sys.stdin)
        yield from (line.rstrip("\r\n") for line in sys.stdin)
        return
    for number, raw in enumerate(stream, 1):
        try:
            yield raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise UserError(f"line {number} of stdin is not UTF-8 text") from None


def evaluate(args: argparse.Namespace) -> int:
    from dlia.data.tasks import dates_task, task_from_description
    from dlia.models.translation import PREFIX, read_checkpoint
    from dlia.text import TextError, read_parallel_tsv

    path = model_path(args.checkpoint, PREFIX, "seq2seq")
    saved = read_checkpoint(path)
    if args.task is None:
        try:
            tests = task_from_description(saved.task).tests
        except TextError as e:
            raise UserError(f"the run's corpus: {e}") from None
        except ValueError as e:
            raise UserError(f"{path.name}: {e}") from None
        what = "the run's test sets"
    elif args.task == "dates":
        d = saved.task if saved.task.get("task") == "dates" else {}
        tests = dates_task(d.get("train_size", 20_000), d.get("seed", 0), d.get("val_size", 1000), d.get("test_size", 1000)).tests
        what = "the dates test sets"
    else:
        try:
            tests = {args.task: read_parallel_tsv(args.task)}
        except TextError as e:
            raise UserError(str(e)) from None
        what = f"every pair of {args.task}"
    _report_tests(saved.model(), (saved.src_vocab, saved.tgt_vocab), tests, args.beam, args.length_norm,
                  args.max_len or saved.max_len,
                  f"{path.name} on {what} ({'greedy' if args.beam == 1 else f'beam {args.beam}'}; unknown tokens read as <unk>)")
    return 0
