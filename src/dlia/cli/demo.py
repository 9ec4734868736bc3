"""``dlia demo``: a short tour of what dlia can do, from one neuron to a trained network."""

from __future__ import annotations

import argparse
import contextlib
import math
import tempfile
from pathlib import Path

import numpy

import dlia
from dlia import nn, optim
from dlia.cli.common import check_output, digits_file, load_digits_8x8, path_name
from dlia.cli.errors import UserError
from dlia.cli.progress import Progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="a quick tour: autodiff, XOR, MLP and CNN on digits, graphs, char-rnn, word2vec, "
                                    "n-grams, seq2seq, captioning, image–sentence ranking",
                       description="A quick tour of dlia: backprop through one logistic neuron, XOR with a "
                                   "hidden layer, an MLP trained on the 8x8 digits, Octave's conv2 and a CNN, "
                                   "the dataflow graph, char-rnn writing Shakespeare, word2vec's vectors of "
                                   "Shakespeare's words, n-gram language models (counts, perplexity, samples) and a "
                                   "seq2seq model translating dates, with its attention, a captioner describing shape "
                                   "scenes and an image–sentence ranking model with its word–region alignment.")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--epochs", type=int, default=20, help="digits MLP epochs (default 20)")
    p.add_argument("--data", type=path_name, default=None,
                   help="digits.npz or its folder (default: the copy shipped with dlia)")
    p.add_argument("--out", type=path_name, default=None,
                   help="folder for the demo checkpoint and pictures (default: a temporary folder)")
    p.set_defaults(run=run)


def _section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 66 - len(title)))


def neuron_demo() -> None:
    _section("1. Backprop through one logistic neuron")
    x = dlia.tensor([1.0, 0.5])
    w = dlia.tensor([0.8, -0.4], requires_grad=True)
    b = dlia.tensor(0.1, requires_grad=True)
    z = (w * x).sum() + b
    y = dlia.sigmoid(z)
    t = 1.0
    e = 0.5 * (t - y) ** 2
    e.backward()
    dy = float(y.item()) - t
    dz = float(y.item()) * (1 - float(y.item())) * dy
    print(f"z = w·x + b = {z.item():.4f}   y = sigmoid(z) = {y.item():.4f}   E = ½(t - y)² = {e.item():.4f}")
    print(f"∂E/∂y = y - t = {dy:.4f};  ∂E/∂z = y(1-y)·∂E/∂y = {dz:.4f}")
    print(f"∂E/∂w = x·∂E/∂z = {numpy.round(x.numpy() * dz, 4)}   engine: {numpy.round(w.grad.numpy(), 4)}")


def xor_demo(seed: int) -> None:
    _section("2. XOR needs a hidden layer")
    X = dlia.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    W = dlia.tensor([[1.0, 1.0], [1.0, 1.0]])
    c = dlia.tensor([0.0, -1.0])
    w = dlia.tensor([[1.0], [-2.0]])
    h = dlia.relu(X @ W + c)
    print("lecture's weights: relu(XW + c) =", h.numpy().tolist(), "→ output", (h @ w).numpy().ravel().tolist())
    gen = dlia.Generator(seed)
    model = nn.Sequential(nn.Linear(2, 4, generator=gen), nn.Tanh(), nn.Linear(4, 1, generator=gen))
    opt = optim.Adam(model.parameters(), lr=0.05)
    y = dlia.tensor([[0.0], [1.0], [1.0], [0.0]])
    for _ in range(300):
        opt.zero_grad()
        loss = dlia.binary_cross_entropy_with_logits(model(X), y)
        loss.backward()
        opt.step()
    with dlia.no_grad():
        p = dlia.sigmoid(model(X)).numpy().ravel()
    print(f"trained 2-4-1 net (300 Adam steps): loss {loss.item():.4f}, P(1) = {[round(float(v), 3) for v in p]}")


def digits_demo(args: argparse.Namespace) -> None:
    _section("3. An MLP on handwritten digits (64-128-10)")
    from dlia.data import DataLoader, TensorDataset, train_test_split
    from dlia.io import load_checkpoint, save_checkpoint

    if args.digits is None:
        print(f"skipped: {args.digits_missing}")
        return
    images, labels = args.digits
    x = images.reshape(len(images), -1)
    x_tr, x_te, y_tr, y_te = train_test_split(x, labels, test_fraction=0.2, seed=0)
    gen = dlia.Generator(args.seed)
    model = nn.Sequential(nn.Linear(64, 128, generator=gen), nn.ReLU(), nn.Linear(128, 10, generator=gen))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=32, shuffle=True, generator=gen)
    history = []
    for epoch in range(1, args.epochs + 1):
        bar = Progress(loader, desc=f"epoch {epoch:2d}/{args.epochs}")
        total = 0.0
        for xb, yb in bar:
            opt.zero_grad()
            loss = dlia.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item()
            bar.set(loss=total / (bar.n + 1))
        history.append(total / len(loader))
    with dlia.no_grad():
        acc = float((model(dlia.tensor(x_te)).numpy().argmax(1) == y_te).mean())
    print(f"test accuracy on {len(y_te)} held-out digits: {acc:.2%}")
    with contextlib.ExitStack() as stack:  # without --out the checkpoint goes to a folder removed afterwards
        out = Path(args.out) if args.out else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dlia-demo-")))
        path = save_checkpoint(out / "digits_mlp.npz", model, opt, step=args.epochs, generator=gen,
                               config={"layers": [64, 128, 10]}, history={"train_loss": history})
        fresh = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        load_checkpoint(path, fresh)
        with dlia.no_grad():
            same = numpy.array_equal(fresh(dlia.tensor(x_te)).numpy(), model(dlia.tensor(x_te)).numpy())
        where = path if args.out else f"{path} (a temporary folder, removed now; --out DIR keeps it)"
        print(f"checkpoint written to {where} and reloaded: predictions identical = {same}")


def conv_demo(args: argparse.Namespace) -> None:
    _section("4. Convolution and a CNN")
    from dlia.signal import conv2, xcorr2

    a = numpy.arange(1, 10, dtype=float).reshape(3, 3)
    b = numpy.array([[1.0, 0.0], [0.0, 0.0]])
    for shape in ("full", "same", "valid"):
        print(f"conv2(A, B, '{shape}') = {conv2(a, b, shape).astype(int).tolist()}")
    print(f"xcorr2(A, B) = {xcorr2(a, b).astype(int).tolist()}")
    from dlia.data import train_test_split

    if args.digits is None:
        print(f"CNN skipped: {args.digits_missing}")
        return
    images, labels = args.digits
    from dlia.models.cnn import CNNConfig, DigitsCNN, evaluate, random_shift, train_epoch

    x_tr, x_te, y_tr, y_te = train_test_split(images[:, None], labels, test_fraction=0.2, seed=0)
    gen = dlia.Generator(args.seed)
    model = DigitsCNN(CNNConfig(seed=args.seed), gen)
    opt = optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    epochs = 6
    for epoch in range(1, epochs + 1):
        bar = Progress(total=-(-len(x_tr) // 32), desc=f"CNN epoch {epoch}/{epochs}")
        train_epoch(model, opt, x_tr, y_tr, 32, gen.rng, lambda batch: random_shift(batch, 1, gen.rng),
                    on_batch=lambda _k, value, bar=bar: bar.update(loss=value))
        bar.close()
    print(f"CNN (conv16-conv32-pool-dense64-dense10) test accuracy after {epochs} epochs: "
          f"{evaluate(model, x_te, y_te)[1]:.2%}  (dlia cnn train: 30 epochs, ≈ 99 %)")


def graph_demo(args: argparse.Namespace) -> None:
    _section("5. The dataflow graph: Graph, Session, Device")
    from dlia import graph as G

    g = G.Graph("demo")
    x = G.placeholder((None, 1), name="x", graph=g)
    y = G.placeholder((None, 1), name="y", graph=g)
    w = G.Variable(numpy.zeros((1, 1), numpy.float32), name="W", graph=g)
    b = G.Variable(numpy.zeros(1, numpy.float32), name="b", graph=g)
    pred = x @ w + b
    loss = dlia.mse_loss(pred, y)
    train = G.GradientDescentOptimizer(0.5).minimize(loss)
    print(f"built without running: {pred!r}")
    rng = numpy.random.default_rng(args.seed)
    xs = rng.uniform(-1, 1, (64, 1)).astype(numpy.float32)
    ys = 3 * xs + 0.5
    with G.Session(g, device="cpu") as sess:
        for _ in range(100):
            sess.run(train, {x: xs, y: ys})
        print(f"fit y = 3x + 0.5 by running the train op: W = {sess.value(w).item():.3f}, b = {sess.value(b).item():.3f}")
    print(f"the graph has {len(g.nodes)} nodes; dlia graph show SCRIPT -o graph.svg draws one")

    model = nn.Sequential(nn.Linear(2, 8, generator=dlia.Generator(args.seed)), nn.Tanh(), nn.Linear(8, 1))

    @dlia.compile
    def loss_fn(xb: dlia.Tensor, yb: dlia.Tensor) -> dlia.Tensor:
        return dlia.mse_loss(model(xb), yb)

    xb, yb = dlia.randn(16, 2, generator=dlia.Generator(1)), dlia.zeros(16, 1)
    compiled = loss_fn(xb, yb)
    eager = dlia.mse_loss(model(xb), yb)
    print(f"dlia.compile traced a loss function into {len(loss_fn.trace(xb, yb).graph.nodes)} graph nodes: "
          f"compiled {compiled.item():.6f} = eager {eager.item():.6f}")


def charrnn_demo(args: argparse.Namespace) -> None:
    _section("6. char-rnn: an LSTM learns to write like Shakespeare")
    from dlia.cli.charrnn import shakespeare
    from dlia.data import DataNotFoundError
    from dlia.models.charrnn import CharData, CharRNNConfig, CharRNNTrainer, sample
    from dlia.text import CharVocab

    try:
        text = shakespeare()[:40_000]  # a slice, so the section takes a few seconds
    except DataNotFoundError as e:
        print(f"skipped: {e}")
        return
    vocab = CharVocab.from_text(text)
    config = CharRNNConfig(rnn_size=64, num_layers=1, batch_size=16, seq_length=32, learning_rate=1e-2, seed=args.seed)
    trainer = CharRNNTrainer(config, vocab, CharData(vocab.encode(text), 16, 32, config.train_frac, config.val_frac))
    before, steps = trainer.evaluate(), 120
    bar = Progress(total=steps, desc="char-rnn")
    for _ in range(steps):
        bar.update(loss=trainer.train_step())
    bar.close()
    print(f"a 1×64 LSTM, {steps} steps on {len(text):,} characters: validation loss {before:.2f} → "
          f"{trainer.evaluate():.2f} nats/char (uniform guessing: {math.log(len(vocab)):.2f})")
    trainer.model.eval()
    text = "ROMEO:" + "".join(sample(trainer.model, vocab, "ROMEO:", 160, 0.7, seed=args.seed))
    print("a sample (temperature 0.7):\n" + "\n".join("  | " + line for line in text.splitlines()))
    print("dlia char-rnn train trains the full 2×128 model; docs/rnn.md says what to expect")


def word2vec_demo(args: argparse.Namespace) -> None:
    _section("7. word2vec: words become vectors (Shakespeare's words)")
    import re
    from collections import Counter

    from dlia.backend import w2v
    from dlia.cli.charrnn import shakespeare
    from dlia.data import DataNotFoundError
    from dlia.models.word2vec import Word2Vec, Word2VecConfig
    from dlia.text import EncodedCorpus, WordVocab

    try:
        text = shakespeare()
    except DataNotFoundError as e:
        print(f"skipped: {e}")
        return
    # lower-cased words without punctuation ("king," and "King" are "king"), a line a sentence
    sentences = [s for s in (re.findall(r"[a-z]+(?:'[a-z]+)?", line.lower()) for line in text.splitlines()) if s]
    vocab = WordVocab.build(Counter(w for s in sentences for w in s), min_count=5)
    corpus = EncodedCorpus.from_sentences(sentences, vocab)
    compiled = bool(w2v.available)  # without the kernel NumPy trains ~50x slower: a shorter run
    config = Word2VecConfig(model="skipgram" if compiled else "cbow", vector_size=64, epochs=10 if compiled else 3,
                            seed=(args.seed + 1) % 2**64, threads=1)  # one thread: the same seed prints the same words
    model = Word2Vec(vocab.words, vocab.counts, config)
    model.train(corpus)
    print(f"{config.model}, vectors of {config.vector_size}, {config.epochs} epochs over {len(corpus.ids):,} words "
          f"({len(vocab):,} distinct)" + ("" if compiled else f" (on NumPy: {w2v.reason()})"))
    wv = model.wv
    for word in ("father", "love", "sword"):
        print(f"  nearest to {word + ':':8} " + ", ".join(w for w, _ in wv.most_similar(word, topn=5)))
    for a, b, c in (("his", "he", "she"), ("him", "he", "she")):
        answer, score = wv.analogy(a, b, c)[0]
        print(f"  {a} − {b} + {c} = {answer} (cosine {score:.2f})")
    print("dlia word2vec train CORPUS trains on your own text; docs/word2vec.md has the analogy benchmark")


def lm_demo(args: argparse.Namespace) -> None:
    _section("8. Language models: counting n-grams, smoothing, sampling")
    from collections import Counter

    from dlia.cli.charrnn import shakespeare
    from dlia.data import DataNotFoundError
    from dlia.models.ngram import NGramLM

    # the textbook's toy corpus (Jurafsky & Martin): the lecture's bigram formula by hand
    toy = ["I am Sam", "Sam I am", "I do not like green eggs and ham"]
    padded = [["<s>", *line.split(), "</s>"] for line in toy]
    bigrams = Counter((a, b) for s in padded for a, b in zip(s, s[1:]))
    history = Counter(a for s in padded for a in s[:-1])  # count(w) as a history: every word followed by one
    print("corpus: " + " / ".join(toy) + "  (a line a sentence, <s> and </s> around it)")
    print("bigram counts: " + ", ".join(f"{a} {b}: {c}" for (a, b), c in bigrams.most_common(6)) + ", ...")
    lm = NGramLM(2, "mle").fit([line.split() for line in toy])
    for prev, word in (("I", "am"), ("<s>", "I"), ("am", "Sam")):
        print(f"P({word} | {prev}) = count({prev} {word}) / count({prev}) = {bigrams[prev, word]} / {history[prev]} "
              f"= {bigrams[prev, word] / history[prev]:.3f}   (dlia.models.ngram: {lm.prob(word, [prev]):.3f})")
    try:
        text = shakespeare()
    except DataNotFoundError as e:
        print(f"Shakespeare skipped: {e}")
        return
    lines = [s for s in (line.split() for line in text.splitlines()) if s]
    cut = len(lines) * 9 // 10  # the first 90 % of the lines to count, the last 10 % held out
    train, test = lines[:cut], lines[cut:]
    mle = NGramLM(2, "mle").fit(train, min_count=2)  # words seen once become <unk>, so <unk> is trained too
    r = mle.evaluate(test)
    print(f"Shakespeare: {sum(map(len, train)):,} words of {cut:,} lines counted ({mle.V:,} words with <s> </s> <unk>, "
          f"words seen once are <unk>), {r.tokens:,} held-out tokens")
    known = set(mle.vocab)
    unseen = next((a, b) for s in test for a, b in zip(s, s[1:]) if a in known and b in known and mle.prob(b, [a]) == 0)
    print(f"MLE bigrams: perplexity {r.perplexity} — {r.zero_prob:,} held-out tokens follow their word in a bigram "
          f"never counted (e.g. '{' '.join(unseen)}'): P = 0, so the probability of the text is 0")
    for order in (2, 3):
        kn = NGramLM(order, "kn").fit(train, min_count=2)
        print(f"Kneser-Ney {order}-grams: perplexity {kn.perplexity(test):.1f} (discounts give unseen n-grams "
              f"the mass of the lower orders)")
    print("sentences sampled from the Kneser-Ney 3-gram model:")
    for sentence in kn.generate(3, max_len=20, seed=args.seed):
        print("  | " + sentence)
    print("dlia ngram train CORPUS --order 3 -o model.arpa trains on your own text; docs/language-models.md")


def rank_demo(args: argparse.Namespace) -> None:
    """Image–sentence ranking (docs/captioning.md): a few seconds of training on generated scenes,
    retrieval on held-out ones, and one alignment picture (kept in --out, else a temporary folder)."""
    _section("11. Images and sentences: ranking and word–region alignment")
    from dlia.cli.caption import HELD_OUT_SEED, scene_pairs, scene_vocab
    from dlia.models.alignment import AlignConfig, AlignTrainer, align, evaluate
    from dlia.viz.alignment import alignment_plot

    config = AlignConfig(image_size=24, channels=8, hidden_size=32, train_size=600, test_size=100, batch_size=25,
                         learning_rate=5e-3, seed=args.seed)
    vocab = scene_vocab()
    test = scene_pairs(config.test_size, HELD_OUT_SEED, config.image_size, vocab)
    trainer = AlignTrainer(config, vocab, scene_pairs(config.train_size, config.seed, config.image_size, vocab), test)
    before, steps = evaluate(trainer.model, test), 120
    bar = Progress(total=steps, desc="ranking")
    for _ in range(steps):
        bar.update(loss=trainer.train_step())
    bar.close()
    after = evaluate(trainer.model, test)
    print(f"CNN regions and bidirectional-GRU words in one space, {steps} steps on {config.train_size} scenes; "
          f"on {config.test_size} held-out pairs:")
    print(f"  before: {before.line()}")
    print(f"  after:  {after.line()}")
    k = int(numpy.argmax([len(s.split()) for s in test.sentences]))  # a scene with the most shapes
    a = align(trainer.model, vocab, test.images[k], test.sentences[k])
    with contextlib.ExitStack() as stack:
        out = Path(args.out) if args.out else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dlia-demo-")))
        path = alignment_plot(test.images[k], a.words, a.regions, a.scores, out / "alignment.png",
                              title=f"S = {a.total:.2f}")
        where = "the --out folder" if args.out else "a temporary folder, removed now (--out DIR keeps it)"
        print(f"which region each word of \"{test.sentences[k]}\" matched → {path.name} in {where}")
    print("dlia caption align trains the full model (R@1 ≥ 80 % both ways on 1,000 held-out pairs); "
          "dlia caption rank IMAGE.png lists an image's best sentences")
def seq2seq_demo(args: argparse.Namespace) -> None:
    _section("9. seq2seq: dates in any style → ISO 8601, with attention")
    from dlia.data.tasks import dates_task
    from dlia.models.seq2seq import Seq2SeqConfig
    from dlia.models.translation import Seq2SeqTrainer, TrainConfig, translate
    from dlia.viz.attention import attention_plot

    steps, batch = 300, 32  # each training pair seen once: a few seconds
    task = dates_task(steps * batch, seed=args.seed, val_size=200, test_size=200)
    config = Seq2SeqConfig(embedding_size=16, hidden_size=32, bidirectional=True, attention="bahdanau", seed=args.seed)
    trainer = Seq2SeqTrainer(config, TrainConfig(batch_size=batch, learning_rate=1e-2, seed=args.seed), task)
    bar = Progress(total=steps, desc="seq2seq")
    for _ in range(steps):
        loss, _ = trainer.train_step()
        bar.update(loss=loss)
    bar.close()
    scores = {name: trainer.evaluate(pairs).exact for name, pairs in task.tests.items()}
    print(f"a bidirectional GRU encoder and a GRU decoder with Bahdanau attention, {steps} steps of {batch} dates: "
          f"exact match {scores['seen styles']:.0%} on unseen dates of the training styles, "
          f"{scores['held-out styles']:.0%} on styles never seen in training")
    texts = ["the 14th of July, 1989", "03-Mar-2001", "Nov 25, '26", "twenty-fifth november two thousand twenty-six"]
    truth = ["1989-07-14", "2001-03-03", "2026-11-25", "2026-11-25"]
    results = translate(trainer.model, (trainer.src_vocab, trainer.tgt_vocab), texts, max_len=trainer.max_len)
    for text, r, want, held in zip(texts, results, truth, (True, True, False, False)):
        line = f"  {text!r:50} → {r.text:12} {'right' if r.text == want else f'wrong ({want})':16}"
        print((line + ("(a held-out style)" if held else "")).rstrip())
    with contextlib.ExitStack() as stack:  # without --out the picture goes to a folder removed afterwards
        out = Path(args.out) if args.out else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dlia-demo-")))
        attention_plot([(r.source, r.tokens, r.attention) for r in results[:2]], out / "seq2seq_attention.png",
                       "which source characters each output character looked at")
        where = "the --out folder" if args.out else "a temporary folder, removed now (--out DIR keeps it)"
        print(f"attention of the first two → seq2seq_attention.png in {where}")
    print("dlia seq2seq train reaches ≥ 99 % on both in a few minutes; docs/seq2seq.md")
def caption_demo(args: argparse.Namespace) -> None:
    _section("10. Captioning: a CNN sees a scene, an RNN describes it")
    from dlia.data.shapes import scene
    from dlia.models.caption import CaptionConfig, Captioner, encode, evaluate, prepare_images

    # a task small enough for a few seconds: one shape per scene (its whole sentence, "a small red
    # circle at the top left"), 24×24 pictures (a 3×3 map, one cell per cell of the scene's grid) and
    # a GRU of 128 attending over the cells; dlia caption train learns scenes of 1-3 shapes (docs/captioning.md)
    config = CaptionConfig(embedding_size=32, hidden_size=128, channels=(8, 16, 16), image_size=24, seed=args.seed)
    rng = numpy.random.default_rng([args.seed, 9])
    train = [scene(rng, 64, 1) for _ in range(600)]
    test = [scene(rng, 64, 1) for _ in range(100)]
    x, xt = prepare_images([s.image for s in train], 24), prepare_images([s.image for s in test], 24)
    captions = [encode(s.sentence) for s in train]
    model = Captioner(config)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    steps = 250
    bar = Progress(total=steps, desc="captioner")
    for _ in range(steps):
        idx = rng.choice(len(train), 32, replace=False)
        opt.zero_grad()
        loss = model.loss(x[idx], [captions[i] for i in idx])
        loss.backward()
        opt.step()
        bar.update(loss=loss.item())
    bar.close()
    truths = [s.sentence for s in test]
    ev = evaluate(model, xt, truths)
    print(f"CNN 8-16-16 + GRU 128 attending over the 3×3 cells, {steps} steps on 600 one-shape scenes; "
          f"on 100 new scenes: exact match {100 * ev.exact:.0f} %, BLEU-4 {ev.bleu:.2f}")
    for t, c in list(zip(truths, ev.captions))[:5]:
        print(f"  true: {t:<44} said: {c}{'' if c == t else '   ✗'}")
    if args.out is not None:
        from dlia.viz.plots import captions_plot

        captions_plot([s.image for s in test[:8]], ev.captions[:8], truths[:8],
                      "captions of new one-shape scenes (green: exact)", Path(args.out) / "captions.png")
        print("the scenes with their captions → captions.png in the --out folder")  # no path: the output is compared
    print("dlia caption train learns whole sentences of 1-3 shapes; dlia caption describe captions your pictures")


def _digits(data: str | None) -> tuple[tuple[numpy.ndarray, numpy.ndarray] | None, str]:
    """The digits (images, labels) for sections 3 and 4, loaded once, or (None, why they are missing)."""
    path, missing = digits_file(data)
    if path is None:
        return None, missing
    return load_digits_8x8(path), ""


def run(args: argparse.Namespace) -> int:
    if args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}")
    check_output(args.out, "--out", folder=True)
    # the digits first: a missing or unusable --data file is refused before the first section runs
    args.digits, args.digits_missing = _digits(args.data)
    dlia.manual_seed(args.seed)
    print(f"dlia {dlia.__version__} demo (seed {args.seed})")
    neuron_demo()
    xor_demo(args.seed)
    digits_demo(args)
    conv_demo(args)
    graph_demo(args)
    charrnn_demo(args)
    word2vec_demo(args)
    lm_demo(args)
    seq2seq_demo(args)
    caption_demo(args)
    rank_demo(args)
    print("\nNext: see README.md for the library API and docs/ for each part of the lecture.")
    return 0
