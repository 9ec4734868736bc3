"""The lecture's "basic TensorFlow workflow", in dlia's graph mode (TensorFlow 1 style).

1. build a graph: constants, placeholders and the expressions over them — nothing runs yet;
2. run it in a Session, feeding the placeholders through ``feed_dict``;
3. keep state in Variables, which live in the Session between runs;
4. fit a line ``y = W x + b`` by running a train op from ``GradientDescentOptimizer(0.5).minimize(loss)``.

Run ``python examples/tf_workflow.py``; draw it with ``dlia graph show examples/tf_workflow.py -o g.svg``
(the module globals ``graph`` and ``fetches`` say what to draw).
"""

import numpy as np

from dlia import graph as G

TRUE_W, TRUE_B = np.array([[2.0], [-3.4]], dtype=np.float32), 4.2

graph = G.Graph("tf_workflow")
with graph.as_default():
    # 1. constants and an expression: c is a node, not a number
    a = G.constant(3.0, name="a")
    b = G.constant(4.0, name="b")
    c = (a * b + 1).named("c")
    # placeholders: inputs given at run time; None is "any batch size"
    x = G.placeholder((None,), name="x")
    doubled = (2 * x).named("doubled")
    # 3. a Variable: state kept by the Session (and what optimizers update)
    counter = G.Variable(np.float32(10.0), name="counter", trainable=False)
    scaled = (counter * x).named("scaled")
    # 4. linear regression y = X W + bias, trained by gradient descent on the mean squared error
    features = G.placeholder((None, 2), name="features")
    targets = G.placeholder((None, 1), name="targets")
    W = G.Variable(np.zeros((2, 1), dtype=np.float32), name="W")
    bias = G.Variable(np.zeros(1, dtype=np.float32), name="bias")
    prediction = (features @ W + bias).named("prediction")
    loss = ((prediction - targets) ** 2).mean().named("loss")
    train = G.GradientDescentOptimizer(0.5).minimize(loss)

#: what `dlia graph show` draws: the regression's loss and its train op (and all they need)
fetches = [loss, train]


def main() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    Y = X @ TRUE_W + TRUE_B + 0.01 * rng.normal(size=(200, 1)).astype(np.float32)
    with G.Session(graph) as sess:
        print(f"c = a * b + 1 = {sess.run(c):g}")
        print(f"doubled with x = [1, 2, 3]: {sess.run(doubled, feed_dict={x: [1, 2, 3]}).tolist()}")
        print(f"counter * x: {sess.run(scaled, feed_dict={x: [1, 2]}).tolist()}", end="; ")
        sess.assign(counter, 20.0)  # the variable's value persists between runs
        print(f"after assigning 20: {sess.run(scaled, feed_dict={x: [1, 2]}).tolist()}")
        feed = {features: X, targets: Y}
        print(f"initial loss {sess.run(loss, feed_dict=feed):.4f}")
        for step in range(1, 101):
            sess.run(train, feed_dict=feed)
            if step in (1, 10, 100):
                print(f"step {step:3d}: loss {sess.run(loss, feed_dict=feed):.6f}")
        w, bb = sess.value(W).ravel(), sess.value(bias)
    print(f"learned W = [{w[0]:.3f}, {w[1]:.3f}], b = {bb[0]:.3f} (true W = [2, -3.4], b = 4.2)")


if __name__ == "__main__":
    main()
