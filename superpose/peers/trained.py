"""Trained baselines: one-hidden-layer ReLU MLPs fitted by gradient descent (needs ``superpose[torch]``).

The model is ``h = ReLU(W1 z + b1)``, ``out = W2 h`` (explicit outputs: one linear read-off per
output, as in Newgas 2507.09816 and Busch's thesis) or ``out = ReLU(W2 h + b2)`` when the
output is a fixed Bloom code (so the trained network works in superposition like ours). ``z``
is the input layer: the features themselves, or a fixed Bloom or linear code of them.

Training data are s-sparse inputs of the task (a third uniform, a third holding every operand
of a random output gate, a third all but one), labelled by the shared ground-truth evaluator.
The loss is a mean squared error whose true (rare) outputs are weighted ``pos_weight`` times
more. Units are leaky ReLUs (slope 0.1) for the first 70% of the steps, so that no unit dies
for good, then plain ReLUs, the activation the saved network computes (Busch's thesis trains
leaky-ReLU first, then fine-tunes with ReLU). Several widths train at once along an instance
axis (one batched ``einsum``); biases of ReLU units are kept <= 0 so that an all-zero input
maps to zero (the network invariant).
Each trained instance is converted to a :class:`~superpose.network.Network` (dense weights as
CSR) and checked by the same verifier as every construction.

torch is imported lazily: ``import superpose`` works without it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse

from superpose.codes import BloomCode, Code, ExplicitCode, LinearCode
from superpose.errors import SuperposeError
from superpose.evaluation import evaluate
from superpose.network import Layer, Network
from superpose.peers.universal_and import READOUT_TRAINED, DenseExplicitCode
from superpose.task import Task
from superpose.verification import random_inputs

LEAKY_SLOPE = 0.1
LEAKY_FRACTION = 0.7


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise SuperposeError(
            "trained baselines need the optional extra: pip install 'superpose[torch]'"
        ) from None
    return torch


def torch_available() -> bool:
    """True when torch can be imported (the trained baselines are then available).

    Example:
        >>> isinstance(torch_available(), bool)
        True
    """
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# --- data ---------------------------------------------------------------------------------


class _Sampler:
    """s-sparse training inputs: uniform, a full output gate, or a gate missing one operand."""

    def __init__(self, task: Task, rng: np.random.Generator) -> None:
        self.task, self.rng = task, rng
        self.m, self.s = task.features, task.sparsity
        outs = task.outputs
        simple = task.depth <= 1 and (outs >= task.features).all()
        if simple:
            gates = outs - task.features
            arity = task.arity[gates]
            simple = bool(len(gates)) and bool((arity == arity[0]).all()) and arity[0] <= self.s
        self.ops: np.ndarray | None = None
        if simple:
            k = int(arity[0])
            starts = task.gate_indptr[gates]
            self.ops = task.gate_inputs[starts[:, None] + np.arange(k)[None, :]]

    def batch(self, n: int) -> sparse.csr_array:
        if self.ops is None:  # general circuits: the verifier's sampler
            return next(random_inputs(self.task, n, self.rng, batch_size=n))
        m, s, rng = self.m, self.s, self.rng
        k = self.ops.shape[1]
        kind = rng.integers(0, 3, n)  # 0 uniform, 1 full gate, 2 gate minus one operand
        gate_ops = self.ops[rng.integers(0, len(self.ops), n)]
        idx = rng.integers(0, m, (n, s))
        forced = np.where(kind == 1, k, np.where(kind == 2, k - 1, 0))
        excluded = np.where(kind == 2, gate_ops[:, -1], -1)
        cols = np.arange(s)[None, :]
        ops_pad = np.zeros((n, s), dtype=np.int64)
        ops_pad[:, :k] = gate_ops
        idx = np.where(cols < forced[:, None], ops_pad, idx)
        for _ in range(1000):  # redraw duplicates and the excluded operand
            srt = np.sort(idx, axis=1)
            dup_row = (np.diff(srt, axis=1) == 0).any(axis=1)
            bad = (idx == excluded[:, None]) & (cols >= forced[:, None])
            if dup_row.any():
                first = np.zeros_like(bad)
                for j in range(1, s):
                    first[:, j] = (idx[:, :j] == idx[:, j : j + 1]).any(axis=1)
                bad |= first & (cols >= forced[:, None])
            if not bad.any():
                break
            idx[bad] = rng.integers(0, m, int(bad.sum()))
        rows = np.repeat(np.arange(n), s)
        x = sparse.csr_array((np.ones(n * s, dtype=np.int32), (rows, idx.ravel())), shape=(n, m))
        x.sum_duplicates()
        x.data[:] = 1
        return x


def _dense(z: Any) -> np.ndarray:
    return z.toarray() if sparse.issparse(z) else np.asarray(z)


# --- model --------------------------------------------------------------------------------


def _groups(widths: Sequence[int], ratio: float = 1.6) -> list[list[int]]:
    """Indices of ``widths`` grouped so that each group's widths are within ``ratio`` of its max."""
    order = sorted(range(len(widths)), key=lambda i: -widths[i])
    groups: list[list[int]] = []
    for i in order:
        if groups and widths[groups[-1][0]] <= ratio * max(widths[i], 1):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def train_mlp(
    task: Task,
    widths: Sequence[int],
    *,
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 3e-3,
    pos_weight: float | str = "sqrt",
    seed: int = 0,
    input_code: Code | None = None,
    output_code: Code | None = None,
    progress: bool = False,
    save_dir: str | os.PathLike[str] | None = None,
    threads: int | None = 1,
) -> list[Network]:
    """Train one ReLU MLP per hidden width in ``widths`` on ``task``; return them as Networks.

    ``pos_weight`` weighs the loss of true outputs: a number, ``"sqrt"`` (the square root of
    the negative/positive ratio of the training data, the default) or ``"balanced"`` (the
    ratio itself). ``input_code`` / ``output_code`` fix the input layer / output layer
    (explicit when ``None``; Bloom or linear codes make the network work in superposition).
    A width of 0 means no hidden layer (only with a Bloom output code: one weight layer from
    the input code to the output code, like the two-layer construction). Seeds: ``seed``
    drives both the torch initialisation (``torch.Generator``) and the data
    (``numpy.random.Generator``). ``threads`` sets torch's intra-op threads during training
    (1 by default: on a shared 2-core machine more threads contend and run slower).
    ``save_dir`` writes each network with :func:`superpose.io.save_network` into
    ``save_dir/trained-w{width}``.

    Example:
        >>> from superpose import families, verify
        >>> task = families.universal_and(8, sparsity=2)
        >>> nets = train_mlp(task, [28], steps=300, seed=0)  # doctest: +SKIP
        >>> nets[0].extras["readout"]  # doctest: +SKIP
        'trained'
    """
    torch = _torch()
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        return _train(
            torch,
            task,
            widths,
            steps,
            batch_size,
            lr,
            pos_weight,
            seed,
            input_code,
            output_code,
            progress,
            save_dir,
        )
    finally:
        torch.set_num_threads(old_threads)


def _train(
    torch: Any,
    task: Task,
    widths: Sequence[int],
    steps: int,
    batch_size: int,
    lr: float,
    pos_weight: float | str,
    seed: int,
    input_code: Code | None,
    output_code: Code | None,
    progress: bool,
    save_dir: str | os.PathLike[str] | None,
) -> list[Network]:
    widths = [int(w) for w in widths]
    if not widths or min(widths) < 0:
        raise SuperposeError(f"widths must be non-negative integers, got {widths}")
    if steps < 1 or batch_size < 1:
        raise SuperposeError("steps and batch_size must be >= 1")
    in_code = input_code if input_code is not None else DenseExplicitCode(task.features)
    out_code = output_code if output_code is not None else ExplicitCode(task.n_outputs)
    if in_code.n_features != task.features or out_code.n_features != task.n_outputs:
        raise SuperposeError("the codes do not match the task's inputs and outputs")
    bloom_out = isinstance(out_code, BloomCode)
    linear_out = isinstance(out_code, LinearCode)
    if min(widths) == 0 and not bloom_out:
        raise SuperposeError("a width of 0 (no hidden layer) needs a Bloom output code")
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(int(seed))
    sampler = _Sampler(task, rng)

    def make_batch(n: int) -> tuple[Any, Any, Any]:
        x = sampler.batch(n)
        z = _input_tensor(torch, in_code, x)
        truth = evaluate(task, x).values
        y = torch.from_numpy(truth.toarray().astype(np.float32))
        target = (
            torch.from_numpy(_dense(out_code.encode(truth)).astype(np.float32)) if bloom_out else y
        )
        return z, y, target

    # Positive weight from a probe batch.
    _, _, probe = make_batch(min(2048, 8 * batch_size))
    pos = float(probe.sum())
    neg = float(probe.numel() - pos)
    if isinstance(pos_weight, str):
        ratio = neg / max(pos, 1.0)
        if pos_weight == "sqrt":
            pw = math.sqrt(ratio)
        elif pos_weight == "balanced":
            pw = ratio
        else:
            raise SuperposeError(
                f"pos_weight must be a number, 'sqrt' or 'balanced', got {pos_weight!r}"
            )
    else:
        pw = float(pos_weight)
    active_in = float((_dense(in_code.encode(sampler.batch(256))) != 0).sum(1).mean())
    n_in, n_out = in_code.width, out_code.width
    decode_matrix = (
        torch.from_numpy(out_code.matrix.astype(np.float32)) if linear_out else None
    )  # (n_out, m')

    from superpose.cli._app import progress_bar

    groups = [
        _Group(
            torch,
            gen,
            [widths[i] for i in g],
            g,
            n_in,
            n_out,
            active_in,
            bloom_out,
            lr,
            steps,
            not isinstance(in_code, LinearCode),
        )
        for g in _groups(widths)
    ]
    label = f"training {len(widths)} width(s) on {task.n_outputs} outputs"
    losses = [torch.zeros(len(g.widths)) for g in groups]
    with progress_bar(label, steps, enabled=progress) as advance:
        for step in range(steps):
            z, _y, target = make_batch(batch_size)
            weight = 1.0 + (pw - 1.0) * target
            # Leaky ReLU for the first 70% of the steps (no unit dies for good), then the
            # plain ReLU the saved network computes (Busch's leaky-then-ReLU schedule).
            slope = LEAKY_SLOPE if step < LEAKY_FRACTION * steps else 0.0
            for gi, group in enumerate(groups):
                out = group.forward(z, decode_matrix, slope)
                per_instance = (weight * (out - target[None]) ** 2).mean(dim=(1, 2))
                group.step(per_instance.sum())
                losses[gi] = per_instance.detach()
            advance(1)
    results: dict[int, Network] = {}
    for gi, group in enumerate(groups):
        for j, (i, w) in enumerate(zip(group.indices, group.widths, strict=True)):
            w1, b1, w2, b2 = group.instance(j)
            info = {
                "width": w,
                "steps": steps,
                "batch_size": batch_size,
                "lr": lr,
                "pos_weight": pw,
                "seed": seed,
                "final_loss": float(losses[gi][j]),
            }
            results[i] = _to_network(task, in_code, out_code, w1, b1, w2, b2, info)
    nets = [results[i] for i in range(len(widths))]
    if save_dir is not None:
        from superpose.io import save_network

        for net in nets:
            save_network(net, os.path.join(save_dir, f"trained-w{net.extras['hidden_width']}"))
    return nets


def _input_tensor(torch: Any, code: Code, x: sparse.csr_array) -> Any:
    """The input layer for a batch: a dense tensor, or (indices, values) of its on-units.

    Explicit and Bloom input layers are 0/1 and sparse (s or s*l on-units of thousands), so the
    first layer gathers the weight rows of the on-units instead of a dense product.
    """
    if isinstance(code, LinearCode):
        return torch.from_numpy(np.asarray(code.encode(x), dtype=np.float32))
    z = code.encode(x)
    z = sparse.csr_array(z) if sparse.issparse(z) else sparse.csr_array(np.asarray(z))
    z.eliminate_zeros()
    counts = np.diff(z.indptr)
    n, width = z.shape[0], max(int(counts.max(initial=0)), 1)
    rows = np.repeat(np.arange(n), counts)
    pos = np.arange(z.nnz) - np.repeat(z.indptr[:-1], counts)
    idx = np.zeros((n, width), dtype=np.int64)
    val = np.zeros((n, width), dtype=np.float32)
    idx[rows, pos] = z.indices
    val[rows, pos] = z.data
    return torch.from_numpy(idx), torch.from_numpy(val)


class _Group:
    """Instances of similar widths, padded to the largest and trained along one instance axis.

    The first weight layer is stored input-major, ``(instance, n_in, out)``, so a sparse input
    layer reads it by gathering the rows of its on-units.
    """

    def __init__(
        self,
        torch: Any,
        gen: Any,
        widths: list[int],
        indices: list[int],
        n_in: int,
        n_out: int,
        active_in: float,
        bloom_out: bool,
        lr: float,
        steps: int,
        sparse_input: bool,
    ) -> None:
        self.torch, self.widths, self.indices = torch, widths, indices
        self.inst, self.sparse_input = len(widths), sparse_input
        inst, dmax = len(widths), max(widths)
        self.hidden = dmax > 0
        self.d_first = dmax if self.hidden else n_out
        scale_in = 1.0 / math.sqrt(max(active_in, 1.0))
        # First layer, input-major with the instances side by side: (n_in, inst * d_first).
        self.first = torch.randn(n_in, inst * self.d_first, generator=gen) * scale_in
        params = []
        if self.hidden:
            self.b1 = torch.zeros(inst, dmax)
            self.mask = (torch.arange(dmax)[None, :] < torch.tensor(widths)[:, None]).float()
            self.w2 = torch.randn(inst, n_out, dmax, generator=gen) * (0.5 / math.sqrt(dmax))
            params = [self.b1, self.w2]
        self.b2 = torch.full((inst, n_out), -0.1) if bloom_out else None
        if self.b2 is not None:
            params.append(self.b2)
        for t in [self.first, *params]:
            t.requires_grad_(True)
        # Sparse inputs touch a few rows of the first layer per step: sparse gradients and a
        # lazy Adam for it (a dense step over m x d weights dominated the run time).
        self.opts = (
            [torch.optim.SparseAdam([self.first], lr=lr)]
            if sparse_input
            else [torch.optim.Adam([self.first], lr=lr)]
        )
        if params:
            self.opts.append(torch.optim.Adam(params, lr=lr))
        self.scheds = [torch.optim.lr_scheduler.CosineAnnealingLR(o, steps) for o in self.opts]

    def forward(self, z: Any, decode_matrix: Any, slope: float = 0.0) -> Any:
        torch = self.torch

        def act(v: Any) -> Any:
            return torch.nn.functional.leaky_relu(v, slope) if slope else torch.relu(v)

        if isinstance(z, tuple):  # (on-unit indices, values), padded with value 0
            idx, val = z
            pre = torch.nn.functional.embedding_bag(
                idx, self.first, per_sample_weights=val, mode="sum", sparse=True
            )
        else:
            pre = z @ self.first
        pre = pre.view(-1, self.inst, self.d_first).transpose(0, 1)  # (inst, batch, d)
        if self.hidden:
            h = act(pre + self.b1[:, None, :]) * self.mask[:, None, :]
            out = torch.einsum("ibd,iod->ibo", h, self.w2)
        else:
            out = pre
        if self.b2 is not None:
            out = act(out + self.b2[:, None, :])
        if decode_matrix is not None:
            out = out @ decode_matrix  # the linear code's read-out E^T z
        return out

    def step(self, loss: Any) -> None:
        for opt in self.opts:
            opt.zero_grad()
        loss.backward()
        for opt, sched in zip(self.opts, self.scheds, strict=True):
            opt.step()
            sched.step()
        with self.torch.no_grad():  # ReLU units keep bias <= 0: zero input maps to zero
            if self.hidden:
                self.b1.clamp_(max=0.0)
            if self.b2 is not None:
                self.b2.clamp_(max=0.0)

    def instance(
        self, j: int
    ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray, np.ndarray | None]:
        w = self.widths[j]
        with self.torch.no_grad():
            block = self.first[:, j * self.d_first : (j + 1) * self.d_first]
            w1 = block[:, :w].T.numpy() if self.hidden else None
            b1 = self.b1[j, :w].numpy() if self.hidden else None
            w2 = self.w2[j, :, :w].numpy() if self.hidden else block.T.numpy()
            b2 = self.b2[j].numpy() if self.b2 is not None else None
        return w1, b1, w2, b2


def _to_network(
    task: Task,
    in_code: Code,
    out_code: Code,
    w1: np.ndarray | None,
    b1: np.ndarray | None,
    w2: np.ndarray,
    b2: np.ndarray | None,
    info: dict[str, Any],
) -> Network:
    layers = []
    if w1 is not None and b1 is not None:
        layers.append(
            Layer(
                sparse.csr_array(w1.astype(np.float64)),
                np.minimum(b1, 0).astype(np.float64),
                "relu",
            )
        )
    if b2 is not None:
        last = Layer(
            sparse.csr_array(w2.astype(np.float64)), np.minimum(b2, 0).astype(np.float64), "relu"
        )
    else:
        last = Layer(sparse.csr_array(w2.astype(np.float64)), np.zeros(w2.shape[0]), "linear")
    layers.append(last)
    code_kind = f"{in_code.kind}->{out_code.kind}"
    return Network(
        layers,
        in_code,
        out_code,
        task,
        "trained-mlp",
        {k: v for k, v in info.items() if k != "final_loss"},
        info["seed"],
        extras={
            "readout": READOUT_TRAINED,
            "codes": code_kind,
            "hidden_width": info["width"],
            "final_loss": info["final_loss"],
            "pos_weight": info["pos_weight"],
        },
    )


__all__ = ["torch_available", "train_mlp"]
