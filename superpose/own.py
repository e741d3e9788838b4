"""Bring your own model: a torch MLP (Linear / ReLU stack) as a superpose network.

Once loaded, a model is checked by the same verifier as every construction
(:func:`superpose.verify`), and :func:`superpose.bounds.tightness` compares its size with the
counting lower bound of the task's family. torch is imported only when a module is given:
a state dict of numpy arrays loads without it.

The model maps the task's ``features`` (0/1 inputs, explicit: one input unit per feature) to
its ``n_outputs`` outputs; an output counts as on when it is ``>= threshold``. Any bias is
kept: units that fire on an all-zero input are allowed here (``Layer(..., resting=True)``),
so these layers run densely and the exact certificates, which assume zero input stays zero,
step aside (``build``-made networks never need that).

Accepted inputs:

* an ``nn.Module`` whose leaf modules, in order, are ``Linear`` and ``ReLU`` (``Identity``,
  ``Dropout`` and ``Flatten`` are skipped): ``nn.Sequential`` or an equivalent;
* a state dict (name -> tensor or array) with torch ``Sequential`` names (``0.weight``,
  ``2.weight``, ...), Hugging Face MLP names (``fc1``/``fc2``, ``up_proj``/``down_proj``,
  ``c_fc``/``c_proj``, stored transposed as GPT-2's ``Conv1D``) or TransformerLens names
  (``W_in``/``W_out`` with ``b_in``/``b_out``, stored ``[in, out]``). A state dict holds no
  activations: it is read as Linear -> ReLU -> ... -> Linear (``last="relu"`` for a final
  ReLU). Gated MLPs (``gate_proj``) are refused.

Example:
    >>> import numpy as np
    >>> from superpose import Task, verify
    >>> task = Task.from_gates(2, 2, [("and", [0, 1])])
    >>> state = {"0.weight": np.array([[1.0, 1.0]]), "0.bias": np.array([0.5]),
    ...          "2.weight": np.array([[1.0]]), "2.bias": np.array([-2.0])}
    >>> net = from_state_dict(state, task)   # h = ReLU(a + b + 0.5); out = h - 2 >= 0.5
    >>> verify(net, "exhaustive").inputs_with_error
    0
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import sparse

from superpose.capacity import _natural_key, bias_name, mlp_role
from superpose.codes import ExplicitCode
from superpose.errors import SuperposeError
from superpose.network import Layer, Network
from superpose.task import Task

_SKIPPED_MODULES = ("Identity", "Dropout", "Flatten", "Sequential", "ModuleList")
_TRANSPOSED = ("W_in", "W_out", "c_fc", "c_proj")  # stored [in, out]
_SEQ = re.compile(r"^(?P<prefix>(?:.*\.)?)(?P<index>\d+)\.weight$")


def _numpy(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().to("cpu")
        if str(value.dtype) in ("torch.bfloat16", "torch.float16"):
            value = value.float()
        value = value.numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise SuperposeError(f"tensor {name!r}: expected numbers, got {arr.dtype}")
    if not np.isfinite(arr).all():
        raise SuperposeError(f"tensor {name!r} holds a non-finite value")
    return arr.astype(np.float64 if arr.dtype == np.float64 else np.float32)


def _stack_from_module(model: Any) -> list[tuple[str, np.ndarray, np.ndarray | None, str]]:
    """(name, W [out, in], bias, activation) for every Linear of a Linear / ReLU module."""
    stack: list[tuple[str, np.ndarray, np.ndarray | None, str]] = []
    for name, mod in model.named_modules():
        kind = type(mod).__name__
        if list(mod.children()):
            if kind not in _SKIPPED_MODULES and mod is not model:
                raise SuperposeError(
                    f"module {name!r} ({kind}): only Linear and ReLU layers can be read"
                )
            continue
        if kind == "Linear":
            bias = None if mod.bias is None else _numpy(mod.bias, f"{name}.bias")
            stack.append((name, _numpy(mod.weight, f"{name}.weight"), bias, "linear"))
        elif kind == "ReLU":
            if not stack or stack[-1][3] != "linear":
                raise SuperposeError(f"module {name!r}: a ReLU must follow a Linear layer")
            stack[-1] = (*stack[-1][:3], "relu")
        elif kind not in _SKIPPED_MODULES:
            raise SuperposeError(
                f"module {name!r} ({kind}): only Linear and ReLU layers can be read "
                "(a GELU or other activation is not a ReLU network)"
            )
    if not stack:
        raise SuperposeError("the module holds no Linear layer")
    return stack


def _stack_from_state(
    state: Mapping[str, Any], last: str
) -> list[tuple[str, np.ndarray, np.ndarray | None, str]]:
    names = [k for k in state if np.ndim(_numpy(state[k], k)) == 2]
    if not names:
        raise SuperposeError("the state dict holds no 2-D weight matrix")
    for n in names:
        if n.rsplit(".", 1)[-1].startswith("gate_proj") or ".gate_proj." in n + ".":
            raise SuperposeError(
                f"tensor {n!r}: a gated MLP (gate_proj) is not a Linear / ReLU stack"
            )
    if all(_SEQ.match(n) for n in names):
        order = sorted(names, key=lambda n: int(_SEQ.match(n)["index"]))  # type: ignore[index]
        prefixes = {_SEQ.match(n)["prefix"] for n in names}  # type: ignore[index]
        if len(prefixes) > 1:
            raise SuperposeError(
                f"the state dict holds {len(prefixes)} Sequential stacks ({sorted(prefixes)[:3]}); "
                "pass one"
            )
    else:

        def key(n: str) -> list[Any]:
            role = mlp_role(n)
            prefix = role[0] if role else re.sub(r"\.weight$", "", n)
            return [*_natural_key(prefix), 0 if role is None or role[1] == "up" else 1]

        order = sorted(names, key=key)
    stack = []
    for i, n in enumerate(order):
        w = _numpy(state[n], n)
        token = re.sub(r"\.weight$", "", n).rsplit(".", 1)[-1]
        if token in _TRANSPOSED:
            w = w.T
        b_name = bias_name(n)
        bias = None
        if b_name is not None and b_name in state:
            bias = _numpy(state[b_name], b_name)
        act = "relu" if i < len(order) - 1 or last == "relu" else "linear"
        stack.append((n, w, bias, act))
    return stack


def _network(
    stack: list[tuple[str, np.ndarray, np.ndarray | None, str]],
    task: Task,
    threshold: float,
    source: str,
) -> Network:
    if not np.isfinite(threshold):
        raise SuperposeError(f"threshold must be finite, got {threshold}")
    width = task.features
    layers: list[Layer] = []
    for i, (name, w, bias, act) in enumerate(stack):
        if w.ndim != 2 or w.shape[1] != width:
            what = "the task's features" if i == 0 else "the layer before"
            raise SuperposeError(
                f"{name!r} has shape {list(w.shape)} ([out, in]); it must read {width} units "
                f"({what})"
            )
        if act != "relu" and i < len(stack) - 1:
            raise SuperposeError(f"{name!r}: only the last layer may be linear (no ReLU after it)")
        b = np.zeros(w.shape[0], dtype=w.dtype) if bias is None else bias
        if b.shape != (w.shape[0],):
            raise SuperposeError(
                f"bias of {name!r} has shape {list(b.shape)}; expected [{w.shape[0]}]"
            )
        if i == len(stack) - 1 and act == "linear":
            b = b + (0.5 - threshold)  # the explicit output code reads >= 0.5
        w_sp = sparse.csr_array(w)
        w_sp.eliminate_zeros()
        layers.append(Layer(w_sp, b, act, resting=True))
        width = w.shape[0]
    if width != task.n_outputs:
        raise SuperposeError(
            f"the model has {width} outputs; the task has {task.n_outputs} (one output per task output)"
        )
    if layers[-1].activation == "relu" and threshold != 0.5:
        eye = sparse.eye_array(width, format="csr", dtype=layers[-1].weight.dtype)
        layers.append(
            Layer(eye, np.full(width, 0.5 - threshold, dtype=eye.dtype), "linear", resting=True)
        )
    return Network(
        layers,
        ExplicitCode(task.features),
        ExplicitCode(task.n_outputs),
        task,
        "own",
        {"source": source, "threshold": float(threshold)},
    )


def from_state_dict(
    state: Mapping[str, Any], task: Task, *, threshold: float = 0.5, last: str = "linear"
) -> Network:
    """A network from a state dict of an MLP (torch tensors or numpy arrays); see the module doc.

    ``last`` is the activation of the final layer (``"linear"`` or ``"relu"``); every
    earlier layer is followed by a ReLU.
    """
    if last not in ("linear", "relu"):
        raise SuperposeError(f"last must be 'linear' or 'relu', got {last!r}")
    if not isinstance(state, Mapping) or not state:
        raise SuperposeError("a state dict must be a non-empty mapping of names to tensors")
    return _network(_stack_from_state(state, last), task, threshold, "state_dict")


def from_torch(model: Any, task: Task, *, threshold: float = 0.5, last: str = "linear") -> Network:
    """A network from a torch ``nn.Module`` (Linear / ReLU layers) or a state dict.

    Example:
        >>> import torch
        >>> from superpose import Task, verify
        >>> mlp = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.ReLU(), torch.nn.Linear(1, 1))
        >>> with torch.no_grad():
        ...     _ = mlp[0].weight.fill_(1.0), mlp[0].bias.fill_(0.5)
        ...     _ = mlp[2].weight.fill_(1.0), mlp[2].bias.fill_(-2.0)
        >>> net = from_torch(mlp, Task.from_gates(2, 2, [("and", [0, 1])]))
        >>> net.layers[0].resting, verify(net, "exhaustive").inputs_with_error
        (True, 0)
    """
    if isinstance(model, Mapping):
        return from_state_dict(model, task, threshold=threshold, last=last)
    if not hasattr(model, "named_modules"):
        raise SuperposeError(
            f"expected a torch nn.Module or a state dict, got {type(model).__name__}"
        )
    return _network(_stack_from_module(model), task, threshold, type(model).__name__)
