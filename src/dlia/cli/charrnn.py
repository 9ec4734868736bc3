"""``dlia char-rnn``: train a character-level language model on any UTF-8 text (tiny-shakespeare by
default), resume it exactly, and sample text from it, streamed as it is generated."""

from __future__ import annotations

import argparse
import sys

from dlia.cli.common import (
    best_file,
    check_memory,
    check_output,
    duration,
    keep_run_settings,
    model_path,
    non_negative_float,
    non_negative_int,
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
RUNS = "runs/char-rnn"


def _fraction(low_open: bool) -> type:
    """An argparse type for a number in (0, 1] (``low_open``) or [0, 1)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        ok = 0 < value <= 1 if low_open else 0 <= value < 1
        if not ok:
            raise argparse.ArgumentTypeError(f"must be in {'(0, 1]' if low_open else '[0, 1)'}, got {value:g}")
        return value

    return parse






#: train flags that set a ``CharRNNConfig`` field: (flag, field, argparse type, help)
_CONFIG_FLAGS = [
    ("--model", "model", None, "lstm, gru or rnn"),
    ("--rnn-size", "rnn_size", positive_int, "hidden units per layer (and embedding size)"),
    ("--num-layers", "num_layers", positive_int, "recurrent layers"),
    ("--seq-length", "seq_length", positive_int, "time steps of truncated backpropagation"),
    ("--batch-size", "batch_size", positive_int, "parallel streams of text per batch"),
    ("--learning-rate", "learning_rate", positive_float, "learning rate"),
    ("--lr-decay", "lr_decay", _fraction(True), "learning-rate factor per epoch"),
    ("--lr-decay-after", "lr_decay_after", non_negative_int, "epochs before the decay starts"),
    ("--optimizer", "optimizer", None, "adam or rmsprop"),
    ("--dropout", "dropout", _fraction(False), "dropout between layers and before the output layer"),
    ("--grad-clip", "grad_clip", non_negative_float, "clip the global gradient norm to this (0: off)"),
    ("--max-epochs", "max_epochs", positive_int, "epochs to train"),
    ("--train-frac", "train_frac", _fraction(True), "fraction of the batches that train"),
    ("--val-frac", "val_frac", _fraction(True), "fraction of the batches that validate"),
    ("--eval-every", "eval_every", positive_int, "iterations between validations (each writes a checkpoint)"),
]


def register(sub: argparse._SubParsersAction) -> None:
    from dlia.models.charrnn import MODELS, OPTIMIZERS, SAMPLE_MODES, CharRNNConfig

    p = sub.add_parser("char-rnn", help="character-level language model: train on any text, sample from it",
                       description="char-rnn: a character-level RNN/GRU/LSTM language model (docs/rnn.md).")
    cmds = p.add_subparsers(dest="charrnn_command", metavar="ACTION", required=True)

    t = cmds.add_parser("train", help="train on a UTF-8 text file (default: tiny-shakespeare); --resume continues exactly")
    t.add_argument("file", nargs="?", type=path_name, metavar="FILE", help="UTF-8 text (default: tiny-shakespeare, shipped)")
    defaults = CharRNNConfig()
    for flag, name, kind, text in _CONFIG_FLAGS:
        choices = MODELS if name == "model" else OPTIMIZERS if name == "optimizer" else None
        t.add_argument(flag, dest=name, type=kind, choices=choices, default=None,
                       help=f"{text} (default {getattr(defaults, name)})")
    t.add_argument("--checkpoint-dir", type=path_name, default=None,
                   help=f"folder of the checkpoints (default {RUNS}; with --resume, the resumed checkpoint's folder)")
    t.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    t.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="train on the CPU (NumPy) or a CUDA GPU (CuPy)")
    t.add_argument("--resume", type=path_name, metavar="CKPT_OR_DIR",
                   help="continue a run exactly from a checkpoint (or the latest in a folder)")
    t.add_argument("--max-time", type=positive_float, metavar="MINUTES",
                   help="stop after this many minutes of training, with a checkpoint")
    t.set_defaults(run=train)

    s = cmds.add_parser("sample", help="generate text from a checkpoint, streamed to stdout")
    s.add_argument("checkpoint", type=path_name, metavar="CKPT_OR_DIR",
                   help="a checkpoint, or a run folder (its best checkpoint is used)")
    s.add_argument("--prime", default="", help="text to start from (default: a random first character)")
    s.add_argument("--length", type=positive_int, default=2000, help="characters to generate (default 2000)")
    s.add_argument("--temperature", type=positive_float, default=1.0, help="below 1: safer, above 1: wilder (default 1)")
    s.add_argument("--top-k", type=positive_int, default=None, help="sample among the K most likely characters only")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0): the same seed gives the same text")
    s.add_argument("--sample", choices=SAMPLE_MODES, default="sample",
                   help="sample every character, take the argmax, or sample only at word starts (spaces)")
    s.set_defaults(run=sample)

    pl = cmds.add_parser("plot", help="draw a run's loss curve (training and validation) from a checkpoint")
    pl.add_argument("checkpoint", type=path_name, metavar="CKPT_OR_DIR",
                    help="a checkpoint, or a run folder (its best checkpoint is used)")
    pl.add_argument("-o", "--output", type=picture, required=True, metavar="PNG", help="the picture to write")
    pl.set_defaults(run=plot)


def shakespeare() -> str:
    """The tiny-shakespeare text (1.1 MB): the copy shipped inside the package, else a data folder's.

    Raises:
        DataNotFoundError: naming where it looked.
    """
    from dlia.data import DataError, tinyshakespeare

    try:
        return tinyshakespeare()
    except DataError as e:  # a data folder's copy that is not UTF-8 text
        raise UserError(str(e)) from None


def _corpus(file: str | None) -> tuple[str, str]:
    """(text, its name): FILE, or tiny-shakespeare."""
    from dlia.text import TextError, read_text

    if file is None:
        return shakespeare(), "tiny-shakespeare"
    try:
        return read_text(file), file
    except TextError as e:
        raise UserError(str(e)) from None


def _device(name: str):
    import dlia

    try:
        return dlia.Device(name)
    except RuntimeError as e:  # no CuPy or no CUDA device
        raise UserError(str(e)) from None






def train(args: argparse.Namespace) -> int:
    from dlia.io.checkpoint import remove_stale_checkpoint_temps
    from dlia.models.charrnn import PREFIX, CharData, CharRNNConfig, CharRNNTrainer, fit, read_checkpoint, training_bytes
    from dlia.text import CharVocab

    check_output(args.checkpoint_dir, "--checkpoint-dir", folder=True)
    given = {name: getattr(args, name) for _, name, _, _ in _CONFIG_FLAGS if getattr(args, name) is not None}
    if args.seed is not None:
        given["seed"] = args.seed
    resume_from = resume_path(args.resume, PREFIX, "char-rnn") if args.resume else None
    if resume_from is not None:
        config, vocab, _ = read_checkpoint(resume_from)  # checked before anything is built from it
        out = run_folder(args.checkpoint_dir, resume_from, PREFIX, RUNS)  # never mix two runs' checkpoints
        keep_run_settings(config, given, "max_epochs")
    else:
        fractions = given.get("train_frac", CharRNNConfig.train_frac), given.get("val_frac", CharRNNConfig.val_frac)
        if sum(fractions) > 1 + 1e-9:
            raise UserError("--train-frac {:g} and --val-frac {:g} add up to more than 1".format(*fractions))
        try:
            config = CharRNNConfig(**given)
        except ValueError as e:  # in the user's words: the flag, not the config field
            message = str(e).removeprefix("char-rnn config: ")
            for flag, name, _, _ in _CONFIG_FLAGS:
                message = message.replace(f"{name} must", f"{flag} must")
            raise UserError(message) from None
        out = run_folder(args.checkpoint_dir, None, PREFIX, RUNS)
    text, name = _corpus(args.file)
    if resume_from is None:
        vocab = CharVocab.from_text(text)
    try:
        ids = vocab.encode(text)
    except ValueError as e:  # the text holds characters the resumed run never saw
        raise UserError(f"{name} is not the text {resume_from} was trained on ({e})") from None
    del text
    try:
        data = CharData(ids, config.batch_size, config.seq_length, config.train_frac, config.val_frac)
    except ValueError as e:
        raise UserError(f"{name}: {e}") from None
    check_memory(f"--rnn-size {config.rnn_size} --num-layers {config.num_layers} --batch-size {config.batch_size} "
                 f"--seq-length {config.seq_length}", training_bytes(config, len(vocab)), "use a smaller model or batch")
    device = _device(args.device)
    if resume_from is not None:
        remove_stale_checkpoint_temps(resume_from.parent, PREFIX)  # a save killed mid-write left its temporary file
        trainer = CharRNNTrainer.resume(resume_from, ids, device, max_epochs=config.max_epochs)
        print(f"resuming from {resume_from} (iteration {trainer.iteration}, epoch {trainer.epoch:.2f})")
    else:
        trainer = CharRNNTrainer(config, vocab, data, device)
    total = trainer.total_iterations
    print(f"{name}: {len(ids):,} characters, {len(vocab)} distinct; {data.n_train} training and {data.n_val} "
          f"validation batches of {config.batch_size}×{config.seq_length}; {config.num_layers}×{config.rnn_size} "
          f"{config.model.upper()}, {sum(p.size for p in trainer.model.parameters()):,} parameters")
    if trainer.iteration >= total:
        print(f"already trained for {config.max_epochs} epochs; nothing to do (raise --max-epochs to continue)")
        return 0
    chars = config.batch_size * config.seq_length
    bars = EvaluationBars(trainer, total, config.eval_every, config.max_epochs, "chars/s")
    with bars.running(f"lower --learning-rate (now {config.learning_rate:g}) or --grad-clip"):
        done = fit(trainer, out, None if args.max_time is None else 60 * args.max_time,
                   lambda loss: bars.step(loss, chars),
                   lambda val, path: bars.evaluated(f"  validation loss {val:.4f} nats/char → {path}"))
    best = best_file(trainer.best_checkpoint, out, resume_from) or trainer.best_checkpoint
    print(f"best validation loss {trainer.best_val_loss:.4f} nats/char: {best} "
          f"(trained {duration(trainer.elapsed)} in all)")
    if not done:
        print(f"stopped by --max-time at epoch {trainer.epoch:.2f} of {config.max_epochs}; continue with --resume {out}")
    return 0


def sample(args: argparse.Namespace) -> int:
    from dlia.models import charrnn

    path = model_path(args.checkpoint, charrnn.PREFIX, "char-rnn")
    config, vocab, ckpt = charrnn.read_checkpoint(path)
    unknown = vocab.unknown(args.prime)
    if unknown:
        c = unknown[0]
        raise UserError(f"the prime character {c!r} (U+{ord(c):04X}) is not in the vocabulary of {path.name} "
                        f"({len(vocab)} characters)")
    model = charrnn.CharRNN(config, len(vocab))
    model.load_state_dict(ckpt.model_state)  # the weights read_checkpoint checked: the file is read once
    model.eval()
    out = sys.stdout
    out.write(args.prime)
    last = args.prime[-1:]
    for ch in charrnn.sample(model, vocab, args.prime, args.length, args.temperature, args.top_k, args.sample, args.seed):
        out.write(ch)
        out.flush()
        last = ch
    if last != "\n":
        out.write("\n")
    return 0


def plot(args: argparse.Namespace) -> int:
    from dlia.models import charrnn
    from dlia.viz.plots import loss_curve_plot

    path = model_path(args.checkpoint, charrnn.PREFIX, "char-rnn")
    check_output(args.output, "--output", inputs=[("CKPT_OR_DIR", str(path))])
    config, vocab, ckpt = charrnn.read_checkpoint(path)
    history = ckpt.history or {}
    train, val, at = (list(history.get(k, [])) for k in ("train_loss", "val_loss", "val_iteration"))
    if not train and not val:
        raise UserError(f"{path.name} holds no loss history to draw")
    title = (f"char-rnn {config.num_layers}x{config.rnn_size} {config.model}, dropout {config.dropout:g}, "
             f"{len(vocab)} characters: best validation {min(val):.4f}" if val else f"char-rnn {path.name}")
    out = loss_curve_plot(train, at[:len(val)], val, title, args.output)
    print(f"loss curve of {len(train)} iterations → {out}")
    return 0
