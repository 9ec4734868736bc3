"""An encoder–decoder (seq2seq) with optional attention, teacher forcing, greedy and beam search.

The pieces:

- ``Seq2SeqConfig``: the hyper-parameters, checked on construction.
- ``Seq2Seq``: source embedding → encoder RNN (GRU/LSTM/RNN, optionally bidirectional) over padded
  batches; a decoder with its own embedding and one recurrent cell per layer, run one step at a time,
  with Bahdanau (additive) or Luong (dot) attention over the encoder outputs, padding masked.
- ``Seq2Seq.loss``: teacher-forced mean cross-entropy over the real target tokens, with an optional
  scheduled-sampling probability.
- ``Seq2Seq.greedy_decode`` and ``Seq2Seq.beam_search``: decoding, with per-step attention weights.
- ``pad_batch``: lists of ids → a padded (B, S) array and the lengths.

Special ids (both vocabularies): ``PAD = 0``; in the target vocabulary also ``BOS = 1`` (the
decoder's first input) and ``EOS = 2`` (ends a sequence). Real tokens start at id 3
(``SPECIALS``), so a vocabulary of n characters has size n + 3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy

import dlia
from dlia import nn
from dlia.core import ops as _ops
from dlia.core.ops import rnn as _rnn
from dlia.core.ops.attention import additive_attention, dot_attention
from dlia.models.decoding import beam_search, length_penalty  # noqa: F401 (length_penalty: part of this module's API)

PAD, BOS, EOS = 0, 1, 2
#: the number of reserved ids at the start of each vocabulary
SPECIALS = 3
CELLS = ("gru", "lstm", "rnn")
ATTENTIONS = ("none", "bahdanau", "luong")


@dataclass
class Seq2SeqConfig:
    """Hyper-parameters of ``Seq2Seq``. A bad value raises ``ValueError`` naming the field."""

    cell: str = "gru"  # gru | lstm | rnn (tanh), for the encoder and the decoder
    embedding_size: int = 32  # source and target embeddings
    hidden_size: int = 64  # per direction in the encoder; the decoder's state
    layers: int = 1  # stacked layers in the encoder and in the decoder
    bidirectional: bool = False  # a bidirectional encoder; its final states are bridged by a Linear
    attention: str = "bahdanau"  # none | bahdanau (additive, context into the input) | luong (dot, into the output)
    dropout: float = 0.0  # on the embeddings, between layers and before the output layer
    seed: int = 0  # the initial weights, dropout masks and scheduled sampling

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"seq2seq config: cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"seq2seq config: attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}")
        for name in ("embedding_size", "hidden_size", "layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"seq2seq config: {name} must be an integer ≥ 1, got {value!r}")
        if not isinstance(self.bidirectional, bool):
            raise ValueError(f"seq2seq config: bidirectional must be True or False, got {self.bidirectional!r}")
        if not isinstance(self.dropout, (int, float)) or isinstance(self.dropout, bool) or not 0 <= self.dropout < 1:
            raise ValueError(f"seq2seq config: dropout must be a number in [0, 1), got {self.dropout!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seq2seq config: seed must be an integer ≥ 0, got {self.seed!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Seq2SeqConfig:
        """Build from a dict (e.g. a checkpoint's config); unknown keys are rejected."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown seq2seq config keys: {', '.join(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pad_batch(seqs: Sequence[Sequence[int]], pad: int = PAD) -> tuple[numpy.ndarray, numpy.ndarray]:
    """(ids (B, max length) padded with ``pad``, lengths (B,)) of a list of id sequences."""
    lengths = numpy.array([len(s) for s in seqs], dtype=numpy.int64)
    ids = numpy.full((len(seqs), int(lengths.max(initial=0))), pad, dtype=numpy.int64)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = s
    return ids, lengths


@dataclass
class Decoded:
    """What a decoder returns, one entry per source sentence.

    ``sequences``: the output ids, without BOS and EOS; ``scores``: the sum of the log-probabilities
    of every emitted token (EOS included when emitted); ``normalized``: the score the beam ranked by
    (= ``scores`` for greedy); ``attention``: one (steps, source length) array per sentence (row t =
    the weights used to emit token t), or ``None`` without attention.
    """

    sequences: list[list[int]]
    scores: list[float]
    normalized: list[float]
    attention: list[numpy.ndarray] | None


def _emittable(logits: dlia.Tensor) -> numpy.ndarray:
    """Log-probabilities (float64) of a step's logits, with PAD and BOS never emitted (−inf)."""
    logp = logits.log_softmax(axis=1).numpy().astype(numpy.float64)
    logp[:, [PAD, BOS]] = -numpy.inf
    return logp


class Seq2Seq(nn.Module):
    """An RNN encoder–decoder with optional attention.

    Args:
        config: the hyper-parameters.
        src_vocab_size: source ids are ``0 .. src_vocab_size − 1`` (0 = PAD).
        tgt_vocab_size: target ids are ``0 .. tgt_vocab_size − 1`` (0 = PAD, 1 = BOS, 2 = EOS).
        generator: the seeded source of the initial weights and dropout masks (default: ``config.seed``).
    """

    def __init__(self, config: Seq2SeqConfig, src_vocab_size: int, tgt_vocab_size: int,
                 generator: dlia.Generator | None = None) -> None:
        super().__init__()
        if src_vocab_size < 2 or tgt_vocab_size < SPECIALS + 1:
            raise ValueError(f"seq2seq: the source vocabulary needs ≥ 2 ids (PAD and one token) and the target one "
                             f"≥ {SPECIALS + 1} (PAD, BOS, EOS and one token), got {src_vocab_size} and {tgt_vocab_size}")
        gen = generator or dlia.Generator(config.seed)
        self.config, self.src_vocab_size, self.tgt_vocab_size = config, src_vocab_size, tgt_vocab_size
        E, H, L, c = config.embedding_size, config.hidden_size, config.layers, config.cell
        dirs = 2 if config.bidirectional else 1
        self.enc_size = dirs * H  # the width of the encoder's outputs
        self.src_embedding = nn.Embedding(src_vocab_size, E, padding_idx=PAD, generator=gen)
        layer = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[c]
        self.encoder = layer(E, H, num_layers=L, batch_first=True, dropout=config.dropout if L > 1 else 0.0,
                             bidirectional=config.bidirectional, generator=gen)
        if config.bidirectional:  # [forward final, backward final] → the decoder's initial state, per layer
            self.bridge = nn.Linear(2 * H, H, generator=gen)
            if c == "lstm":
                self.bridge_c = nn.Linear(2 * H, H, generator=gen)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, E, padding_idx=PAD, generator=gen)
        cell = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}[c]
        first_in = E + (self.enc_size if config.attention == "bahdanau" else 0)
        self.decoder = nn.ModuleList([cell(first_in if k == 0 else H, H, generator=gen) for k in range(L)])
        if config.attention == "bahdanau":  # score_j = v·tanh(W_q s + W_k h_j)
            self.att_query = nn.Linear(H, H, bias=False, generator=gen)
            self.att_key = nn.Linear(self.enc_size, H, generator=gen)
            self.att_v = nn.Linear(H, 1, bias=False, generator=gen)
        elif config.attention == "luong":  # score_j = s·h_j (s·K h_j when the encoder is bidirectional)
            if self.enc_size != H:
                self.att_key = nn.Linear(self.enc_size, H, bias=False, generator=gen)
            self.att_combine = nn.Linear(H + self.enc_size, H, generator=gen)  # h̃ = tanh(W_c [s, c])
        self.drop = nn.Dropout(config.dropout, generator=gen)
        self.out = nn.Linear(H, tgt_vocab_size, generator=gen)
        self._sampling_rng = numpy.random.default_rng(config.seed)

    # -- checks ------------------------------------------------------------------------------------
    def _check(self, what: str, ids: Any, lengths: Any, vocab: int) -> tuple[numpy.ndarray, numpy.ndarray]:
        ids, lengths = numpy.asarray(ids), numpy.asarray(lengths)
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(f"seq2seq: {what} must be a (batch, length) integer array, got shape {ids.shape} of {ids.dtype}")
        if lengths.shape != (ids.shape[0],) or lengths.dtype.kind not in "iu":
            raise ValueError(f"seq2seq: {what} lengths must be {ids.shape[0]} integers, got shape {lengths.shape} "
                             f"of {lengths.dtype}")
        if lengths.size and lengths.min() < 1:
            raise ValueError(f"seq2seq: {what} sequence {int(lengths.argmin())} is empty (length {int(lengths.min())})")
        if lengths.size and lengths.max() > ids.shape[1]:
            raise ValueError(f"seq2seq: {what} sequence {int(lengths.argmax())} has length {int(lengths.max())} "
                             f"> the padded width {ids.shape[1]}")
        real = numpy.arange(ids.shape[1])[None, :] < lengths[:, None]
        bad = real & ((ids < 0) | (ids >= vocab))
        if bad.any():
            b, t = map(int, numpy.argwhere(bad)[0])
            raise ValueError(f"seq2seq: {what} id {int(ids[b, t])} at [{b}, {t}] is out of range [0, {vocab})")
        return numpy.where(real, ids, PAD).astype(numpy.int64), lengths.astype(numpy.int64)

    # -- the encoder -------------------------------------------------------------------------------
    def encode(self, src: Any, src_len: Any) -> tuple[dlia.Tensor, numpy.ndarray, list[Any]]:
        """Encode a padded batch: (outputs (B, S, enc_size), zero at padding; mask (B, S), True on real
        positions; the decoder's initial state, one entry per layer: h, or (h, c) for an LSTM).

        Padding never reaches a real position's result, so a sentence's results do not depend on its
        batch: a GRU or RNN encoder runs the whole batch at once, each row as if cut to its length
        (``_encode_masked``); an LSTM encoder runs groups of one length, cut to it (its fused op keeps
        the final cell state only, not the cell state at every row's own last step).
        """
        src, src_len = self._check("source", src, src_len, self.src_vocab_size)
        S = src.shape[1]
        L, dirs = self.config.layers, 2 if self.config.bidirectional else 1
        if self.config.cell == "lstm":
            outputs, h_n, c_n = self._encode_groups(self.drop(self.src_embedding(src)), src_len)
        else:
            # without dropout on the embeddings the first layer reads its input projection from a table
            dropped = self.drop.p > 0 and self.drop.training
            outputs, h_n = self._encode_masked(src, src_len, self.drop(self.src_embedding(src)) if dropped else None)
            c_n = None
        state = []
        for k in range(L):
            if dirs == 2:
                h = dlia.tanh(self.bridge(dlia.concatenate([h_n[2 * k], h_n[2 * k + 1]], axis=1)))
                c = self.bridge_c(dlia.concatenate([c_n[2 * k], c_n[2 * k + 1]], axis=1)) if c_n is not None else None
            else:
                h, c = h_n[k], (c_n[k] if c_n is not None else None)
            state.append((h, c) if c is not None else h)
        mask = numpy.arange(S)[None, :] < src_len[:, None]
        return outputs, mask, state

    def _encode_groups(self, emb: dlia.Tensor, src_len: numpy.ndarray
                       ) -> tuple[dlia.Tensor, dlia.Tensor, dlia.Tensor | None]:
        """The encoder run on each group of rows of one length, cut to it: (outputs (B, S, enc_size),
        zero at padding; h_n and c_n (or None), (L·dirs, B, H)), as the module returns them."""
        S = emb.shape[1]
        outs, finals, order = [], [], []
        for length in numpy.unique(src_len):
            rows = numpy.flatnonzero(src_len == length)
            out, state = self.encoder(emb[rows, :int(length)])
            if length < S:
                out = dlia.concatenate([out, dlia.zeros(len(rows), S - int(length), self.enc_size, dtype=out.dtype)], axis=1)
            outs.append(out)
            finals.append(state)
            order.append(rows)
        inverse = numpy.argsort(numpy.concatenate(order), kind="stable")
        outputs = dlia.concatenate(outs, axis=0)[inverse] if len(outs) > 1 else outs[0]

        def join(parts: list[dlia.Tensor]) -> dlia.Tensor:  # (L·dirs, b, H) groups → (L·dirs, B, H)
            return dlia.concatenate(parts, axis=1)[:, inverse] if len(parts) > 1 else parts[0]

        if self.config.cell == "lstm":
            return outputs, join([f[0] for f in finals]), join([f[1] for f in finals])
        return outputs, join(finals), None

    def _encode_masked(self, src: numpy.ndarray, src_len: numpy.ndarray, emb: dlia.Tensor | None = None
                       ) -> tuple[dlia.Tensor, dlia.Tensor]:
        """The GRU/RNN encoder over the whole padded batch, one fused op per layer and direction, each
        row computed as if cut to its length: (outputs (B, S, enc_size), zero at padding; h_n (L·dirs, B, H)).

        The forward direction simply runs on over the padding: position t sees positions ≤ t only, so
        the real positions are exact, and a row's final state is its output at its last real step
        ``len − 1``. The backward direction runs forward over each row reversed *within its length*
        (index ``len − 1 − t`` for t < len, padding left in place after it): real positions come first,
        its output at step ``len − 1`` is the final state, and the same permutation (an involution) puts
        the outputs back in place. One op over (S, B) instead of two per distinct length, with larger
        products: what a packed sequence does in torch. Padding positions are zeroed at the end.

        ``emb``: the embedded source (B, S, E), dropout applied. Without it (no dropout), the first
        layer's input projection x·W_ihᵀ is read from the table E·W_ihᵀ (V, k·H) by id, as
        ``nn.GRU.forward_embedded`` does: a V-row product instead of an (S·B)-row one, and no
        (S·B)-row products for the gradients of x and W_ih either.
        """
        enc = self.encoder
        B, S = src.shape
        t = numpy.arange(S)[:, None]
        lengths = src_len[None, :]
        rev = (numpy.where(t < lengths, lengths - 1 - t, t), numpy.arange(B)[None, :])  # (S, B) time-major
        last = (src_len - 1, numpy.arange(B))
        op = _rnn.GRU if enc.mode == "GRU" else _rnn.RNN
        extra = {"relu": True} if enc.mode == "RNN_RELU" else {}
        h0 = dlia.zeros(B, enc.hidden_size, dtype=enc.weight_hh_l0.dtype)
        x = emb.transpose(0, 1) if emb is not None else None  # (S, B, E): the ops are time-major
        ids = src.T
        finals = []
        for layer in range(enc.num_layers):
            outs = []
            for d, suffix in enumerate(("", "_reverse")[:enc.num_directions]):
                w = enc._weights(layer, suffix)
                if x is None:  # layer 0, no dropout: the projection of every id, picked by id
                    table = _ops.matmul(self.src_embedding.weight, w[0].T)
                    projected = _ops.embedding(table, ids if d == 0 else ids[rev], padding_idx=PAD)
                    out = op.apply(projected, h0, *w[1:], projected=True, **extra)  # (S, B, H)
                else:
                    out = op.apply(x if d == 0 else x[rev], h0, *w, **extra)
                finals.append(out[last])
                outs.append(out if d == 0 else out[rev])
            x = outs[0] if len(outs) == 1 else dlia.concatenate(outs, axis=2)
            if enc.dropout and enc.training and layer < enc.num_layers - 1:
                x = _ops.dropout(x, enc.dropout, True, enc.generator)  # as the module does
        mask = (t < lengths)[:, :, None]
        outputs = dlia.where(mask, x, 0.0).transpose(0, 1)
        return outputs, dlia.stack(finals, axis=0)

    def _keys(self, outputs: dlia.Tensor) -> dlia.Tensor | None:
        if self.config.attention == "bahdanau" or (self.config.attention == "luong" and self.enc_size != self.config.hidden_size):
            return self.att_key(outputs)
        return outputs if self.config.attention == "luong" else None

    def _attend(self, query: dlia.Tensor, keys: dlia.Tensor, outputs: dlia.Tensor, mask: numpy.ndarray
                ) -> tuple[dlia.Tensor, dlia.Tensor]:
        """(context (B, enc_size), weights (B, S)) of a query (B, H); padded positions get weight 0.

        One op for the scores, the masked softmax and the context (``dlia.core.ops.attention``)."""
        if self.config.attention == "bahdanau":
            return additive_attention(self.att_query(query), keys, self.att_v.weight, outputs, mask)
        return dot_attention(query, keys, outputs, mask)

    # -- the decoder -------------------------------------------------------------------------------
    def _cell(self, cell: nn.Module, x: dlia.Tensor, state: Any) -> Any:
        """``cell(x, state)``, the same values (to rounding) as one node of the graph: the sequence
        layers' fused op run over one time step, instead of the cell's dozen element-wise ops (each
        a node with its own vjp, which at B = 64 cost more in Python than in arithmetic)."""
        weights = [cell.weight_ih, cell.weight_hh] + [b for b in (cell.bias_ih, cell.bias_hh) if b is not None]
        x = x.reshape(1, *x.shape)  # (1, B, I): one time step
        if isinstance(cell, nn.LSTMCell):
            packed = _rnn.LSTM.apply(x, state[0], state[1], *weights)  # [h_1, c_1]
            return packed[0], packed[1]
        if isinstance(cell, nn.GRUCell):
            return _rnn.GRU.apply(x, state, *weights)[0]
        return _rnn.RNN.apply(x, state, *weights, relu=cell.nonlinearity == "relu")[0]

    def step(self, prev: Any, state: list[Any], outputs: dlia.Tensor, keys: dlia.Tensor | None, mask: numpy.ndarray
             ) -> tuple[dlia.Tensor, list[Any], dlia.Tensor | None]:
        """One decoder step: previous target ids (B,) and state → (logits (B, V), new state, attention
        weights (B, S) or None)."""
        x, new_state, weights = self._features(prev, state, outputs, keys, mask)
        return self.out(x), new_state, weights

    def _features(self, prev: Any, state: list[Any], outputs: dlia.Tensor, keys: dlia.Tensor | None,
                  mask: numpy.ndarray) -> tuple[dlia.Tensor, list[Any], dlia.Tensor | None]:
        """``step`` without its output layer: (what ``self.out`` maps to the logits (B, H), dropout
        applied; new state; attention weights or None)."""
        x = self.drop(self.tgt_embedding(numpy.asarray(prev, dtype=numpy.int64)))
        weights = None
        attention = self.config.attention
        if attention == "bahdanau":  # the query is the previous top-layer state; the context joins the input
            top = state[-1][0] if isinstance(state[-1], tuple) else state[-1]
            context, weights = self._attend(top, keys, outputs, mask)
            x = dlia.concatenate([x, context], axis=1)
        new_state = []
        for k, cell in enumerate(self.decoder):
            s = self._cell(cell, x, state[k])
            new_state.append(s)
            x = s[0] if isinstance(s, tuple) else s
            if k < len(self.decoder) - 1:
                x = self.drop(x)
        if attention == "luong":  # the query is the new top-layer state; the context joins the output
            context, weights = self._attend(x, keys, outputs, mask)
            x = dlia.tanh(self.att_combine(dlia.concatenate([x, context], axis=1)))
        return self.drop(x), new_state, weights

    def forward(self, src: Any, src_len: Any, tgt_in: Any, sampling: float = 0.0) -> tuple[dlia.Tensor, dlia.Tensor | None]:
        """Teacher-forced logits (B, T, V) for decoder inputs ``tgt_in`` (B, T) (BOS first), and the
        attention weights (B, T, S) or None. With ``sampling`` = p > 0, each row's input at steps
        t ≥ 1 is, with probability p, the model's own argmax at step t − 1 (scheduled sampling).

        The values of ``step`` at every t, with the output layer applied once to all steps together
        (one product (B·T, H)·(H, V) and one node, instead of T)."""
        outputs, mask, state = self.encode(src, src_len)
        keys = self._keys(outputs)
        tgt_in = numpy.asarray(tgt_in, dtype=numpy.int64)
        features, weights, prev = [], [], tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            if t > 0:
                prev = tgt_in[:, t]
                if sampling > 0:
                    with dlia.no_grad():  # the previous step's logits, only for their argmax
                        own = self.out(features[-1]).numpy().argmax(axis=1)
                    prev = numpy.where(self._sampling_rng.random(len(prev)) < sampling, own, prev)
            x, state, w = self._features(prev, state, outputs, keys, mask)
            features.append(x)
            weights.append(w)
        att = dlia.stack(weights, axis=1) if weights[0] is not None else None
        return self.out(dlia.stack(features, axis=1)), att

    def loss(self, src: Any, src_len: Any, tgt_in: Any, tgt_out: Any, tgt_len: Any, sampling: float = 0.0) -> dlia.Tensor:
        """Mean cross-entropy over the real target tokens (teacher forcing).

        Args:
            src, src_len: padded source ids (B, S) and lengths (B,).
            tgt_in: decoder inputs (B, T): BOS then the target tokens.
            tgt_out: what each step should emit (B, T): the target tokens then EOS.
            tgt_len: real steps per row (B,) (target tokens + 1); later steps are padding, left out.
            sampling: the scheduled-sampling probability (0: pure teacher forcing); seeded by ``config.seed``.
        """
        tgt_out, tgt_len = self._check("target", tgt_out, tgt_len, self.tgt_vocab_size)
        tgt_in = numpy.asarray(tgt_in)
        if tgt_in.shape != tgt_out.shape:
            raise ValueError(f"seq2seq: tgt_in {tgt_in.shape} and tgt_out {tgt_out.shape} must have the same shape")
        tgt_in, _ = self._check("target input", tgt_in, tgt_len, self.tgt_vocab_size)
        if not 0 <= sampling <= 1:
            raise ValueError(f"seq2seq: sampling must be a probability in [0, 1], got {sampling!r}")
        logits, _ = self(src, src_len, tgt_in, sampling=sampling)
        B, T, V = logits.shape
        real = numpy.arange(T)[None, :] < tgt_len[:, None]
        target = numpy.where(real, tgt_out, -100)
        return dlia.cross_entropy(logits.reshape(B * T, V), target.reshape(-1), ignore_index=-100)

    # -- decoding ----------------------------------------------------------------------------------
    def greedy_decode(self, src: Any, src_len: Any, max_len: int = 50) -> Decoded:
        """The argmax token at every step, until EOS or ``max_len`` tokens (EOS included)."""
        if max_len < 1:
            raise ValueError(f"seq2seq: max_len must be ≥ 1, got {max_len!r}")
        with dlia.no_grad():
            outputs, mask, state = self.encode(src, src_len)
            keys = self._keys(outputs)
            B = mask.shape[0]
            prev = numpy.full(B, BOS, dtype=numpy.int64)
            done = numpy.zeros(B, dtype=bool)
            seqs: list[list[int]] = [[] for _ in range(B)]
            scores = numpy.zeros(B)
            atts: list[list[numpy.ndarray]] = [[] for _ in range(B)]
            for _ in range(max_len):
                logits, state, w = self.step(prev, state, outputs, keys, mask)
                logp = _emittable(logits)
                best = logp.argmax(axis=1)
                for b in numpy.flatnonzero(~done):
                    scores[b] += logp[b, best[b]]
                    if w is not None:
                        atts[b].append(w.numpy()[b])
                    if best[b] == EOS:
                        done[b] = True
                    else:
                        seqs[b].append(int(best[b]))
                prev = best
                if done.all():
                    break
        attention = [numpy.array(a).reshape(len(a), mask.shape[1]) for a in atts] if keys is not None else None
        return Decoded(seqs, scores.tolist(), scores.tolist(), attention)

    def beam_search(self, src: Any, src_len: Any, beam: int = 5, max_len: int = 50, length_norm: float = 0.0) -> Decoded:
        """Beam search per sentence: keep the ``beam`` most probable prefixes (sum of log-probs).

        At each step every live prefix is extended by every token and the ``beam`` best candidates
        are kept; those ending in EOS are finished and leave the beam (so it shrinks). Search stops
        when none is live or after ``max_len`` tokens (live prefixes then count as finished). The
        best finished hypothesis by ``score / ((5 + len)/6)^length_norm`` (GNMT; len counts EOS) is
        returned; ``length_norm = 0`` ranks by the raw sum. ``beam = 1`` is greedy decoding.
        """
        if not isinstance(beam, int) or beam < 1:
            raise ValueError(f"seq2seq: beam must be an integer ≥ 1, got {beam!r}")
        if max_len < 1:
            raise ValueError(f"seq2seq: max_len must be ≥ 1, got {max_len!r}")
        src, src_len = self._check("source", src, src_len, self.src_vocab_size)
        result = Decoded([], [], [], [] if self.config.attention != "none" else None)
        with dlia.no_grad():
            for b in range(src.shape[0]):
                seq, score, norm, att = self._beam_one(src[b:b + 1, :src_len[b]], src_len[b:b + 1], beam, max_len, length_norm)
                result.sequences.append(seq)
                result.scores.append(score)
                result.normalized.append(norm)
                if result.attention is not None:
                    result.attention.append(att)
        return result

    def _beam_one(self, src: numpy.ndarray, src_len: numpy.ndarray, K: int, max_len: int, alpha: float
                  ) -> tuple[list[int], float, float, numpy.ndarray]:
        """One sentence's beam search: ``dlia.models.decoding.beam_search`` over the decoder's steps,
        with each step's attention row as the hypotheses' extra."""
        outputs, mask, state = self.encode(src, src_len)
        keys = self._keys(outputs)

        def step(prev: numpy.ndarray, state: list[Any]) -> tuple[numpy.ndarray, list[Any], numpy.ndarray | None]:
            rep = numpy.zeros(len(prev), dtype=numpy.int64)  # every hypothesis reads the one source
            logits, new_state, w = self.step(prev, state, outputs[rep], keys[rep] if keys is not None else None,
                                             numpy.repeat(mask, len(prev), axis=0))
            return _emittable(logits), new_state, (w.numpy() if w is not None else None)

        def select(state: list[Any], rows: numpy.ndarray) -> list[Any]:
            return [(s[0][rows], s[1][rows]) if isinstance(s, tuple) else s[rows] for s in state]

        best = beam_search(step, select, state, BOS, EOS, K, max_len, alpha)
        tokens = best.tokens[:-1] if best.tokens and best.tokens[-1] == EOS else best.tokens
        att = numpy.array(best.extras).reshape(len(best.extras), src.shape[1])
        return tokens, best.score, best.normalized, att
