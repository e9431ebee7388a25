"""The one linear-layer type of the model.

Every projection in the transformer (q/k/v/o, gate/up/down, lm_head) is a ``Linear``. A layer
holds either a plain weight (fp32 or bf16, used through ``F.linear``) or a quantized weight
made by ``fpx_arena.kernels.quantize_weight`` (used through ``fpx_arena.kernels.qlinear``).
Which one is decided by a precision plan (layer name -> format, see ``precision.py``) when the
weights are loaded, so a change of number format touches only ``Linear.set_weight``.

``FusedLinear`` is several projections that read the same input (q, k, v; gate, up) held as
one weight, so that a decode step streams them in one kernel; the member ``Linear`` layers keep
views of its rows (``rows_of``), so plans, calibration hooks and the cache still see one layer
per name. Quantized products go through the custom op ``fpx_arena::qlinear`` (see ops.py), so
``torch.compile`` treats them as one opaque call.
"""
from __future__ import annotations

import dataclasses
import os

import torch
import torch.nn.functional as F
from torch import nn

from ..kernels import QuantizedWeight, dense_formats, qlinear_torch, quantize_weight, uses_fp8_activations
from .ops import quantized_linear

# Which qlinear backend quantized layers use: None = qlinear's choice (Triton on CUDA, the torch
# reference on CPU); "torch" forces the reference everywhere (benchmarks compare the two paths).
QLINEAR_BACKEND: str | None = None

# Formats stored as a plain tensor and multiplied with F.linear.
DENSE_FORMATS = dense_formats()


class Linear(nn.Module):
    """y = x @ W^T (+ b). ``fmt`` says how W is held: a dense dtype or a quantized format."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False, *,
                 device=None, dtype=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(
            torch.empty(out_features, in_features, device=device, dtype=dtype), requires_grad=False)
        self.bias = (nn.Parameter(torch.empty(out_features, device=device, dtype=dtype),
                                  requires_grad=False) if bias else None)
        self.qweight = None  # a quantized weight from fpx_arena.kernels, when fmt is not dense
        self.dense_copy = None  # CPU: the dequantized weight, kept (see _cpu_reference)
        self.fmt = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(
            dtype or torch.get_default_dtype(), "fp32")

    def set_weight(self, weight: torch.Tensor, bias: torch.Tensor | None, fmt: str,
                   compute_dtype: torch.dtype, device) -> None:
        """Install ``weight`` ([out, in], any float dtype) in format ``fmt``. The bias, when
        there is one, stays in the compute dtype whatever the weight's format."""
        if tuple(weight.shape) != (self.out_features, self.in_features):
            raise ValueError(f"weight shape {list(weight.shape)} != "
                             f"[{self.out_features}, {self.in_features}]")
        if fmt in DENSE_FORMATS:
            # rounded to its format, held in the compute dtype (a bf16 layer of an fp32 plan
            # multiplies bf16-rounded weights in fp32; F.linear needs one dtype)
            w = weight.to(device=device, dtype=DENSE_FORMATS[fmt])
            self.weight = nn.Parameter(w.to(compute_dtype) if compute_dtype in DENSE_FORMATS.values() else w,
                                       requires_grad=False)
            self.qweight = None
        else:
            self.qweight = quantize_weight(weight.to(device=device), fmt)
            self.weight = None
        if bias is not None:
            self.bias = nn.Parameter(bias.to(device=device, dtype=compute_dtype), requires_grad=False)
        self.fmt = fmt
        self.dense_copy = None

    def set_quantized(self, qweight, bias: torch.Tensor | None, compute_dtype: torch.dtype, device) -> None:
        """Install an already quantized weight (from the quantized-weight cache)."""
        if tuple(qweight.shape) != (self.out_features, self.in_features):
            raise ValueError(f"quantized weight shape {list(qweight.shape)} != "
                             f"[{self.out_features}, {self.in_features}]")
        self.qweight = qweight.to(device)
        self.weight = None
        if bias is not None:
            self.bias = nn.Parameter(bias.to(device=device, dtype=compute_dtype), requires_grad=False)
        self.fmt = qweight.fmt
        self.dense_copy = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.qweight is not None:
            if x.device.type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1" and QLINEAR_BACKEND is None:
                return self._cpu_reference(x)
            return quantized_linear(x, self.qweight, self.bias, QLINEAR_BACKEND)
        return F.linear(x, self.weight, self.bias)

    def _cpu_reference(self, x: torch.Tensor) -> torch.Tensor:
        """The kernels' torch reference (what qlinear runs on CPU), with the dequantized fp32
        weight kept between calls instead of rebuilt at every call (5-50x faster on CPU, at
        the cost of 4 bytes per weight of memory): same numbers, same FP8 token rounding.
        Kept per quantized weight, so switching plans back and forth rebuilds nothing."""
        dq = self.dense_copy
        if dq is None or dq.source is not self.qweight:
            dq = self.dense_copy = _dequantized_of(self.qweight)
        m = x.numel() // self.in_features
        return qlinear_torch(x, dq, self.bias, act_fp8=uses_fp8_activations(self.qweight, m, None))

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, bias={self.bias is not None}, fmt={self.fmt}"


class _Dequantized:
    """A quantized weight's dequantized fp32 matrix, computed once: stands in for the weight in
    ``qlinear_torch``, which only asks for ``shape`` and ``dequantize()``."""

    def __init__(self, qweight, weight: torch.Tensor | None = None):
        self.shape = qweight.shape
        self.source = qweight
        self.weight = qweight.dequantize(torch.float32) if weight is None else weight

    def dequantize(self, dtype=torch.float32) -> torch.Tensor:
        return self.weight if dtype == torch.float32 else self.weight.to(dtype)


def _dequantized_of(qweight) -> _Dequantized:
    """The dequantized matrix of a quantized weight, made once per weight object (a row view of
    a fused weight's, when it is one: the fused product and its members share the memory)."""
    dq = getattr(qweight, "_fpx_dequantized", None)
    if dq is None:
        parent = getattr(qweight, "_fpx_rows_of", None)
        if parent is not None:
            whole, a, b = parent
            dq = _Dequantized(qweight, _dequantized_of(whole).weight[a:b])
        else:
            dq = _Dequantized(qweight)
        qweight._fpx_dequantized = dq
    return dq


# --- fused projections -------------------------------------------------------------------------
def _row_fields(qw: QuantizedWeight) -> list[str] | None:
    """The tensor fields of a quantized weight that hold one entry per output row (all of them
    but per-tensor scalars), or None if some tensor field is neither: then rows cannot be
    sliced or stacked without knowing its layout."""
    n = qw.shape[0]
    rows = []
    for f in dataclasses.fields(qw):
        v = getattr(qw, f.name)
        if not isinstance(v, torch.Tensor):
            continue
        if v.dim() >= 1 and v.shape[0] == n and n > 1:
            rows.append(f.name)
        elif v.numel() != 1:
            return None
    return rows


def rows_of(qw: QuantizedWeight, a: int, b: int) -> QuantizedWeight:
    """Rows a..b-1 of a quantized weight, as views (the per-tensor scale is shared)."""
    fields = _row_fields(qw)
    if fields is None:
        raise ValueError(f"cannot slice the rows of a {qw.fmt} weight of this layout")
    out = dataclasses.replace(qw, shape=(b - a, qw.shape[1]), **{f: getattr(qw, f)[a:b] for f in fields})
    out.__dict__.pop("_fpx_dequantized", None)
    out._fpx_rows_of = (qw, a, b)
    return out


def own_copy(qw: QuantizedWeight) -> QuantizedWeight:
    """The weight with its own storage (a row view shares its fused weight's, which a file
    writer such as safetensors refuses)."""
    return dataclasses.replace(qw, **{f.name: getattr(qw, f.name).clone() for f in dataclasses.fields(qw)
                                      if isinstance(getattr(qw, f.name), torch.Tensor)})


def stack_rows(parts: list[QuantizedWeight]) -> QuantizedWeight | None:
    """One quantized weight holding the rows of ``parts`` in order, or None when they cannot
    share one (different formats or K, or different per-tensor scales: quantized apart)."""
    first = parts[0]
    fields = _row_fields(first)
    if fields is None:
        return None
    for p in parts[1:]:
        if p.fmt != first.fmt or p.shape[1] != first.shape[1] or _row_fields(p) != fields:
            return None
        for f in dataclasses.fields(first):
            v, w = getattr(first, f.name), getattr(p, f.name)
            if f.name in fields or f.name == "shape":
                continue
            same = torch.equal(v, w) if isinstance(v, torch.Tensor) else v == w
            if not same:
                return None
    n = sum(p.shape[0] for p in parts)
    return dataclasses.replace(first, shape=(n, first.shape[1]),
                               **{f: torch.cat([getattr(p, f) for p in parts]) for f in fields})


class FusedLinear(Linear):
    """The members' projections as one: y = x @ [W_1; W_2; ...]^T, split by ``splits``.
    Not a submodule of the model (plans and calibration name the members)."""

    def __init__(self, members: list[Linear], weight: torch.Tensor | None, qweight, bias):
        nn.Module.__init__(self)
        self.in_features = members[0].in_features
        self.splits = [m.out_features for m in members]
        self.out_features = sum(self.splits)
        self.weight = None if weight is None else nn.Parameter(weight, requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        self.qweight = qweight
        self.dense_copy = None
        self.fmt = members[0].fmt
        self.members = members
        self.installed = self.member_state()

    def member_state(self) -> list:
        return [(m.weight, m.qweight) for m in self.members]

    def current(self) -> bool:
        """Whether the members still hold the rows of this weight (a later set_weight, a
        plan switch or a .to() would have replaced them)."""
        for (w, q), m in zip(self.installed, self.members):
            if m.weight is not w or m.qweight is not q:
                return False
        return True


def fuse(members: list[Linear], fmt_of, read, compute_dtype, device, cached: dict | None = None,
         names: list[str] | None = None) -> FusedLinear | None:
    """Install ``members`` (Linear layers that read the same input) as one FusedLinear, each
    member holding a view of its rows. ``read(name)`` gives a member's source weight/bias,
    ``fmt_of(name)`` its format, ``cached`` quantized weights already made (the quantized-weight
    cache). Returns None, leaving the members as they were, when their formats differ."""
    fmts = {fmt_of(n) for n in names}
    has_bias = {m.bias is not None for m in members}
    if len(fmts) != 1 or len(has_bias) != 1:
        return None
    fmt = fmts.pop()
    bias = torch.cat([read(n + ".bias").to(device=device, dtype=compute_dtype) for n in names]) \
        if True in has_bias else None
    bounds = [0]
    for m in members:
        bounds.append(bounds[-1] + m.out_features)
    if fmt in DENSE_FORMATS:
        w = torch.cat([read(n + ".weight").to(device=device, dtype=DENSE_FORMATS[fmt]) for n in names])
        if compute_dtype in DENSE_FORMATS.values():
            w = w.to(compute_dtype)
        for m, a, b in zip(members, bounds, bounds[1:]):
            m.weight, m.qweight, m.fmt, m.dense_copy = nn.Parameter(w[a:b], requires_grad=False), None, fmt, None
        qw = None
    else:
        qw = None
        if cached is not None and all(n in cached for n in names):
            qw = stack_rows([cached[n] for n in names])
            qw = None if qw is None else qw.to(device)
        if qw is None:
            qw = quantize_weight(torch.cat([read(n + ".weight").to(device) for n in names]), fmt)
        if _row_fields(qw) is None:
            return None
        w = None
        for m, a, b in zip(members, bounds, bounds[1:]):
            m.weight, m.qweight, m.fmt, m.dense_copy = None, rows_of(qw, a, b), fmt, None
    for m, a, b in zip(members, bounds, bounds[1:]):
        m.bias = None if bias is None else nn.Parameter(bias[a:b], requires_grad=False)
    return FusedLinear(members, w, qw, bias)
