"""``dlia caption``: images and descriptions on generated shape scenes (docs/captioning.md).

Each action has its own parser-building function and run function, registered from ``register``:
``align`` (``_add_align``/``_align``) trains the image–sentence ranking model, ``rank``
(``_add_rank``/``_rank``) lists the best sentences for an image and draws the alignment.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from dlia.cli.common import (
    check_memory,
    check_output,
    duration,
    non_negative_float,
    path_name,
    picture,
    positive_float,
    positive_int,
    resume_path,
)
from dlia.cli.errors import UserError
from dlia.cli.progress import Progress

#: the default of ``dlia caption align --checkpoint-dir``
ALIGN_RUNS = "runs/caption-align"
#: the seed of the held-out scenes of ``dlia caption align`` (its evaluation, and ``dlia caption
#: rank``'s default candidates): every run is measured on the same scenes, whatever its own seed
HELD_OUT_SEED = 20150607


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("caption", help="images and descriptions: image–sentence ranking on generated shape scenes",
                       description="Images and descriptions on generated shape scenes (docs/captioning.md).")
    cmds = p.add_subparsers(dest="caption_command", metavar="ACTION", required=True)
    _add_align(cmds)
    _add_rank(cmds)


# -- scenes ----------------------------------------------------------------------------------------
def scene_vocab() -> list[str]:
    """The ranking model's vocabulary: padding, then the scene grammar's words."""
    from dlia.data.shapes import WORDS
    from dlia.models.alignment import make_vocab

    return make_vocab(WORDS)


def scene_pairs(n: int, seed: int, image_size: int, vocab: list[str]) -> Any:
    """``n`` generated scenes as ``alignment.Pairs``."""
    import numpy

    from dlia.data import scenes_dataset
    from dlia.models.alignment import Pairs

    scenes = scenes_dataset(n, seed=seed, size=image_size)
    images = numpy.stack([s.image for s in scenes])
    return Pairs.make(images, [s.sentence for s in scenes], vocab)


# -- align -----------------------------------------------------------------------------------------
#: align flags that set an ``AlignConfig`` field: (flag, field, argparse type, help)
_ALIGN_FLAGS = [
    ("--cell", "cell", None, "the sentence RNN: gru, lstm or rnn"),
    ("--embedding-size", "embedding_size", positive_int, "word vectors fed to the RNN"),
    ("--hidden-size", "hidden_size", positive_int, "the RNN's state per direction and the shared space"),
    ("--channels", "channels", positive_int, "filters of the CNN's first convolution (the second has twice)"),
    ("--image-size", "image_size", positive_int, "scene side in pixels (a multiple of 6, at least 24)"),
    ("--score", "score", None, "words: Σ_t max_i v_i·s_t (the paper); both: + Σ_i max_t v_i·s_t"),
    ("--margin", "margin", positive_float, "the ranking objective's margin"),
    ("--train-size", "train_size", positive_int, "generated training scenes"),
    ("--test-size", "test_size", positive_int, "held-out scenes (evaluation)"),
    ("--batch-size", "batch_size", positive_int, "scene–sentence pairs per batch"),
    ("--learning-rate", "learning_rate", positive_float, "Adam's learning rate"),
    ("--grad-clip", "grad_clip", non_negative_float, "clip the global gradient norm to this (0: off)"),
    ("--max-epochs", "max_epochs", positive_int, "epochs to train"),
    ("--eval-every", "eval_every", positive_int, "iterations between evaluations (each writes a checkpoint)"),
]


def _add_align(cmds: argparse._SubParsersAction) -> None:
    from dlia.models.alignment import CELLS, SCORES, AlignConfig

    t = cmds.add_parser("align", help="train the image–sentence ranking model (regions and words in one space)",
                        description="Train Karpathy & Fei-Fei's image–sentence alignment model, in small, on generated "
                                    "shape scenes; report Recall@1/5/10 and median rank both ways on held-out scenes.")
    defaults = AlignConfig()
    for flag, name, kind, text in _ALIGN_FLAGS:
        choices = CELLS if name == "cell" else SCORES if name == "score" else None
        t.add_argument(flag, dest=name, type=kind, choices=choices, default=None,
                       help=f"{text} (default {getattr(defaults, name)})")
    t.add_argument("--max-steps", type=positive_int, default=None,
                   help="stop after this many iterations in all (a checkpoint is written; --resume continues)")
    t.add_argument("--checkpoint-dir", type=path_name, default=None,
                   help=f"folder of the checkpoints (default {ALIGN_RUNS}; with --resume, the resumed checkpoint's folder)")
    t.add_argument("--seed", type=int, default=None, help="random seed: weights, training scenes, batch order (default 0)")
    t.add_argument("--resume", type=path_name, metavar="CKPT_OR_DIR",
                   help="continue a run exactly from a checkpoint (or the latest in a folder)")
    t.add_argument("--max-time", type=positive_float, metavar="MINUTES",
                   help="stop after this many minutes of training, with a checkpoint")
    t.set_defaults(run=_align)


def _align_config(args: argparse.Namespace) -> dict[str, Any]:
    given = {name: getattr(args, name) for _, name, _, _ in _ALIGN_FLAGS if getattr(args, name) is not None}
    if args.seed is not None:
        given["seed"] = args.seed
    return given


def _align(args: argparse.Namespace) -> int:
    from dlia.io import latest_checkpoint
    from dlia.io.checkpoint import remove_stale_checkpoint_temps
    from dlia.models.alignment import PREFIX, AlignConfig, AlignError, AlignTrainer, fit, read_checkpoint, training_bytes

    check_output(args.checkpoint_dir, "--checkpoint-dir", folder=True)
    given = _align_config(args)
    resume_from = resume_path(args.resume, PREFIX, "caption-align") if args.resume else None
    if resume_from is not None:
        config, vocab, _ = read_checkpoint(resume_from)  # checked before anything is built from it
        out = Path(args.checkpoint_dir) if args.checkpoint_dir else resume_from.parent
        other = latest_checkpoint(out, PREFIX) if out.resolve() != resume_from.parent.resolve() else None
        if other is not None:  # never mix two runs' checkpoints
            raise UserError(f"--checkpoint-dir {out} already holds checkpoints of another run ({other.name}); "
                            f"continue into {resume_from.parent} (leave out --checkpoint-dir) or an empty folder")
        ignored = [f"--{k.replace('_', '-')} {v}" for k, v in given.items() if k != "max_epochs" and v != getattr(config, k)]
        if ignored:
            print(f"resuming with the run's own settings; ignoring {', '.join(ignored)}")
        if "max_epochs" in given:
            config.max_epochs = given["max_epochs"]
    else:
        try:
            config = AlignConfig(**given)
        except AlignError as e:  # in the user's words: the flag, not the config field
            message = str(e).removeprefix("align config: ")
            for flag, name, _, _ in _ALIGN_FLAGS:
                message = message.replace(f"{name} must", f"{flag} must")
            raise UserError(message) from None
        if config.train_size < config.batch_size:
            raise UserError(f"--train-size {config.train_size} is smaller than one batch (--batch-size {config.batch_size})")
        vocab = scene_vocab()
        out = Path(args.checkpoint_dir or ALIGN_RUNS)
        if latest_checkpoint(out, PREFIX) is not None:  # never mix two runs' checkpoints
            raise UserError(f"{out} already holds checkpoints of an earlier run: continue it with --resume {out}, "
                            f"or train into another folder with --checkpoint-dir")
    check_memory(f"--image-size {config.image_size} --train-size {config.train_size} --test-size {config.test_size} "
                 f"--batch-size {config.batch_size} --hidden-size {config.hidden_size} --channels {config.channels}",
                 training_bytes(config, len(vocab)), "use fewer or smaller scenes, or a smaller model or batch")
    started = time.perf_counter()
    train = scene_pairs(config.train_size, config.seed, config.image_size, vocab)
    test = scene_pairs(config.test_size, HELD_OUT_SEED, config.image_size, vocab)
    made = time.perf_counter() - started
    if resume_from is not None:
        remove_stale_checkpoint_temps(resume_from.parent, PREFIX)  # a save killed mid-write left its temporary file
        trainer = AlignTrainer.resume(resume_from, train, test, max_epochs=config.max_epochs)
        print(f"resuming from {resume_from} (iteration {trainer.iteration}, epoch {trainer.epoch:.2f})")
    else:
        trainer = AlignTrainer(config, vocab, train, test)
    total = trainer.total_iterations if args.max_steps is None else min(args.max_steps, trainer.total_iterations)
    print(f"{len(train):,} training and {len(test):,} held-out scenes of {config.image_size}×{config.image_size} "
          f"({len(set(test.sentences)):,} distinct held-out sentences; made in {made:.1f}s); "
          f"{trainer.batches_per_epoch} batches of {config.batch_size} per epoch; "
          f"{sum(p.size for p in trainer.model.parameters()):,} parameters")
    if trainer.iteration >= total:
        print(f"already trained for {trainer.iteration} iterations; nothing to do (raise --max-epochs or --max-steps)")
        return 0
    start_it, t0 = trainer.iteration, time.perf_counter()
    bar: list[Progress] = []

    def new_bar() -> None:
        left = min(config.eval_every - trainer.iteration % config.eval_every, total - trainer.iteration)
        bar[:] = [Progress(total=left, desc=f"epoch {trainer.epoch:.2f}/{config.max_epochs}")]

    def on_step(loss: float) -> None:
        rate = (trainer.iteration - start_it) / max(time.perf_counter() - t0, 1e-9)
        eta = duration((total - trainer.iteration) / rate)
        bar[0].update(loss=loss, **{"pairs/s": int(rate * config.batch_size), "ETA": eta})

    def on_eval(result: Any, path: Path) -> None:
        bar[0].close()
        print(f"  held-out ({len(test)} pairs): {result.line()} → {path}")
        if trainer.iteration < total:
            new_bar()

    new_bar()
    try:
        done = fit(trainer, out, None if args.max_time is None else 60 * args.max_time, args.max_steps, on_step, on_eval)
    except FloatingPointError as e:  # the last good checkpoint stays
        bar[0].clear()
        raise UserError(f"{e}; lower --learning-rate (now {config.learning_rate:g})") from None
    except BaseException:
        bar[0].clear()
        raise
    best = trainer.best_checkpoint
    for folder in (out, resume_from.parent if resume_from is not None else out):
        if best is not None and (folder / best).is_file():
            best = folder / best
            break
    print(f"best mean R@1 {100 * trainer.best_r1:.1f}%: {best} (trained {duration(trainer.elapsed)} in all)")
    if not done:
        print(f"stopped by --max-time at epoch {trainer.epoch:.2f} of {config.max_epochs}; continue with --resume {out}")
    elif trainer.iteration < trainer.total_iterations:
        print(f"stopped by --max-steps at iteration {trainer.iteration}; continue with --resume {out}")
    return 0


# -- rank ------------------------------------------------------------------------------------------
def _add_rank(cmds: argparse._SubParsersAction) -> None:
    r = cmds.add_parser("rank", help="list the sentences that best describe an image (ranking model), draw the alignment",
                        description="Score candidate sentences against an image with a model of 'dlia caption align' "
                                    "and list the best; --show-alignment draws which words matched which regions.")
    r.add_argument("checkpoint", type=path_name, metavar="CKPT_OR_DIR",
                   help="a checkpoint of 'dlia caption align', or its run folder (the best checkpoint is used)")
    r.add_argument("image", type=path_name, metavar="IMAGE", help="the picture (resized to the model's image size)")
    r.add_argument("--sentences", type=path_name, metavar="FILE",
                   help="candidate sentences, one per line, UTF-8 (default: the distinct sentences of the run's "
                        "held-out scenes)")
    r.add_argument("--top", type=positive_int, default=5, metavar="K", help="sentences to list (default 5)")
    r.add_argument("--show-alignment", type=picture, metavar="PNG",
                   help="draw the image, its regions and the best sentence's words linked to the regions they matched")
    r.set_defaults(run=_rank)


def model_path(given: str, prefix: str, kind: str, command: str) -> Path:
    """The checkpoint a command reads: the file given, or in a run folder its best checkpoint (the
    latest one's record of it), else the latest."""
    from dlia.io import CheckpointError, latest_checkpoint, load_checkpoint

    p = Path(given)
    if not p.is_dir():
        if not p.exists():
            raise UserError(f"no such checkpoint or folder: {p}")
        return p
    latest = latest_checkpoint(p, prefix)
    if latest is None:
        raise UserError(f"no {kind} checkpoint in {p} (files named {prefix}_epoch*.npz, written by '{command}')")
    try:
        best = load_checkpoint(latest).extra.get("best_checkpoint")
    except CheckpointError:
        return latest  # reported in full when it is read again
    if isinstance(best, str) and "/" not in best and (p / best).is_file():
        return p / best
    return latest


def read_scene_image(path: str, size: int) -> Any:
    """The picture at ``path`` as uint8 (size, size, 3) RGB; another size is resized (nearest pixel,
    so the scene's flat colours stay exact), a note says so."""
    import numpy
    from PIL import Image

    from dlia.cli.common import eight_bit, read_image

    im = read_image(path, bytes_per_pixel=8)
    if im.width == 0 or im.height == 0:
        raise UserError(f"{path} has no pixels")
    im = eight_bit(im).convert("RGB")
    if im.size != (size, size):
        print(f"note: {path} is {im.width}×{im.height}; the model reads {size}×{size} scenes, so it is resized")
        im = im.resize((size, size), Image.NEAREST)
    return numpy.asarray(im, dtype=numpy.uint8).copy()


def read_sentences(path: str, vocab: list[str]) -> list[str]:
    """The non-blank lines of the UTF-8 file at ``path``, each checked to use only ``vocab``'s words."""
    from dlia.text import TextError, read_text

    try:
        text = read_text(path)
    except TextError as e:
        raise UserError(str(e)) from None
    known = set(vocab[1:])
    sentences = []
    for n, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words:
            continue
        unknown = sorted({w for w in words if w not in known})
        if unknown:
            raise UserError(f"{path}, line {n}: {', '.join(repr(w) for w in unknown)} "
                            f"{'is' if len(unknown) == 1 else 'are'} not in the model's vocabulary "
                            f"({', '.join(vocab[1:])})")
        sentences.append(" ".join(words))
    if not sentences:
        raise UserError(f"{path} holds no sentences (only blank lines)")
    return list(dict.fromkeys(sentences))


def _rank(args: argparse.Namespace) -> int:
    from dlia.models.alignment import PREFIX, align, load_model, rank_sentences

    path = model_path(args.checkpoint, PREFIX, "caption-align", "dlia caption align")
    check_output(args.show_alignment, "--show-alignment",
                 inputs=[("IMAGE", args.image), ("CKPT_OR_DIR", str(path)), ("--sentences", args.sentences)])
    model, vocab, ckpt = load_model(path)
    config = model.config
    image = read_scene_image(args.image, config.image_size)
    if args.sentences is not None:
        candidates, where = read_sentences(args.sentences, vocab), args.sentences
    else:
        check_memory(f"{path.name}'s held-out scenes (--test-size {config.test_size})",
                     config.test_size * (3 * config.image_size ** 2 + 200), "give candidates with --sentences")
        pairs = scene_pairs(config.test_size, HELD_OUT_SEED, config.image_size, vocab)
        candidates = list(dict.fromkeys(pairs.sentences))
        where = f"the distinct sentences of the run's {config.test_size:,} held-out scenes"
    ranked = rank_sentences(model, vocab, image, candidates)
    print(f"the best of {len(candidates):,} sentences ({where}) for {args.image}, by score S:")
    for k, (sentence, score) in enumerate(ranked[:args.top], 1):
        print(f"{k:3d}. {score:8.2f}  {sentence}")
    if args.show_alignment is not None:
        from dlia.viz.alignment import alignment_plot

        best = ranked[0][0]
        a = align(model, vocab, image, best)
        alignment_plot(image, a.words, a.regions, a.scores, args.show_alignment,
                       title=f"{Path(args.image).name}: S = {a.total:.2f}")
        print(f"alignment of the best sentence → {args.show_alignment}")
    return 0
