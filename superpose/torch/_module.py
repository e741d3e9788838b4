"""The torch module: features -> input code -> layers -> output code -> outputs.

Imported only by :mod:`superpose.torch` when torch is used. Weights are torch buffers (a
construction, not parameters to train). Each weight layer multiplies its *sparse*
activations (a CSR batch: the input code and step layers are mostly zeros) by W^T, held as a
torch sparse CSR tensor, or as a dense tensor where that is no more than twice the CSR bytes
(the rule ``predict`` uses; half-full superposed layers). Memory therefore stays O(non-zero
weights) at any size.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from superpose.codes import BloomCode, ExplicitCode, LinearCode
from superpose.errors import SuperposeError
from superpose.torch._parts import Parts

OUTPUT_MODES = ("outputs", "last", "all")
BLOCK_ELEMENTS = 2**22
"""Activations (rows x widest layer) computed at once when only the outputs are asked for."""


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def _flat_nonzero(on: torch.Tensor) -> torch.Tensor:
    """Positions of the True entries of a 1-D boolean tensor, in order.

    ``torch.nonzero`` visits every byte; on a mostly-False tensor it is several times faster
    to find the non-zero 8-byte words first and look inside those only.
    """
    n8 = on.numel() // 8 * 8
    if n8 < 2**16 or not on.is_contiguous():
        return torch.nonzero(on).squeeze(1)
    head = on[:n8]
    words = torch.nonzero(head.view(torch.int64)).squeeze(1)
    word, byte = torch.nonzero(head.view(-1, 8)[words]).unbind(1)
    found = words[word] * 8 + byte
    if n8 < on.numel():
        found = torch.cat([found, torch.nonzero(on[n8:]).squeeze(1) + n8])
    return found


def _active(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of every entry above 1/2 of a dense or sparse (COO/CSR) batch."""
    if x.layout == torch.sparse_csr:
        x = x.to_sparse_coo()
    if x.layout == torch.sparse_coo:
        x = x.coalesce()
        keep = x.values() > 0.5
        idx = x.indices()[:, keep]
        return idx[0], idx[1]
    on = x if x.dtype == torch.bool else x > 0.5
    where = _flat_nonzero(on.reshape(-1))
    return where // x.shape[1], where % x.shape[1]


Pairs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""A batch of activations by its non-zero entries: (rows, columns, values), sorted by row
and column, no duplicates (the layout of a CSR batch, without the tensor)."""


def _pairs(z: torch.Tensor) -> Pairs:
    """The non-zero entries of a dense 2-D batch (one pass and one ``nonzero``)."""
    flat = z.reshape(-1)
    where = _flat_nonzero(flat != 0)
    width = z.shape[1]
    return where // width, where % width, flat[where]


def _csr(pairs: Pairs, shape: tuple[int, int]) -> torch.Tensor:
    """The sparse CSR batch holding ``pairs`` (built from the row counts: no sorting)."""
    rows, cols, vals = pairs
    crow = torch.zeros(shape[0] + 1, dtype=torch.int64, device=rows.device)
    torch.cumsum(torch.bincount(rows, minlength=shape[0]), 0, out=crow[1:])
    return torch.sparse_csr_tensor(crow, cols, vals, shape, check_invariants=False)


def _sparse_rows(z: torch.Tensor) -> torch.Tensor:
    """A dense batch of activations as a sparse CSR batch (its non-zero entries)."""
    return _csr(_pairs(z), (z.shape[0], z.shape[1]))


def _hooked(module: nn.Module) -> bool:
    """Whether any forward (pre-)hook is registered on ``module``, its children or globally."""
    from torch.nn.modules import module as torch_module

    for name in ("_global_forward_hooks", "_global_forward_pre_hooks"):
        if getattr(torch_module, name, None):
            return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())


class HookPoint(nn.Identity):
    """An identity module: register a forward hook on it to read (or replace) a tensor,
    as with TransformerLens' hook points (``module.layers[0].hook_pre``)."""


class Encoder(nn.Module):
    """Features (a [batch, m] 0/1 batch, dense or sparse) -> the first layer's activations."""

    def __init__(self, parts: Parts, dtype: torch.dtype) -> None:
        super().__init__()
        code = parts.input_code
        self.kind = code.kind
        self.n_features = int(code.n_features)
        self.width = int(code.width)
        self.dtype = dtype
        if isinstance(code, BloomCode):
            self.register_buffer("members", _t(parts.bloom_encode_arrays()))
            self.padded = bool(code.lengths.min(initial=0) < self.members.shape[1])
        elif isinstance(code, LinearCode):
            self.register_buffer("matrix_t", _t(code.matrix.T).to(dtype))
        elif not isinstance(code, ExplicitCode):
            raise SuperposeError(f"cannot export an input code of kind {code.kind!r}")

    def forward(self, rows: torch.Tensor, feats: torch.Tensor, batch: int) -> torch.Tensor:
        """The input code of a batch given by its active (row, feature) pairs."""
        device = rows.device
        if self.kind == "bloom":
            z = torch.zeros(batch, self.width, dtype=self.dtype, device=device)
            units = self.members[feats]  # (active, longest set); padding = width
            rows = rows[:, None].expand_as(units)
            if self.padded:
                keep = units < self.width
                rows, units = rows[keep], units[keep]
            z[rows, units] = 1
            return z
        on = torch.zeros(batch, self.n_features, dtype=self.dtype, device=device)
        on[rows, feats] = 1
        return on if self.kind == "explicit" else on @ self.matrix_t

    def pairs(self, rows: torch.Tensor, feats: torch.Tensor, batch: int) -> Pairs:
        """What :meth:`forward` returns, as its non-zero entries (no dense batch)."""
        if self.kind == "linear":
            return _pairs(self.forward(rows, feats, batch))
        if self.kind == "explicit":  # (rows, feats) are sorted and distinct already
            units = feats
        else:
            units = self.members[feats]
            rows = rows[:, None].expand_as(units)
            if self.padded:
                keep = units < self.width
                rows, units = rows[keep], units[keep]
            key = torch.unique(rows.reshape(-1) * self.width + units.reshape(-1))
            rows, units = key // self.width, key % self.width
        return rows, units, torch.ones(len(units), dtype=self.dtype, device=rows.device)


class SparseLayer(nn.Module):
    """``act(z W^T + b)``: one weight layer, W^T sparse CSR (or dense where no larger)."""

    def __init__(self, parts: Parts, i: int, dtype: torch.dtype) -> None:
        super().__init__()
        lay = parts.layers[i]
        self.activation = lay.activation
        self.n_in, self.n_out = int(lay.n_in), int(lay.n_out)
        self.dense = bool(parts.dense[i])
        wt = lay.weight.T.tocsr()
        wt.sort_indices()
        if self.dense:
            self.register_buffer("weight_t", _t(wt.toarray()).to(dtype))
        else:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                weight_t = torch.sparse_csr_tensor(
                    _t(wt.indptr.astype(np.int64)),
                    _t(wt.indices.astype(np.int64)),
                    _t(wt.data).to(dtype),
                    size=(self.n_in, self.n_out),
                    check_invariants=True,
                )
            self.register_buffer("weight_t", weight_t)
        self.register_buffer("bias", _t(np.asarray(lay.bias)).to(dtype))
        self.hook_pre = HookPoint()  # pre-activations W z + b
        self.hook_post = HookPoint()  # activations (this module's output)

    def _pre(self, zs: torch.Tensor) -> torch.Tensor:
        """Dense pre-activations ``z W^T + b`` of a sparse CSR batch."""
        if self.dense:
            return torch.addmm(self.bias, zs, self.weight_t)
        return (zs @ self.weight_t).to_dense().add_(self.bias)

    def pairs(self, pairs: Pairs, batch: int) -> Pairs:
        """:meth:`forward` on a batch given and returned by its non-zero entries: the dense
        activations are never formed, only the pre-activations (hook points not called)."""
        p = self._pre(_csr(pairs, (batch, self.n_in))).reshape(-1)
        if self.activation == "step":
            where = _flat_nonzero(p >= 0)
            vals = torch.ones(len(where), dtype=p.dtype, device=p.device)
        else:
            where = _flat_nonzero(p > 0 if self.activation == "relu" else p != 0)
            vals = p[where]
        return where // self.n_out, where % self.n_out, vals

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        p = self.hook_pre(self._pre(_sparse_rows(z)))
        if self.activation == "relu":
            p = torch.relu(p)
        elif self.activation == "step":
            p = (p >= 0).to(p.dtype)
        return self.hook_post(p)

    def extra_repr(self) -> str:
        kind = "dense" if self.dense else "sparse_csr"
        return f"in={self.n_in}, out={self.n_out}, activation={self.activation}, W^T {kind}"


def _positions(indptr: torch.Tensor, which: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The entry positions of the concatenated CSR rows ``which`` and, per entry, its
    position in ``which``: exact sizes (no padding), so skewed rows cost nothing extra."""
    starts = indptr[which]
    counts = indptr[which + 1] - starts
    owner = torch.repeat_interleave(torch.arange(len(which), device=which.device), counts)
    offsets = starts - (torch.cumsum(counts, 0) - counts)
    return torch.arange(len(owner), device=which.device) + offsets[owner], owner


class Decoder(nn.Module):
    """The last layer's activations -> outputs (0/1), dense [batch, n] or sparse COO."""

    def __init__(self, parts: Parts, dtype: torch.dtype) -> None:
        super().__init__()
        code = parts.output_code
        self.kind = code.kind
        self.n_features = int(code.n_features)
        self.width = int(code.width)
        if isinstance(code, BloomCode):
            _, members, need = parts.bloom_decode_arrays()
            anchors = code.anchors_t
            anchors.sort_indices()
            self.register_buffer("anchors_indptr", _t(anchors.indptr.astype(np.int64)))
            self.register_buffer("anchors_indices", _t(anchors.indices.astype(np.int64)))
            self.register_buffer("members", _t(members))
            self.register_buffer("need", _t(need))
            self.padded = bool(code.lengths.min(initial=0) < members.shape[1])
            # every feature needs all its neurons: one neuron besides the anchor rules out
            # nearly every candidate before the full check (as predict does)
            self.all_needed = bool((code.required() == code.lengths).all())
            n = code.n_features
            second = members[:n, min(1, members.shape[1] - 1)]
            second = np.where(code.lengths > 1, second, members[:n, 0])  # one-neuron features
            # per entry of the anchor table: its feature's second neuron (checked before
            # anything else is gathered per candidate)
            self.register_buffer("anchor_second", _t(second[anchors.indices]))
        elif isinstance(code, LinearCode):
            self.register_buffer("matrix", _t(code.matrix).to(dtype))
            self.threshold = float(code.threshold)
        elif not isinstance(code, ExplicitCode):
            raise SuperposeError(f"cannot export an output code of kind {code.kind!r}")

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(row, output) of every output that is on, for the last layer's activations ``z``
        (an output may be listed twice)."""
        if self.kind == "linear":
            idx = torch.nonzero((z @ self.matrix) >= self.threshold)
            return idx[:, 0], idx[:, 1]
        return self.pairs(_pairs(z), z.shape[0])

    def pairs(self, pairs: Pairs, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` for activations given by their non-zero entries."""
        rows, units, vals = pairs
        if self.kind == "linear":
            z = torch.zeros(batch, self.width, dtype=vals.dtype, device=vals.device)
            z[rows, units] = vals
            return self.forward(z)
        if self.kind == "explicit":
            keep = vals >= 0.5
            return rows[keep], units[keep]
        # Bloom: a present feature has its anchor neuron on; check each candidate's neurons
        # in a flat boolean copy of the block, one extra always-off column per row (where
        # the padding of ``members`` points).
        on = vals > 0.5
        if not bool(on.all()):
            rows, units = rows[on], units[on]
        w1 = self.width + 1
        lit = torch.zeros(batch * w1, dtype=torch.bool, device=units.device)
        base = rows * w1
        lit[base + units] = True
        pos, owner = _positions(self.anchors_indptr, units)
        base = base[owner]
        if self.all_needed:
            keep = _flat_nonzero(lit[base + self.anchor_second[pos]])
            base, pos = base[keep], pos[keep]
        cand = self.anchors_indices[pos]
        members = self.members[cand]  # (candidates, longest set), padding = always-off neuron
        count = lit[base[:, None] + members].sum(1)
        hit = count >= self.need[cand]
        return base[hit] // w1, cand[hit]


def _assemble(
    rows: torch.Tensor, cols: torch.Tensor, shape: tuple[int, int], dtype: torch.dtype, sparse: bool
) -> torch.Tensor:
    """A 0/1 batch with ones at (rows, cols): dense, or sparse COO (duplicates merged)."""
    if sparse:
        key = torch.unique(rows * shape[1] + cols)
        return torch.sparse_coo_tensor(
            torch.stack([key // shape[1], key % shape[1]]),
            torch.ones(len(key), dtype=dtype, device=rows.device),
            shape,
            is_coalesced=True,
            check_invariants=False,
        )
    out = torch.zeros(shape, dtype=dtype, device=rows.device)
    out[rows, cols] = 1
    return out


class SuperposeModule(nn.Module):
    """A superpose network as one torch module: features in, Boolean outputs out.

    ``forward(x)`` takes a [batch, m] batch of 0/1 features (a dense tensor of any float or
    integer dtype, or a torch sparse COO/CSR tensor; an entry above 1/2 is on) and returns
    what ``Network.predict`` returns, as a dense [batch, n_outputs] tensor of 0/1 in
    ``out_dtype`` (default: the input's float dtype, else float32), or a sparse COO tensor
    with ``sparse_output=True`` (at 10^6 outputs a dense batch would not fit in memory).

    Submodules, by name: ``encoder`` (input code), ``layers.0`` ... ``layers.{L-1}`` (each
    with hook points ``hook_pre`` and ``hook_post``), ``decoder`` (output code). Register
    forward hooks on any of them to read activations, or ask ``forward`` for them:
    ``output="last"`` returns the last layer's activations, ``output="all"`` a dict with the
    input code (``"input"``), every layer (``"layers.i"``) and ``"outputs"``.

    Example:
        >>> import numpy as np, torch
        >>> from superpose import Task, build
        >>> net = build(Task.from_gates(3, 2, [("and", [0, 1]), ("or", [1, 2])]), "naive")
        >>> module = net.to_torch()
        >>> module(torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])).tolist()
        [[1.0, 1.0], [0.0, 1.0]]
    """

    def __init__(
        self,
        parts: Parts,
        output: str = "outputs",
        out_dtype: torch.dtype | None = None,
        block_rows: int | None = None,
    ) -> None:
        super().__init__()
        if output not in OUTPUT_MODES:
            raise SuperposeError(f"output must be one of {OUTPUT_MODES}, got {output!r}")
        parts.check()
        self.parts = parts
        self.output = output
        self.out_dtype = out_dtype
        dtype = getattr(torch, parts.dtype)
        self.compute_dtype = dtype
        self.n_features = parts.features
        self.n_outputs = parts.outputs
        self.encoder = Encoder(parts, dtype)
        self.layers = nn.ModuleList(SparseLayer(parts, i, dtype) for i in range(len(parts.layers)))
        self.decoder = Decoder(parts, dtype)
        self.block_rows = block_rows
        self.widest = max([parts.input_code.width] + [lay.n_out for lay in parts.layers])

    def device(self) -> torch.device:
        """Where the module's weights are."""
        return next(self.buffers()).device

    def activation_names(self) -> list[str]:
        """The names of :meth:`run_layers`' activations in ``forward(output="all")``."""
        return [f"layers.{i}" for i in range(len(self.layers))]

    def run_layers(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's activations, first to last, from the input code ``z``.

        The one place layers are chained: a network with skip connections (a residual
        stream) overrides this and keeps everything else.
        """
        outs = []
        for layer in self.layers:
            z = layer(z)
            outs.append(z)
        return outs

    def forward(
        self,
        x: torch.Tensor,
        output: str | None = None,
        sparse_output: bool = False,
    ) -> Any:
        mode = self.output if output is None else output
        if mode not in OUTPUT_MODES:
            raise SuperposeError(f"output must be one of {OUTPUT_MODES}, got {mode!r}")
        if x.dim() != 2 or x.shape[1] != self.n_features:
            raise SuperposeError(
                f"input batch has shape {tuple(x.shape)}; expected (batch, {self.n_features})"
            )
        out_dtype = self.out_dtype
        if out_dtype is None:
            out_dtype = x.dtype if x.dtype.is_floating_point else torch.float32
        batch = int(x.shape[0])
        shape = (batch, self.n_outputs)
        with torch.no_grad(), warnings.catch_warnings():
            # torch calls its sparse CSR tensors "beta" on first use: not the user's concern
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            rows, feats = _active(x.to(self.device()))
            if mode != "outputs":
                z0 = self.encoder(rows, feats, batch)
                acts = self.run_layers(z0)
                if mode == "last":
                    return acts[-1]
                y = _assemble(*self.decoder(acts[-1]), shape, out_dtype, sparse_output)
                return {
                    "input": z0,
                    **dict(zip(self.activation_names(), acts, strict=True)),
                    "outputs": y,
                }
            # Outputs only: run the batch in blocks of rows, so every intermediate tensor
            # stays small enough for the cache (as predict's forward pass does); forward
            # hooks then see one block at a time.
            # Without hooks (and without an overridden run_layers) each block goes through
            # as its non-zero entries: only the pre-activations are ever dense.
            fast = type(self).run_layers is SuperposeModule.run_layers and not _hooked(self)
            step = self.block_rows or max(1, BLOCK_ELEMENTS // self.widest)
            bounds = torch.searchsorted(
                rows, torch.arange(0, batch + step, step, device=rows.device).clamp(max=batch)
            ).tolist()
            empty = torch.zeros(0, dtype=torch.int64, device=rows.device)
            found_rows, found_cols = [empty], [empty]
            for k, start in enumerate(range(0, batch, step)):
                lo, hi = bounds[k], bounds[k + 1]
                n = min(step, batch - start)
                if fast:
                    pairs = self.encoder.pairs(rows[lo:hi] - start, feats[lo:hi], n)
                    for layer in self.layers:
                        pairs = layer.pairs(pairs, n)
                    r, c = self.decoder.pairs(pairs, n)
                else:
                    z0 = self.encoder(rows[lo:hi] - start, feats[lo:hi], n)
                    r, c = self.decoder(self.run_layers(z0)[-1])
                found_rows.append(r + start)
                found_cols.append(c)
            return _assemble(
                torch.cat(found_rows), torch.cat(found_cols), shape, out_dtype, sparse_output
            )

    def extra_repr(self) -> str:
        return (
            f"features={self.n_features}, outputs={self.n_outputs}, "
            f"dtype={self.parts.dtype}, output={self.output!r}"
        )


class ResidualBlock(nn.Module):
    """One block of a residual stream: ``stream' = step(stream + write(hidden(stream)) - 1)``.

    ``hidden`` (a step layer: the block's threshold units) reads the stream; ``write`` (a
    linear layer, no bias) maps the hidden units to the stream bits they set; the skip
    connection adds the stream back, and the step clamps the sum to 0/1 (a clamped OR: what
    was written stays written). Hook points: ``hook_resid_pre`` (the stream read),
    ``hidden.hook_post`` (hidden units), ``write.hook_post`` (the write, before the skip
    connection), ``hook_resid_post`` (the stream after the block).
    """

    def __init__(self, hidden: SparseLayer, write: SparseLayer) -> None:
        super().__init__()
        self.hidden = hidden
        self.write = write
        self.hook_resid_pre = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, stream: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden units, stream after the block)."""
        stream = self.hook_resid_pre(stream)
        h = self.hidden(stream)
        after = ((stream + self.write(h)) >= 1).to(stream.dtype)
        return h, self.hook_resid_post(after)

    def extra_repr(self) -> str:
        return f"stream={self.write.n_out}, hidden={self.hidden.n_out}"


class ResidualModule(SuperposeModule):
    """A ``stream`` network as the residual model it is: encoder -> blocks -> decoder.

    The stream (width d) is the encoder's output; ``blocks.0`` ... ``blocks.{L-1}`` are
    :class:`ResidualBlock` (each ``stream + write(hidden(stream))``, clamped to 0/1); the
    decoder reads the final stream. Outputs equal ``Network.predict`` (and the plain layer
    chain the network is stored as). ``forward(x, output="all")`` returns ``"input"`` (the
    first stream), ``"blocks.i.hidden"`` and ``"blocks.i.stream"`` per block, and
    ``"outputs"``; ``output="last"`` the final stream. Saved (:func:`superpose.torch.save`)
    as the network's plain layers, and loaded back as a residual module.

    Example:
        >>> import numpy as np, torch
        >>> from superpose import families
        >>> from superpose.constructions import build
        >>> task = families.layered_circuit(12, 6, 2, np.random.default_rng(0), sparsity=2)
        >>> net = build(task, "stream")
        >>> module = net.to_torch()
        >>> type(module).__name__, len(module.blocks)
        ('ResidualModule', 2)
        >>> x = torch.zeros(1, 12); x[0, [3, 7]] = 1
        >>> module(x).numpy().tolist() == net.predict(x.numpy()).toarray().tolist()
        True
    """

    def __init__(
        self,
        parts: Parts,
        residual: Parts,
        output: str = "outputs",
        out_dtype: torch.dtype | None = None,
        block_rows: int | None = None,
    ) -> None:
        super().__init__(residual, output=output, out_dtype=out_dtype, block_rows=block_rows)
        layers = list(self.layers)
        del self.layers
        self.blocks = nn.ModuleList(
            ResidualBlock(layers[i], layers[i + 1]) for i in range(0, len(layers), 2)
        )
        self.parts = parts  # what save() writes: the plain layers predict runs
        self.residual_parts = residual

    def activation_names(self) -> list[str]:
        return [f"blocks.{i}.{k}" for i in range(len(self.blocks)) for k in ("hidden", "stream")]

    def run_layers(self, z: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for block in self.blocks:
            h, z = block(z)
            outs += [h, z]
        return outs
