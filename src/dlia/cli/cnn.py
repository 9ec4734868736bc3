"""``dlia cnn``: train a CNN on the 8×8 digits (checkpoints, resume, pictures), classify a user's
image, and show a fully convolutional net reading digits on canvases of any size."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy

from dlia.cli.common import (
    check_memory,
    check_output,
    digits_file,
    eight_bit,
    load_digits_8x8,
    path_name,
    picture,
    positive_float,
    positive_int,
    read_image,
)
from dlia.cli.errors import UserError
from dlia.cli.progress import Progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cnn", help="convolutional nets on handwritten digits: train, predict, any-size canvases",
                       description="Convolutional networks on the 8x8 digits.")
    cmds = p.add_subparsers(dest="cnn_command", metavar="ACTION", required=True)

    t = cmds.add_parser("train", help="train the digits CNN (checkpoint every epoch; --resume continues)")
    t.add_argument("--epochs", type=positive_int, default=30, help="epochs (default 30)")
    t.add_argument("--lr", type=positive_float, default=2e-3, help="AdamW learning rate (default 2e-3, cosine decay)")
    t.add_argument("--batch-size", type=positive_int, default=32, help="batch size (default 32)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--data", type=path_name, help="digits.npz or its folder (default: the copy shipped with dlia)")
    t.add_argument("--out", type=path_name, default="runs/cnn", help="checkpoint folder (default runs/cnn)")
    t.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    t.add_argument("--pictures", metavar="PNG", type=picture, help="save first-layer filters and feature maps of a test digit")
    t.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="train on the CPU (NumPy) or a CUDA GPU (CuPy)")
    t.set_defaults(run=train)

    pr = cmds.add_parser("predict", help="classify an image file (any size; resized and centred to 8x8)")
    pr.add_argument("image", type=path_name, help="a PNG/JPEG/... image of one digit")
    pr.add_argument("--checkpoint", type=path_name,
                    help="checkpoint file, or a folder to take the latest from (default: the latest in --out)")
    pr.add_argument("--out", type=path_name, default="runs/cnn", help="folder searched for the latest checkpoint")
    pr.set_defaults(run=predict)

    f = cmds.add_parser("fcn", help="fully convolutional net on digits pasted into canvases of any size")
    f.add_argument("--epochs", type=positive_int, default=10, help="epochs (default 10)")
    f.add_argument("--sizes", default="8,12,16,20,24", help="canvas sizes to train and test on (default 8,12,16,20,24)")
    f.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    f.add_argument("--data", type=path_name, help="digits.npz or its folder (default: the copy shipped with dlia)")
    f.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="train on the CPU (NumPy) or a CUDA GPU (CuPy)")
    f.set_defaults(run=fcn)


def _digits(path: str | None) -> tuple[numpy.ndarray, ...]:
    from dlia.data import train_test_split

    found, why = digits_file(path, timeout=30.0)
    if found is None:
        raise UserError(why)
    images, labels = load_digits_8x8(found)
    return tuple(train_test_split(images[:, None], labels, test_fraction=0.2, seed=0))


def _device(name: str):
    import dlia

    try:
        return dlia.Device(name)
    except RuntimeError as e:  # no CuPy or no CUDA device
        raise UserError(str(e)) from None


def cnn_checkpoint_config(path: Path):
    """The ``CNNConfig`` of the checkpoint at ``path``, checked before a model is built from it: the
    file must be a readable ``DigitsCNN`` checkpoint (not the demo's MLP, say) whose config is valid
    and agrees with its weights' shapes, so a damaged config cannot make a model of any size.

    Raises:
        CheckpointError: naming the file and what is wrong.
    """
    from dlia.io import CheckpointError, load_checkpoint
    from dlia.io.checkpoint import expect_model_class, expect_shapes
    from dlia.models.cnn import CNNConfig

    ckpt = load_checkpoint(path)
    expect_model_class(ckpt, "DigitsCNN", "CNN", "dlia cnn train")
    try:
        config = CNNConfig.from_dict(ckpt.config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: {e}") from None
    (c1, c2), h = config.channels, config.hidden
    expected = {"conv1.weight": (c1, 1, 3, 3), "conv2.weight": (c2, c1, 3, 3), "fc1.weight": (h, c2 * 16)}
    expect_shapes(ckpt, expected)
    return config


def train(args: argparse.Namespace) -> int:
    import dlia
    from dlia import optim
    from dlia.io import CheckpointError, checkpoint_name, latest_checkpoint, load_checkpoint, save_checkpoint
    from dlia.io.checkpoint import remove_stale_checkpoint_temps
    from dlia.models.cnn import CNNConfig, DigitsCNN, evaluate, random_shift, train_epoch

    check_output(args.out, "--out", folder=True)
    check_output(args.pictures, "--pictures", inputs=[("--data", args.data)])
    device = _device(args.device)
    out = Path(args.out)
    if not args.resume and latest_checkpoint(out, "cnn") is not None:  # never mix two runs' checkpoints
        raise UserError(f"{out} already holds checkpoints of an earlier run: continue it with --resume, "
                        f"or train into another folder with --out")
    x_tr, x_te, y_tr, y_te = _digits(args.data)
    config = CNNConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    gen = dlia.Generator(args.seed)
    start, history = 1, {"train_loss": [], "test_loss": [], "test_acc": []}
    resume_from = latest_checkpoint(out, "cnn") if args.resume else None
    if args.resume:  # a save killed mid-write (SIGKILL, power cut) left its hidden temporary file
        remove_stale_checkpoint_temps(out, "cnn")
    if resume_from is not None:
        config = cnn_checkpoint_config(resume_from)
        config.epochs = args.epochs
        ignored = [f"{flag} {given:g}" for flag, given, kept in (("--lr", args.lr, config.lr),
                   ("--batch-size", args.batch_size, config.batch_size), ("--seed", args.seed, config.seed))
                   if given != kept]
        if ignored:
            print(f"resuming with the run's own settings (lr {config.lr:g}, batch size {config.batch_size}, "
                  f"seed {config.seed}); ignoring {', '.join(ignored)}")
    model = DigitsCNN(config, gen).to(device)
    opt = optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    if resume_from is not None:
        ckpt = load_checkpoint(resume_from, model, opt, gen)
        try:
            sched.load_state_dict(ckpt.extra.get("scheduler", {"last_epoch": ckpt.step, "base_lrs": [config.lr]}))
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise CheckpointError(f"{resume_from} has a corrupt scheduler state: {e}") from None
        sched.T_max = config.epochs
        start, history = ckpt.step + 1, ckpt.history
        print(f"resuming from {resume_from} (epoch {ckpt.step})")
    elif args.resume:
        print(f"no checkpoint in {out}; starting from scratch")
    rng = gen.rng
    batches = -(-len(x_tr) // config.batch_size)
    for epoch in range(start, config.epochs + 1):
        bar = Progress(total=batches, desc=f"epoch {epoch:2d}/{config.epochs}")
        loss = train_epoch(model, opt, x_tr, y_tr, config.batch_size, rng, lambda b: random_shift(b, config.shift, rng),
                           on_batch=lambda _k, value, bar=bar: bar.update(loss=value), device=device)
        if not numpy.isfinite(loss):  # keep the last good checkpoint rather than writing a broken one
            bar.clear()
            raise UserError(f"training diverged in epoch {epoch} (mean loss {loss}); lower --lr (now {config.lr:g})")
        bar.close()
        sched.step()
        test_loss, test_acc = evaluate(model, x_te, y_te, device=device)
        history["train_loss"].append(loss)
        history["test_loss"].append(test_loss)
        history["test_acc"].append(test_acc)
        path = save_checkpoint(out / checkpoint_name("cnn", epoch, test_loss), model, opt, step=epoch, generator=gen,
                               config=config.to_dict(), history=history, extra={"scheduler": sched.state_dict()})
        print(f"  train loss {loss:.4f}  test loss {test_loss:.4f}  test accuracy {test_acc:.2%}  → {path.name}")
    if start > config.epochs:
        print(f"already trained for {config.epochs} epochs; nothing to do (raise --epochs to continue)")
    _, acc = evaluate(model, x_te, y_te, device=device)
    print(f"test accuracy: {acc:.2%} on {len(y_te)} held-out digits (checkpoints in {out})")
    if args.pictures:
        from dlia.viz.plots import filters_plot

        with dlia.no_grad():
            maps = model.features(dlia.tensor(x_te[:1], device=device))[0].numpy()[0]
        path = filters_plot(model.conv1.weight.numpy()[:, 0], x_te[0, 0], maps, args.pictures)
        print(f"filters and feature maps written to {path}")
    return 0


#: memory ``load_image`` needs per pixel of the file: RGBA and grey copies, float64 working arrays
#: (measured: ~45 bytes in NumPy, plus Pillow's own copies)
PREDICT_BYTES_PER_PIXEL = 64


def load_image(path: str) -> numpy.ndarray:
    """An image file → an (8, 8) float array like the training digits (ink high, max 1, centred).

    Read with ``read_image`` (the loader ``dlia filter`` uses: one-line errors, Pillow's
    decompression-bomb check, a memory check); 16-bit images are scaled to 8 bits (``eight_bit``)."""
    from PIL import Image

    with eight_bit(read_image(path, PREDICT_BYTES_PER_PIXEL)) as im:
        rgba = im.convert("RGBA")
        gray = numpy.asarray(rgba.convert("L"), dtype=numpy.float64)
        alpha = numpy.asarray(rgba, dtype=numpy.float64)[..., 3]
    if alpha.min() < alpha.max():  # drawn on a transparent background: the opaque pixels are the ink
        gray = alpha
    elif gray.mean() > 127:  # dark ink on light paper → ink high
        gray = 255 - gray
    ink = gray > 0.25 * gray.max() if gray.max() > 0 else gray > 0
    if not ink.any():
        raise UserError(f"{path}: the image is blank")
    rows, cols = numpy.where(ink.any(1))[0], numpy.where(ink.any(0))[0]
    crop = gray[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    side = max(crop.shape)  # the training digits fill their box in the longer direction
    canvas = numpy.zeros((side, side))
    oy, ox = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    canvas[oy:oy + crop.shape[0], ox:ox + crop.shape[1]] = crop
    small = numpy.asarray(Image.fromarray(canvas.astype(numpy.float32), mode="F").resize((8, 8), Image.BOX))
    return (small / small.max()).astype(numpy.float32)


def predict(args: argparse.Namespace) -> int:
    import dlia
    from dlia.io import latest_checkpoint, load_checkpoint
    from dlia.models.cnn import DigitsCNN

    if args.checkpoint and not Path(args.checkpoint).is_dir():
        path = Path(args.checkpoint)
    else:  # the latest checkpoint of a run folder: --checkpoint's, else --out's
        folder = args.checkpoint or args.out
        path = latest_checkpoint(folder, "cnn")
    if path is None:
        if Path(folder).is_file():
            raise UserError(f"--out {folder} is a file, not a folder of checkpoints (a checkpoint file goes to --checkpoint)")
        raise UserError(f"no checkpoint found in {folder}; run 'dlia cnn train' first or pass --checkpoint")
    image = load_image(args.image)
    model = DigitsCNN(cnn_checkpoint_config(path))
    load_checkpoint(path, model)
    model.eval()
    with dlia.no_grad():
        p = dlia.softmax(model(dlia.tensor(image[None, None])), axis=1).numpy()[0]
    top = numpy.argsort(p)[::-1][:3]
    print(f"{args.image}: {top[0]}  (" + ", ".join(f"{d}: {p[d]:.1%}" for d in top) + ")")
    return 0


#: what ``fcn`` holds per canvas pixel of one image (measured with tracemalloc): ~840 bytes in a
#: training step (activations kept for the backward pass), ~260 in evaluation
FCN_TRAIN_BYTES, FCN_EVAL_BYTES = 840, 260
FCN_BATCH, EVAL_BATCH = 32, 512


def fcn_memory(size: int) -> int:
    """Peak bytes of ``dlia cnn fcn`` whose largest canvas is ``size``: a training batch on it, or an
    evaluation batch on the 4 pixels larger canvas it is also tested on."""
    return max(FCN_BATCH * FCN_TRAIN_BYTES * size**2, EVAL_BATCH * FCN_EVAL_BYTES * (size + 4) ** 2)


def fcn(args: argparse.Namespace) -> int:
    import dlia
    from dlia import nn, optim
    from dlia.models.cnn import DigitsFCN, evaluate, paste

    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        raise UserError(f"--sizes must be comma-separated integers, got {args.sizes!r}") from None
    if min(sizes) < 8:
        raise UserError(f"canvas sizes must be at least 8 (the digits are 8×8), got {min(sizes)}")
    check_memory(f"--sizes {max(sizes)}", fcn_memory(max(sizes)), "use smaller canvases")
    device = _device(args.device)
    x_tr, x_te, y_tr, y_te = _digits(args.data)
    gen = dlia.Generator(args.seed)
    rng = gen.rng
    model = DigitsFCN(generator=gen).to(device)
    opt = optim.Adam(model.parameters(), lr=2e-3)
    batch = FCN_BATCH
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(x_tr))
        bar = Progress(range(0, len(order), batch), desc=f"epoch {epoch:2d}/{args.epochs}")
        for i in bar:
            idx = order[i:i + batch]
            xb = paste(x_tr[idx, 0], int(rng.choice(sizes)), rng)  # every batch on a random canvas size
            opt.zero_grad()
            loss = dlia.cross_entropy(model(dlia.tensor(xb, device=device)), y_tr[idx])
            loss.backward()
            opt.step()
            bar.set(loss=loss.item())
    print("fully convolutional net (global max pooling), digits pasted at random positions:")
    test_rng = numpy.random.default_rng(12345)
    for s in sorted(set(sizes) | {max(sizes) + 4}):
        _, acc = evaluate(model, paste(x_te[:, 0], s, test_rng), y_te, batch_size=EVAL_BATCH, device=device)
        note = "" if s in sizes else "  (a size never seen in training)"
        print(f"  {s:2d}×{s:<2d} canvas: test accuracy {acc:.2%}{note}")
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    try:
        mlp(dlia.tensor(paste(x_te[:2, 0], 12, test_rng)))
    except ValueError as e:
        print(f"an MLP built for 8×8 inputs cannot even run on 12×12: {e}")
    return 0
