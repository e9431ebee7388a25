"""The quantized product as a torch custom op, ``torch.ops.fpx_arena.qlinear``.

``torch.compile`` traces into plain Python; tracing into ``kernels.qlinear`` (its dispatch on
M, its tuner, its Triton launches) breaks the graph or guards on every stride and shape until
the recompile limit. Registered through ``torch.library.custom_op`` with a fake (meta) impl, the
product is one opaque node whose output shape is all the compiler needs to know.

A ``QuantizedWeight`` is passed as its tensors (one list, in field order) and its format,
shape and output multiplier; the op rebuilds the object and calls ``kernels.qlinear``.
"""
from __future__ import annotations

import dataclasses

import torch

from ..kernels import QuantizedWeight, qlinear

_FIELDS = [f.name for f in dataclasses.fields(QuantizedWeight)]
_PLAIN = {"fmt", "shape", "out_multiplier"}  # the non-tensor fields the op carries itself


@torch.library.custom_op("fpx_arena::qlinear", mutates_args=())
def qlinear_op(x: torch.Tensor, tensors: list[torch.Tensor | None], fmt: str, n: int, k: int,
               out_multiplier: float, bias: torch.Tensor | None, backend: str) -> torch.Tensor:
    it = iter(tensors)
    kw = {}
    for name in _FIELDS:
        if name == "fmt":
            kw[name] = fmt
        elif name == "shape":
            kw[name] = (n, k)
        elif name == "out_multiplier":
            kw[name] = out_multiplier
        else:
            kw[name] = next(it)
    return qlinear(x, QuantizedWeight(**kw), bias, backend=backend or None)


@qlinear_op.register_fake
def _(x, tensors, fmt, n, k, out_multiplier, bias, backend):
    return x.new_empty(*x.shape[:-1], n)


# Whether the op can carry the weight type: every field a tensor (or None) but the plain ones.
# Decided once from the class, so a compiled caller guards on nothing that changes.
_CARRIES = all(name in _PLAIN or "Tensor" in str(f.type) for name, f in
               ((f.name, f) for f in dataclasses.fields(QuantizedWeight)))


def op_tensors(qw: QuantizedWeight) -> list:
    """The tensors of a quantized weight as the op takes them (field order)."""
    return [getattr(qw, name) for name in _FIELDS if name not in _PLAIN]


def quantized_linear(x: torch.Tensor, qw: QuantizedWeight, bias: torch.Tensor | None,
                     backend: str | None = None) -> torch.Tensor:
    """x @ W^T (+ bias) through the custom op (``kernels.qlinear`` for a weight type the op
    cannot carry)."""
    if not _CARRIES:
        return qlinear(x, qw, bias, backend=backend)
    return qlinear_op(x, op_tensors(qw), qw.fmt, int(qw.shape[0]), int(qw.shape[1]), float(qw.out_multiplier),
                      bias, backend or "")
