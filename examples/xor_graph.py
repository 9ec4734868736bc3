"""XOR with a 2-H-1 network in dlia's graph mode, trained with Adam until all four points are right.

The graph is built once (placeholders for inputs and targets, Variables for the weights, a sigmoid
hidden layer, a binary cross-entropy loss and ``AdamOptimizer(...).minimize(loss)``); training runs
the train op in a Session again and again, feeding the four XOR points.

Run ``python examples/xor_graph.py``; draw it with ``dlia graph show examples/xor_graph.py -o xor.svg``.
"""

import numpy as np

import dlia
from dlia import graph as G

HIDDEN, SEED, LR, MAX_STEPS = 4, 0, 0.05, 5000
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)

rng = np.random.default_rng(SEED)
graph = G.Graph("xor")
with graph.as_default():
    x = G.placeholder((None, 2), name="x")
    t = G.placeholder((None, 1), name="t")
    W1 = G.Variable(rng.normal(0, 1, (2, HIDDEN)).astype(np.float32), name="W1")
    b1 = G.Variable(np.zeros(HIDDEN, dtype=np.float32), name="b1")
    W2 = G.Variable(rng.normal(0, 1, (HIDDEN, 1)).astype(np.float32), name="W2")
    b2 = G.Variable(np.zeros(1, dtype=np.float32), name="b2")
    hidden = dlia.sigmoid(x @ W1 + b1).named("hidden")
    logits = (hidden @ W2 + b2).named("logits")
    loss = dlia.binary_cross_entropy_with_logits(logits, t).named("loss")
    probability = dlia.sigmoid(logits).named("probability")
    train = G.AdamOptimizer(LR).minimize(loss)

#: what `dlia graph show` draws: the train op (with the loss and its gradients) and the prediction
fetches = [train, probability]


def main() -> None:
    feed = {x: X, t: Y}
    with G.Session(graph) as sess:
        step = 0
        while step < MAX_STEPS:
            for _ in range(25):
                sess.run(train, feed_dict=feed)
            step += 25
            p = sess.run(probability, feed_dict={x: X})
            if np.array_equal((p > 0.5).astype(int), Y.astype(int)):
                break
        final_loss = sess.run(loss, feed_dict=feed)
    pred = (p.ravel() > 0.5).astype(int)
    status = "all four points right" if np.array_equal(pred, Y.ravel()) else "NOT all right"
    print(f"2-{HIDDEN}-1 sigmoid net, Adam lr {LR}: {status} after {step} steps, loss {final_loss:.4f}")
    print(f"P(1) = {[round(float(v), 3) for v in p.ravel()]}")
    print(f"predictions {pred.tolist()} (targets {Y.ravel().astype(int).tolist()})")


if __name__ == "__main__":
    main()
