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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from superpose.codes import BloomCode, Code, ExplicitCode, LinearCode
from superpose.data import TrainerMix
from superpose.errors import SuperposeError
from superpose.evaluation import evaluate
from superpose.network import Layer, Network
from superpose.peers.universal_and import READOUT_TRAINED, DenseExplicitCode
from superpose.seeds import Seeds
from superpose.task import Task

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


StepCallback = Callable[[int, int, np.ndarray], None]
"""``on_step(done, steps, losses)``: after each step, the per-width losses of that step."""

SAMPLE_OUTPUTS_ABOVE = 2048
"""``sampled_outputs="auto"`` samples the read-off loss above this many explicit outputs."""
FAR_SAMPLES = 512


def resolve_device(torch: Any, device: str | None) -> Any:
    """``device`` as a ``torch.device``, or one clear error when this machine lacks it.

    Example:
        >>> import torch
        >>> resolve_device(torch, "cpu").type
        'cpu'
    """
    name = "cpu" if device is None else str(device).strip().lower()
    kind = name.split(":", 1)[0]
    if kind == "cpu":
        return torch.device(name)
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise SuperposeError(
                f"device {name!r}: CUDA is not available to torch on this machine (use 'cpu')",
                cli="--device cpu",
            )
        return torch.device(name)
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise SuperposeError(
                f"device {name!r}: MPS is not available to torch on this machine (use 'cpu')",
                cli="--device cpu",
            )
        return torch.device(name)
    raise SuperposeError(f"device must be cpu, cuda, cuda:N or mps, got {device!r}", cli="--device")


def write_loss_curve(
    path: str | os.PathLike[str], widths: Sequence[int], losses: np.ndarray, title: str = ""
) -> tuple[Path, Path]:
    """Write a loss curve as ``<path>.csv`` (step, one column per width) and ``<path>.png``.

    ``losses`` is ``(steps, len(widths))``: the training loss of every step, per width.

    Example:
        >>> import tempfile
        >>> stem = Path(tempfile.mkdtemp()) / "loss"
        >>> csv, png = write_loss_curve(stem, [4, 8], np.array([[1.0, 2.0], [0.5, 0.25]]))
        >>> csv.read_text().splitlines()
        ['step,w4,w8', '1,1,2', '2,0.5,0.25']
        >>> png.stat().st_size > 0
        True
    """
    from superpose._atomic import write_text

    base = Path(path)
    csv_path = base.with_name(base.name + ".csv")
    png_path = base.with_name(base.name + ".png")
    names: list[str] = []
    for w in widths:
        name = f"w{int(w)}"
        while name in names:
            name += "'"
        names.append(name)
    rows = ["step," + ",".join(names)]
    rows += [
        f"{i + 1}," + ",".join(f"{v:.6g}" for v in row) for i, row in enumerate(np.asarray(losses))
    ]
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    write_text(csv_path, "\n".join(rows) + "\n")
    from superpose._numeric import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = np.arange(1, len(losses) + 1)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    window = max(1, len(losses) // 50)  # a moving average over 2% of the steps, over the raw
    for j, name in enumerate(names):
        raw = np.asarray(losses, dtype=float)[:, j]
        color = colors[j % len(colors)]
        ax.plot(steps, raw, color=color, alpha=0.3 if window > 1 else 1.0, linewidth=0.8)
        if window > 1:
            smooth = np.convolve(raw, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1 :], smooth, color=color, linewidth=1.5)
        ax.plot([], [], color=color, label=f"d = {name[1:]}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (weighted MSE)")
    ax.set_title(title or "trained baseline: loss per step", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return csv_path, png_path


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
    on_step: StepCallback | None = None,
    save_dir: str | os.PathLike[str] | None = None,
    threads: int | None = 1,
    device: str | None = "cpu",
    loss_path: str | os.PathLike[str] | None = None,
    sampled_outputs: bool | str = "auto",
) -> list[Network]:
    """Train one ReLU MLP per hidden width in ``widths`` on ``task``; return them as Networks.

    ``pos_weight`` weighs the loss of true outputs: a number, ``"sqrt"`` (the square root of
    the negative/positive ratio of the training data, the default) or ``"balanced"`` (the
    ratio itself). ``input_code`` / ``output_code`` fix the input layer / output layer
    (explicit when ``None``; Bloom or linear codes make the network work in superposition).
    A width of 0 means no hidden layer (only with a Bloom output code: one weight layer from
    the input code to the output code, like the two-layer construction). Seeds: ``seed``
    drives both the torch initialisation (``torch.Generator``) and the data
    (``numpy.random.Generator`` feeding :class:`superpose.data.TrainerMix`). ``threads`` sets
    torch's intra-op threads during training (1 by default: on a shared 2-core machine more
    threads contend and run slower). ``device`` is ``"cpu"`` (default), ``"cuda"`` or
    ``"mps"`` (one clear error when torch cannot use it; initial weights are drawn on the CPU,
    so every device starts from the same network).

    Progress and curves: ``on_step(done, steps, losses)`` is called after every step with the
    per-width losses (the CLI draws its progress bar from it; the library never imports the
    CLI); ``loss_path`` writes the loss of every step as ``<loss_path>.csv`` and a plot
    ``<loss_path>.png``. ``save_dir`` writes each network with
    :func:`superpose.io.save_network` into ``save_dir/trained-w{width}``.

    Speed: with explicit outputs every output is a dense read-off of the hidden layer, so the
    full loss costs ``batch x outputs x width`` per step (at 5 000 outputs and widths 561 and
    1 122 that was 0.55 s per step, 18 minutes for 2 000 steps). ``sampled_outputs`` (default
    ``"auto"``: above :data:`SAMPLE_OUTPUTS_ABOVE` outputs) computes the loss per input only on
    the outputs that have an active operand (the only ones that can be true) plus
    :data:`FAR_SAMPLES` random others, weighted so the loss is an unbiased estimate of the
    full one; the read-off gets sparse gradients and a lazy Adam.

    Example:
        >>> from superpose import families
        >>> task = families.universal_and(8, sparsity=2)
        >>> nets = train_mlp(task, [28], steps=300, seed=0)  # doctest: +SKIP
        >>> nets[0].extras["readout"]  # doctest: +SKIP
        'trained'
    """
    torch = _torch()
    dev = resolve_device(torch, device)
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        nets, curve = _train(
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
            on_step,
            dev,
            sampled_outputs,
        )
    finally:
        torch.set_num_threads(old_threads)
    if loss_path is not None:
        write_loss_curve(
            loss_path,
            [int(w) for w in widths],
            curve,
            f"trained baseline, {task.n_outputs:,} outputs, {steps} steps x {batch_size}",
        )
    if save_dir is not None:
        from superpose.io import save_network

        for net in nets:
            save_network(net, os.path.join(save_dir, f"trained-w{net.extras['hidden_width']}"))
    return nets


@dataclass(frozen=True)
class _Setup:
    """The checked arguments of one training run: widths, the input and output layers, and
    whether the read-off loss is sampled (explicit outputs only, see :func:`train_mlp`)."""

    widths: list[int]
    in_code: Code
    out_code: Code
    bloom_out: bool
    linear_out: bool
    sample: bool


def _setup(
    task: Task,
    widths: Sequence[int],
    steps: int,
    batch_size: int,
    input_code: Code | None,
    output_code: Code | None,
    sampled_outputs: bool | str,
) -> _Setup:
    """The arguments checked (one clear error each) and the defaults filled in: explicit
    input and output layers when no code is given."""
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
    if sampled_outputs not in (True, False, "auto"):
        raise SuperposeError(
            f"sampled_outputs must be True, False or 'auto', got {sampled_outputs!r}"
        )
    explicit_out = not bloom_out and not linear_out
    sample = explicit_out and (
        sampled_outputs is True
        or (sampled_outputs == "auto" and task.n_outputs > SAMPLE_OUTPUTS_ABOVE)
    )
    return _Setup(widths, in_code, out_code, bloom_out, linear_out, sample)


class _Batches:
    """Training batches: inputs from :class:`superpose.data.TrainerMix` (numpy stream
    ``data``), their input layer on the device, the truth, and the dense target (the output
    code of the truth; None for the sampled loss, which reads the truth itself)."""

    def __init__(
        self, torch: Any, task: Task, setup: _Setup, rng: np.random.Generator, device: Any
    ) -> None:
        self.torch, self.task, self.setup, self.device = torch, task, setup, device
        self.sampler = TrainerMix(task, rng)

    def __call__(self, n: int) -> tuple[Any, Any, Any]:
        torch, setup = self.torch, self.setup
        x = self.sampler.batch(n)
        z = _to_device(_input_tensor(torch, setup.in_code, x), self.device)
        truth = evaluate(self.task, x)
        if setup.sample:
            return z, truth, None
        y = torch.from_numpy(truth.values.toarray().astype(np.float32))
        target = (
            torch.from_numpy(_dense(setup.out_code.encode(truth.values)).astype(np.float32))
            if setup.bloom_out
            else y
        )
        return z, truth, target.to(self.device)


def _positive_weight(pos_weight: float | str, truth: Any, target: Any, n_outputs: int) -> float:
    """``pos_weight`` as a number: "sqrt" / "balanced" read the negative/positive ratio of
    a probe batch (``target``, or the truth itself when the loss is sampled)."""
    if target is None:
        pos = float(truth.values.nnz)
        neg = float(truth.values.shape[0] * n_outputs - pos)
    else:
        pos = float(target.sum())
        neg = float(target.numel() - pos)
    if not isinstance(pos_weight, str):
        return float(pos_weight)
    ratio = neg / max(pos, 1.0)
    if pos_weight == "sqrt":
        return math.sqrt(ratio)
    if pos_weight == "balanced":
        return ratio
    raise SuperposeError(f"pos_weight must be a number, 'sqrt' or 'balanced', got {pos_weight!r}")


def _make_groups(
    torch: Any, gen: Any, setup: _Setup, active_in: float, lr: float, steps: int, device: Any
) -> list[_Group]:
    """One :class:`_Group` per run of similar widths (:func:`_groups`), initialised from the
    torch generator ``gen`` in group order."""
    return [
        _Group(
            torch,
            gen,
            [setup.widths[i] for i in g],
            g,
            setup.in_code.width,
            setup.out_code.width,
            active_in,
            setup.bloom_out,
            lr,
            steps,
            not isinstance(setup.in_code, LinearCode),
            device,
            setup.sample,
        )
        for g in _groups(setup.widths)
    ]


class _StepLoss:
    """One step's per-instance loss: the mean squared error over every output with true
    outputs weighted ``pw`` times more, or (sampled) its unbiased estimate from the outputs
    with an active operand plus ``FAR_SAMPLES`` random ones (:func:`_sampled_targets`)."""

    def __init__(
        self, torch: Any, truth: Any, target: Any, pw: float, rng: np.random.Generator, device: Any
    ) -> None:
        self.target = target
        if target is None:
            self.batch = _sampled_targets(torch, truth, pw, rng, device)
        else:
            self.weight = 1.0 + (pw - 1.0) * target

    def __call__(
        self, group: _Group, z: Any, slope: float, decode_matrix: Any, denominator: int
    ) -> Any:
        """(instances,) losses of ``group`` on input layer ``z``; ``denominator`` is
        batch x outputs (the sampled sum's normaliser)."""
        if self.target is None:
            batch = self.batch
            near, far = group.forward_sampled(z, batch, slope)
            return (
                (batch.weight[None] * (near - batch.target[None]) ** 2).sum(dim=1)
                + (batch.far_weight[None] * far**2).sum(dim=(1, 2))
            ) / denominator
        out = group.forward(z, decode_matrix, slope)
        return (self.weight * (out - self.target[None]) ** 2).mean(dim=(1, 2))


def _fit(
    torch: Any,
    groups: list[_Group],
    batches: _Batches,
    pw: float,
    steps: int,
    batch_size: int,
    decode_matrix: Any,
    on_step: StepCallback | None,
) -> tuple[list[Any], np.ndarray]:
    """``steps`` optimiser steps of every group on one shared batch per step; the last
    per-instance losses of each group and the (steps, widths) loss curve."""
    losses = [torch.zeros(len(g.widths)) for g in groups]
    curve = np.zeros((steps, len(batches.setup.widths)))
    denominator = batch_size * batches.task.n_outputs
    for step in range(steps):
        z, truth, target = batches(batch_size)
        loss = _StepLoss(torch, truth, target, pw, batches.sampler.rng, batches.device)
        # Leaky ReLU for the first 70% of the steps (no unit dies for good), then the
        # plain ReLU the saved network computes (Busch's leaky-then-ReLU schedule).
        slope = LEAKY_SLOPE if step < LEAKY_FRACTION * steps else 0.0
        for gi, group in enumerate(groups):
            per_instance = loss(group, z, slope, decode_matrix, denominator)
            group.step(per_instance.sum())
            losses[gi] = per_instance.detach().cpu()
            curve[step, group.indices] = losses[gi].numpy()
        if on_step is not None:
            on_step(step + 1, steps, curve[step].copy())
    return losses, curve


def _networks(
    task: Task, setup: _Setup, groups: list[_Group], losses: list[Any], info: dict[str, Any]
) -> list[Network]:
    """Every trained instance as a Network, in the order of ``setup.widths``; ``info`` (the
    run's settings) is recorded in each beside its width and final loss."""
    results: dict[int, Network] = {}
    for gi, group in enumerate(groups):
        for j, (i, w) in enumerate(zip(group.indices, group.widths, strict=True)):
            w1, b1, w2, b2 = group.instance(j)
            extras = {"width": w, **info, "final_loss": float(losses[gi][j])}
            if setup.sample:
                extras["sampled_outputs"] = FAR_SAMPLES
            results[i] = _to_network(task, setup.in_code, setup.out_code, w1, b1, w2, b2, extras)
    return [results[i] for i in range(len(setup.widths))]


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
    on_step: StepCallback | None,
    device: Any,
    sampled_outputs: bool | str,
) -> tuple[list[Network], np.ndarray]:
    """:func:`train_mlp` without its side effects (threads, files): the networks and the
    loss curve. The data stream draws, in order, a probe batch (for ``pos_weight``), 256
    inputs (the mean active input units, for the initial scale), then each step's batch."""
    setup = _setup(task, widths, steps, batch_size, input_code, output_code, sampled_outputs)
    rng = Seeds(seed).rng("data")
    gen = torch.Generator().manual_seed(int(seed))
    batches = _Batches(torch, task, setup, rng, device)
    _, probe_truth, probe = batches(min(2048, 8 * batch_size))
    pw = _positive_weight(pos_weight, probe_truth, probe, task.n_outputs)
    z = _dense(setup.in_code.encode(batches.sampler.batch(256)))
    groups = _make_groups(torch, gen, setup, float((z != 0).sum(1).mean()), lr, steps, device)
    decode_matrix = (  # (n_out, m'): the linear code's read-out
        torch.from_numpy(setup.out_code.matrix.astype(np.float32)).to(device)
        if setup.linear_out
        else None
    )
    losses, curve = _fit(torch, groups, batches, pw, steps, batch_size, decode_matrix, on_step)
    info = {"steps": steps, "batch_size": batch_size, "lr": lr, "pos_weight": pw, "seed": seed}
    return _networks(task, setup, groups, losses, info), curve


def _to_device(z: Any, device: Any) -> Any:
    if isinstance(z, tuple):
        return tuple(t.to(device) for t in z)
    return z.to(device)


class _Sampled:
    """One step's outputs for the sampled loss (see :func:`_sampled_targets`)."""

    def __init__(self, torch: Any, device: Any, **arrays: np.ndarray) -> None:
        for name, value in arrays.items():
            setattr(self, name, torch.from_numpy(value).to(device))


def _sampled_targets(
    torch: Any, truth: Any, pw: float, rng: np.random.Generator, device: Any
) -> _Sampled:
    """The outputs a sampled-loss step reads: the (input, output) pairs with an active
    operand (``rows``, ``cols``, ``target``, ``weight``), and ``FAR_SAMPLES`` random outputs
    shared by the batch (``far``, ``far_weight``).

    Outputs without an active operand are false (every op maps all-zero operands to 0); a
    random output stands for ``n_outputs / FAR_SAMPLES`` outputs of each input that has no
    active operand in it (weight 0 where it has), so the weighted sum is an unbiased estimate
    of the full loss's sum. Columns are indices into ``uniq``, the distinct outputs of the
    step (the read-off rows it gathers and updates).
    """
    near = sparse.csr_array(truth.active_operands)
    near.eliminate_zeros()
    values = sparse.csr_array(truth.values)
    values.eliminate_zeros()
    n, n_out = near.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(near.indptr))
    near_keys = rows * n_out + near.indices
    true_keys = np.sort(
        np.repeat(np.arange(n, dtype=np.int64), np.diff(values.indptr)) * n_out + values.indices
    )
    far = rng.integers(0, n_out, FAR_SAMPLES)
    uniq, inverse = np.unique(np.concatenate([near.indices, far]), return_inverse=True)
    target = _isin_sorted(true_keys, near_keys).astype(np.float32)
    want = np.arange(n, dtype=np.int64)[:, None] * n_out + far[None, :]
    far_weight = np.where(
        _isin_sorted(np.sort(near_keys), want.ravel()).reshape(n, FAR_SAMPLES),
        0.0,
        n_out / FAR_SAMPLES,
    ).astype(np.float32)
    return _Sampled(
        torch,
        device,
        uniq=uniq.astype(np.int64),
        rows=rows,
        cols=inverse[: near.nnz].astype(np.int64),
        target=target,
        weight=(1.0 + (pw - 1.0) * target).astype(np.float32),
        far=inverse[near.nnz :].astype(np.int64),
        far_weight=far_weight,
    )


def _isin_sorted(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if not len(sorted_keys):
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys


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


class _RowAdam:
    """Adam on the rows of a matrix that a step touched (the lazy Adam of SparseAdam, with its
    moments and bias correction), for a gradient given as (rows, dense row gradients).

    torch's SparseAdam spends most of a sampled step on bookkeeping of its sparse gradient
    (0.1 s per step at 1 500 rows x 2 244 columns); this is a handful of dense row operations.
    The learning rate follows the cosine schedule of the other parameters.
    """

    def __init__(
        self,
        torch: Any,
        param: Any,
        lr: float,
        steps: int,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.torch, self.param, self.lr, self.steps = torch, param, lr, steps
        self.b1, self.b2, self.eps = betas[0], betas[1], eps
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)
        self.t = 0

    def step(self, rows: Any, grad: Any) -> None:
        torch = self.torch
        # CosineAnnealingLR's closed form: the rate at the start of step t (t = 0, 1, ...)
        lr = self.lr * (1 + math.cos(math.pi * self.t / self.steps)) / 2
        self.t += 1
        with torch.no_grad():
            m = self.m.index_select(0, rows).mul_(self.b1).add_(grad, alpha=1 - self.b1)
            v = self.v.index_select(0, rows).mul_(self.b2).addcmul_(grad, grad, value=1 - self.b2)
            self.m.index_copy_(0, rows, m)
            self.v.index_copy_(0, rows, v)
            c1 = 1 - self.b1**self.t
            c2 = 1 - self.b2**self.t
            update = (m / c1).div_((v / c2).sqrt_().add_(self.eps)).mul_(-lr)
            self.param.index_add_(0, rows, update)


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
        device: Any = "cpu",
        sampled: bool = False,
    ) -> None:
        self.torch, self.widths, self.indices = torch, widths, indices
        self.sampled = sampled
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
        # Drawn on the CPU (the same network on every device), then moved.
        self.first = self.first.to(device)
        params = [t.to(device) for t in params]
        if self.hidden:
            self.b1, self.mask = params[0], self.mask.to(device)
            self.w2 = params[1]
        if self.b2 is not None:
            self.b2 = params[-1]
        sparse_params = [self.first] if sparse_input else []
        if sampled:
            # Output-major read-off rows, instances side by side: (n_out, inst * dmax); a step
            # gathers the rows of its sampled outputs (sparse gradients, lazy Adam).
            self.read = self.w2.permute(1, 0, 2).reshape(n_out, inst * dmax).contiguous()
            params = [t for t in params if t is not self.w2]
            self.row_adam = _RowAdam(torch, self.read, lr, steps)
        for t in [self.first, *params]:
            t.requires_grad_(True)
        # Sparse inputs touch a few rows of the first layer per step: sparse gradients and a
        # lazy Adam for it (a dense step over m x d weights dominated the run time).
        self.opts = [] if sparse_input else [torch.optim.Adam([self.first], lr=lr)]
        if sparse_params:
            self.opts.insert(0, torch.optim.SparseAdam(sparse_params, lr=lr))
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

    def hidden_units(self, z: Any, slope: float) -> Any:
        """(inst, batch, dmax) hidden activations."""
        torch = self.torch
        if isinstance(z, tuple):
            idx, val = z
            pre = torch.nn.functional.embedding_bag(
                idx, self.first, per_sample_weights=val, mode="sum", sparse=True
            )
        else:
            pre = z @ self.first
        pre = pre.view(-1, self.inst, self.d_first).transpose(0, 1)
        v = pre + self.b1[:, None, :]
        h = torch.nn.functional.leaky_relu(v, slope) if slope else torch.relu(v)
        return h * self.mask[:, None, :]

    def forward_sampled(self, z: Any, batch: _Sampled, slope: float = 0.0) -> tuple[Any, Any]:
        """``(near, far)``: (inst, pairs) read-offs of the (input, output) pairs with an
        active operand, and (inst, batch, FAR_SAMPLES) of the batch's random outputs.

        Only the read-off rows ``batch.uniq`` are gathered (from a detached copy); :meth:`step`
        hands their gradient to the lazy Adam as a sparse gradient of those rows.
        """
        torch = self.torch
        h = self.hidden_units(z, slope)  # (inst, batch, d)
        self._uniq = batch.uniq
        self._sub = self.read.detach().index_select(0, batch.uniq).requires_grad_(True)
        sub = self._sub.view(-1, self.inst, self.d_first)  # (U, inst, d)
        pairs = sub.index_select(0, batch.cols).transpose(0, 1)  # (inst, pairs, d)
        near = (pairs * h.index_select(1, batch.rows)).sum(-1)
        far = torch.einsum("ibd,kid->ibk", h, sub.index_select(0, batch.far))
        return near, far

    def step(self, loss: Any) -> None:
        for opt in self.opts:
            opt.zero_grad()
        loss.backward()
        if self.sampled:  # the gathered read-off rows: a lazy Adam step on those rows only
            self.row_adam.step(self._uniq, self._sub.grad)
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
            w1 = block[:, :w].T.cpu().numpy() if self.hidden else None
            b1 = self.b1[j, :w].cpu().numpy() if self.hidden else None
            if self.sampled:
                w2 = self.read[:, j * self.d_first : j * self.d_first + w].cpu().numpy()
            else:
                w2 = self.w2[j, :, :w].cpu().numpy() if self.hidden else block.T.cpu().numpy()
            b2 = self.b2[j].cpu().numpy() if self.b2 is not None else None
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
            **({"sampled_outputs": info["sampled_outputs"]} if "sampled_outputs" in info else {}),
        },
    )


__all__ = ["torch_available", "train_mlp"]
