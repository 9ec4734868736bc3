"""``dlia caption``: pictures and sentences of shape scenes (docs/captioning.md).

Each action has its own parser-building function (``_add_<action>``) and run function
(``_<action>``), registered together in ``_ACTIONS``:

- ``train``: a CNN encoder + RNN decoder captioner on generated scenes, with checkpoints and exact resume;
- ``describe``: captions of the user's pictures (PNG, JPEG, ... of any size);
- ``eval``: loss, exact match and BLEU-4 of a checkpoint on held-out scenes;
- ``scenes``: writes generated scenes as PNG files with their sentences, pictures to describe;
- ``align``: trains the image–sentence ranking model (Karpathy & Fei-Fei's alignment in small);
- ``rank``: lists the best sentences for an image and draws which words matched which regions.

Both models' commands share ``model_path`` (a checkpoint or a run folder's best) and ``read_picture``
(a user's picture as RGB). Their scenes stay apart: ``SceneData`` draws the captioner's scenes at 64
pixels and box-resizes them, with the captioner's vocabulary; ``scene_pairs`` draws the ranker's at
its own size, with its vocabulary. Changing either would change the data a ``--resume`` regenerates
from the seed, so a run resumed across the change would no longer end where it would have.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlia.cli.common import (
    best_file,
    check_memory,
    check_output,
    duration,
    eight_bit,
    keep_run_settings,
    model_path,
    non_negative_float,
    path_name,
    picture,
    positive_float,
    positive_int,
    read_image,
    resume_path,
    run_folder,
)
from dlia.cli.errors import UserError
from dlia.cli.progress import EvaluationBars

if TYPE_CHECKING:
    from dlia.models.caption import CaptionConfig


class SceneData:
    """Training and validation scenes of a ``CaptionConfig`` (seeds ``config.scene_seeds()``), drawn at
    ``SCENE_SIZE`` and prepared once; what ``CaptionTrainer`` trains and validates on.

    Attributes:
        images: float32 (train_size, 3, S, S); ``captions``: their word ids.
        val_images, val_sentences: the validation scenes.
    """

    def __init__(self, config: CaptionConfig) -> None:
        from dlia.data.shapes import scenes_dataset
        from dlia.models.caption import SCENE_SIZE, encode, prepare_images

        self.config = config
        train_seed, val_seed, _ = config.scene_seeds()
        train = scenes_dataset(config.train_size, train_seed, SCENE_SIZE)
        val = scenes_dataset(config.val_size, val_seed, SCENE_SIZE)
        self.images = prepare_images([s.image for s in train], config.image_size)
        self.captions = [encode(s.sentence) for s in train]
        self.val_images = prepare_images([s.image for s in val], config.image_size)
        self.val_sentences = [s.sentence for s in val]

    def test_scenes(self, n: int) -> tuple[list[Any], Any]:
        """``n`` scenes of the test seed (never trained or validated on), and their prepared pictures."""
        from dlia.data.shapes import scenes_dataset
        from dlia.models.caption import SCENE_SIZE, prepare_images

        scenes = scenes_dataset(n, self.config.scene_seeds()[2], SCENE_SIZE)
        return scenes, prepare_images([s.image for s in scenes], self.config.image_size)


#: the default of --checkpoint-dir
RUNS = "runs/caption"
#: the default of ``dlia caption align --checkpoint-dir``
ALIGN_RUNS = "runs/caption-align"
#: the seed of the held-out scenes of ``dlia caption align`` (its evaluation, and ``dlia caption
#: rank``'s default candidates): every run is measured on the same scenes, whatever its own seed
HELD_OUT_SEED = 20150607
#: the largest beam width accepted (each width costs one decoder step per hypothesis per word)
MAX_BEAM = 100
#: the most scenes eval and scenes accept
MAX_SCENES = 1_000_000


def _beam(text: str) -> int:
    value = positive_int(text)
    if value > MAX_BEAM:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_BEAM}, got {value}")
    return value


def _scene_count(text: str) -> int:
    value = positive_int(text)
    if value > MAX_SCENES:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SCENES:,}, got {value}")
    return value


#: train flags that set a ``CaptionConfig`` field: (flag, field, argparse type, help)
_CONFIG_FLAGS = [
    ("--cell", "cell", None, "the decoder: gru or lstm"),
    ("--attention", "attention", None, "attention over the feature map's cells: none or bahdanau"),
    ("--embedding-size", "embedding_size", positive_int, "size of the word and image embeddings"),
    ("--hidden-size", "hidden_size", positive_int, "the decoder's state size"),
    ("--image-size", "image_size", positive_int, "pictures are resized to this side (a multiple of 16)"),
    ("--train-size", "train_size", positive_int, "training scenes"),
    ("--val-size", "val_size", positive_int, "validation scenes"),
    ("--batch-size", "batch_size", positive_int, "scenes per batch"),
    ("--learning-rate", "learning_rate", positive_float, "Adam's learning rate"),
    ("--grad-clip", "grad_clip", non_negative_float, "clip the global gradient norm to this (0: off)"),
    ("--max-epochs", "max_epochs", positive_int, "epochs to train"),
    ("--eval-every", "eval_every", positive_int, "iterations between validations (each writes a checkpoint)"),
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("caption", help="images and descriptions: captions of shape scenes and image–sentence ranking",
                       description="Images and descriptions (docs/captioning.md): train a captioner on generated "
                                   "scenes of coloured shapes, describe pictures, evaluate, write scenes as PNG; "
                                   "train and query an image–sentence ranking model.")
    cmds = p.add_subparsers(dest="caption_command", metavar="ACTION", required=True)
    for add in _ACTIONS:
        add(cmds)


# -- train -----------------------------------------------------------------------------------------
def _add_train(cmds: argparse._SubParsersAction) -> None:
    from dlia.models.caption import ATTENTIONS, CELLS, CaptionConfig

    t = cmds.add_parser("train", help="train a captioner on generated scenes; --resume continues exactly",
                        description="Train a CNN encoder + GRU/LSTM decoder (the image embedding is the decoder's first "
                                    "input; by default the decoder also attends over the CNN's 3×3 cells at every word) "
                                    "on generated scenes; validation loss, exact match and BLEU-4 at every "
                                    "evaluation, test figures on held-out scenes at the end.")
    defaults = CaptionConfig()
    for flag, name, kind, text in _CONFIG_FLAGS:
        choices = {"cell": CELLS, "attention": ATTENTIONS}.get(name)
        t.add_argument(flag, dest=name, type=kind, choices=choices, default=None,
                       help=f"{text} (default {getattr(defaults, name)})")
    t.add_argument("--max-steps", type=positive_int, default=None,
                   help="stop after this many iterations of this session, with a checkpoint")
    t.add_argument("--max-time", type=positive_float, metavar="MINUTES",
                   help="stop after this many minutes of training, with a checkpoint")
    t.add_argument("--checkpoint-dir", type=path_name, default=None,
                   help=f"folder of the checkpoints (default {RUNS}; with --resume, the resumed checkpoint's folder)")
    t.add_argument("--resume", type=path_name, metavar="CKPT_OR_DIR",
                   help="continue a run exactly from a checkpoint (or the latest in a folder)")
    t.add_argument("--test-size", type=_scene_count, default=500, help="held-out scenes of the final test (default 500)")
    t.add_argument("--beam", type=_beam, default=1, help="beam width of the final test's captions (default 1: greedy)")
    t.add_argument("--seed", type=int, default=None, help="random seed: weights, batch order and scenes (default 0)")
    t.set_defaults(run=_train)


def _config(args: argparse.Namespace):
    """The ``CaptionConfig`` of the flags given, errors in the flags' words."""
    from dlia.models.caption import CaptionConfig

    given = {name: getattr(args, name) for _, name, _, _ in _CONFIG_FLAGS if getattr(args, name) is not None}
    if args.seed is not None:
        given["seed"] = args.seed
    try:
        return CaptionConfig(**given), given
    except ValueError as e:
        message = str(e).removeprefix("caption config: ")
        for flag, name, _, _ in _CONFIG_FLAGS:
            message = message.replace(f"{name} must", f"{flag} must")
        raise UserError(message.replace("seed must", "--seed must")) from None


def _train(args: argparse.Namespace) -> int:
    from dlia.io.checkpoint import remove_stale_checkpoint_temps
    from dlia.models.caption import PREFIX, CaptionTrainer, evaluate, load_model, read_checkpoint, training_bytes

    check_output(args.checkpoint_dir, "--checkpoint-dir", folder=True)
    config, given = _config(args)
    resume_from = resume_path(args.resume, PREFIX, "caption") if args.resume else None
    if resume_from is not None:
        config, _ = read_checkpoint(resume_from)  # checked before anything is built from it
        out = run_folder(args.checkpoint_dir, resume_from, PREFIX, RUNS)  # never mix two runs' checkpoints
        keep_run_settings(config, given, "max_epochs")
    else:
        out = run_folder(args.checkpoint_dir, None, PREFIX, RUNS)
    check_memory(f"--image-size {config.image_size} --batch-size {config.batch_size} --hidden-size {config.hidden_size} "
                 f"--embedding-size {config.embedding_size} --train-size {config.train_size} --val-size {config.val_size}",
                 training_bytes(config), "use a smaller model, batch or data set")
    data = SceneData(config)
    if resume_from is not None:
        remove_stale_checkpoint_temps(resume_from.parent, PREFIX)  # a save killed mid-write left its temporary file
        trainer = CaptionTrainer.resume(resume_from, lambda _: data, max_epochs=config.max_epochs)
        print(f"resuming from {resume_from} (iteration {trainer.iteration}, epoch {trainer.epoch:.2f})")
    else:
        trainer = CaptionTrainer(config, data)
    total = trainer.total_iterations
    print(f"scenes: {config.train_size:,} training, {config.val_size:,} validation ({config.image_size}×{config.image_size}); "
          f"CNN {'-'.join(map(str, config.channels))} + {config.cell.upper()} {config.hidden_size}, "
          f"{sum(p.size for p in trainer.model.parameters()):,} parameters; {trainer.batches_per_epoch} batches of "
          f"{config.batch_size} per epoch")
    if trainer.iteration >= total:
        print(f"already trained for {config.max_epochs} epochs; nothing to do (raise --max-epochs to continue)")
        return 0
    bars = EvaluationBars(trainer, total, config.eval_every, config.max_epochs, "images/s")
    with bars.running(f"lower --learning-rate (now {config.learning_rate:g}) or --grad-clip"):
        done = trainer.fit(out, None if args.max_time is None else 60 * args.max_time, args.max_steps,
                           lambda loss: bars.step(loss, config.batch_size),
                           lambda ev, path: bars.evaluated(f"  validation: loss {ev.loss:.4f} nats/word, exact match "
                                                           f"{100 * ev.exact:.1f} %, BLEU-4 {ev.bleu:.3f} → {path}"))
    found = best_file(trainer.best_checkpoint, out, resume_from)
    print(f"best validation loss {trainer.best_val_loss:.4f} nats/word: {found or trainer.best_checkpoint} "
          f"(trained {duration(trainer.elapsed)} in all)")
    if not done:
        print(f"stopped at epoch {trainer.epoch:.2f} of {config.max_epochs}; continue with --resume {out}")
        return 0
    if found is not None:
        model, _ = load_model(found)
        scenes, images = data.test_scenes(args.test_size)
        ev = evaluate(model, images, [s.sentence for s in scenes], beam=args.beam)
        how = "greedy" if args.beam == 1 else f"beam {args.beam}"
        print(f"test ({args.test_size:,} held-out scenes, {how}, best checkpoint): exact match {100 * ev.exact:.1f} %, "
              f"BLEU-4 {ev.bleu:.3f}, loss {ev.loss:.4f} nats/word")
    return 0


# -- describe --------------------------------------------------------------------------------------
def _add_describe(cmds: argparse._SubParsersAction) -> None:
    d = cmds.add_parser("describe", help="caption pictures (PNG, JPEG, ...; resized to the model's size)",
                        description="Print a caption for each picture: 'PICTURE: caption'. Pictures of any size are "
                                    "resized to the model's image size (box filter), RGBA composited over black, "
                                    "greyscale expanded to RGB.")
    d.add_argument("checkpoint", type=path_name, metavar="CKPT_OR_DIR",
                   help="a checkpoint, or a run folder (its best checkpoint is used)")
    d.add_argument("images", type=path_name, nargs="+", metavar="IMAGE", help="pictures to describe")
    d.add_argument("--beam", type=_beam, default=1, help="beam width (default 1: greedy)")
    d.add_argument("--show", type=picture, metavar="PNG", help="also draw the pictures with their captions")
    d.add_argument("--show-attention", type=picture, metavar="PNG",
                   help="draw where the model looked (its attention over the picture's cells) for each word of the "
                        "first picture's greedy caption")
    d.set_defaults(run=_describe)


def _describe(args: argparse.Namespace) -> int:
    from dlia.models.caption import PREFIX, load_model, prepare_images

    path = model_path(args.checkpoint, PREFIX, "caption", "dlia caption train")
    inputs = [("CKPT_OR_DIR", str(path)), *(("IMAGE", i) for i in args.images)]
    check_output(args.show, "--show", inputs=inputs)
    check_output(args.show_attention, "--show-attention", inputs=inputs)
    if args.show and args.show_attention and Path(args.show).resolve() == Path(args.show_attention).resolve():
        raise UserError(f"--show and --show-attention both name {args.show}: give two files")
    model, config = load_model(path)
    if args.show_attention is not None and config.attention == "none":
        raise UserError(f"--show-attention: {path.name} has no attention (it was trained with --attention none)")
    pictures = []
    for name in args.images:  # every picture is read before anything is printed
        pictures.append(read_picture(name))
    captions = model.caption(prepare_images(pictures, config.image_size), args.beam)
    for name, caption in zip(args.images, captions, strict=True):
        print(f"{name}: {caption}")
    if args.show:
        from dlia.viz.plots import captions_plot

        captions_plot(pictures, captions, [None] * len(pictures), f"captions by {path.name}", args.show)
        print(f"pictures with their captions → {args.show}")
    if args.show_attention:
        from dlia.models.caption import decode
        from dlia.viz.alignment import caption_attention_plot

        ids, weights = model.greedy_with_attention(prepare_images(pictures[:1], config.image_size))
        words = decode(ids[0]).split()
        caption_attention_plot(pictures[0], words, weights[0], args.show_attention,
                               title=f"{Path(args.images[0]).name}: where {path.name} looked for each word")
        print(f"the attention of each word of {args.images[0]}'s caption → {args.show_attention}")
    return 0


# -- eval ------------------------------------------------------------------------------------------
def _add_eval(cmds: argparse._SubParsersAction) -> None:
    e = cmds.add_parser("eval", help="loss, exact match and BLEU-4 of a checkpoint on held-out scenes")
    e.add_argument("checkpoint", type=path_name, metavar="CKPT_OR_DIR",
                   help="a checkpoint, or a run folder (its best checkpoint is used)")
    e.add_argument("--scenes", type=_scene_count, default=500, help="held-out scenes (default 500)")
    e.add_argument("--scene-seed", type=int, default=None,
                   help="seed of the scenes (default: the run's test seed, 3·seed + 2, never trained on)")
    e.add_argument("--beam", type=_beam, default=1, help="beam width (default 1: greedy)")
    e.add_argument("--show", type=picture, metavar="PNG", help="draw the first 8 scenes with their captions")
    e.set_defaults(run=_eval)


def _eval(args: argparse.Namespace) -> int:
    from dlia.data.shapes import scenes_dataset
    from dlia.models.caption import PREFIX, SCENE_SIZE, evaluate, load_model, prepare_images

    path = model_path(args.checkpoint, PREFIX, "caption", "dlia caption train")
    check_output(args.show, "--show", inputs=[("CKPT_OR_DIR", str(path))])
    if args.scene_seed is not None and args.scene_seed < 0:
        raise UserError(f"--scene-seed must be a non-negative integer, got {args.scene_seed}")
    check_memory(f"--scenes {args.scenes}", args.scenes * SCENE_SIZE * SCENE_SIZE * 3 * 5, "evaluate fewer scenes")
    model, config = load_model(path)
    seed = config.scene_seeds()[2] if args.scene_seed is None else args.scene_seed
    scenes = scenes_dataset(args.scenes, seed, SCENE_SIZE)
    ev = evaluate(model, prepare_images([s.image for s in scenes], config.image_size), [s.sentence for s in scenes],
                  beam=args.beam)
    how = "greedy" if args.beam == 1 else f"beam {args.beam}"
    print(f"{path.name} on {args.scenes:,} scenes of seed {seed} ({how}): exact match {100 * ev.exact:.1f} %, "
          f"BLEU-4 {ev.bleu:.3f}, loss {ev.loss:.4f} nats/word")
    if args.show:
        from dlia.viz.plots import captions_plot

        k = min(8, len(scenes))
        captions_plot([s.image for s in scenes[:k]], ev.captions[:k], [s.sentence for s in scenes[:k]],
                      f"{path.name}: held-out scenes (green: exact)", args.show)
        print(f"scenes with their captions → {args.show}")
    return 0


# -- scenes ----------------------------------------------------------------------------------------
def _add_scenes(cmds: argparse._SubParsersAction) -> None:
    s = cmds.add_parser("scenes", help="write generated scenes as PNG files, with their sentences (pictures to describe)")
    s.add_argument("folder", type=path_name, metavar="DIR", help="where scene_000.png, ... and sentences.tsv go")
    s.add_argument("-n", "--count", type=_scene_count, default=8, help="scenes to write (default 8)")
    s.add_argument("--size", type=positive_int, default=64, help="picture side in pixels, 24 to 1024 (default 64)")
    s.add_argument("--seed", type=int, default=0, help="random seed of the scenes (default 0)")
    s.set_defaults(run=_scenes)


def _scenes(args: argparse.Namespace) -> int:
    import io

    import numpy
    from PIL import Image

    from dlia.data.shapes import scene
    from dlia.io.atomic import atomic_write

    check_output(args.folder, "DIR", folder=True)
    if not 24 <= args.size <= 1024:
        raise UserError(f"--size must be 24 to 1024 pixels, got {args.size}")
    folder = Path(args.folder)
    width = max(3, len(str(args.count - 1)))
    names = [f"scene_{i:0{width}d}.png" for i in range(args.count)]
    taken = [n for n in [*names, "sentences.tsv"] if (folder / n).exists()]
    if taken:
        raise UserError(f"{folder} already holds {taken[0]}; write the scenes into another folder")
    rng = numpy.random.Generator(numpy.random.PCG64(args.seed))  # scenes_dataset's draws, one scene at a time
    lines = []
    for name in names:
        s = scene(rng, args.size)
        buf = io.BytesIO()
        Image.fromarray(s.image).save(buf, format="PNG")
        with atomic_write(folder / name) as f:
            f.write(buf.getvalue())
        lines.append(f"{name}\t{s.sentence}\n")
    with atomic_write(folder / "sentences.tsv", "w") as f:
        f.writelines(lines)
    print(f"{args.count} scenes of seed {args.seed} ({args.size}×{args.size}) → {folder}/{names[0]} ... "
          f"and their sentences in {folder}/sentences.tsv")
    return 0


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
    from dlia.io.checkpoint import remove_stale_checkpoint_temps
    from dlia.models.alignment import PREFIX, AlignConfig, AlignError, AlignTrainer, fit, read_checkpoint, training_bytes

    check_output(args.checkpoint_dir, "--checkpoint-dir", folder=True)
    given = _align_config(args)
    resume_from = resume_path(args.resume, PREFIX, "caption-align") if args.resume else None
    if resume_from is not None:
        config, vocab, _ = read_checkpoint(resume_from)  # checked before anything is built from it
        out = run_folder(args.checkpoint_dir, resume_from, PREFIX, ALIGN_RUNS)  # never mix two runs' checkpoints
        keep_run_settings(config, given, "max_epochs")
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
        out = run_folder(args.checkpoint_dir, None, PREFIX, ALIGN_RUNS)
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
    bars = EvaluationBars(trainer, total, config.eval_every, config.max_epochs, "pairs/s")
    with bars.running(f"lower --learning-rate (now {config.learning_rate:g})"):
        done = fit(trainer, out, None if args.max_time is None else 60 * args.max_time, args.max_steps,
                   lambda loss: bars.step(loss, config.batch_size),
                   lambda result, path: bars.evaluated(f"  held-out ({len(test)} pairs): {result.line()} → {path}"))
    best = best_file(trainer.best_checkpoint, out, resume_from) or trainer.best_checkpoint
    if trainer.best_checkpoint is None:  # stopped before the first scheduled evaluation
        print(f"no scheduled evaluation yet (every {config.eval_every} iterations) "
              f"(trained {duration(trainer.elapsed)} in all)")
    else:
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


def read_picture(path: str) -> Any:
    """The picture at ``path`` as uint8 (H, W, 3) RGB, for both models: 16-bit and float images are
    scaled to 8 bits, transparency is composited over black (the scenes' background), greyscale and
    palette images are expanded. An empty file, a picture without pixels or one Pillow cannot read
    is one ``UserError`` line."""
    from dlia.models.caption import picture_to_rgb

    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise UserError(f"{path} is empty")
    im = read_image(path, bytes_per_pixel=8)
    if im.width == 0 or im.height == 0:
        raise UserError(f"{path} has no pixels")
    return picture_to_rgb(eight_bit(im))


def read_scene_image(path: str, size: int) -> Any:
    """``read_picture`` at the ranking model's size: another size is resized to (size, size) with the
    nearest pixel (the ranker trains on scenes drawn at its own size, so flat colours stay exact),
    and a note says so. (The captioner resizes with a box filter instead, as it trains: ``prepare_images``.)"""
    import numpy
    from PIL import Image

    rgb = read_picture(path)
    if rgb.shape[:2] != (size, size):
        print(f"note: {path} is {rgb.shape[1]}×{rgb.shape[0]}; the model reads {size}×{size} scenes, so it is resized")
        rgb = numpy.asarray(Image.fromarray(rgb).resize((size, size), Image.NEAREST), dtype=numpy.uint8).copy()
    return rgb


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


#: every action: its parser-building function, which sets its run function
_ACTIONS = [_add_train, _add_describe, _add_eval, _add_scenes, _add_align, _add_rank]
