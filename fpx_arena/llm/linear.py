"""The one linear-layer type of the model.

Every projection in the transformer (q/k/v/o, gate/up/down, lm_head) is a ``Linear``. A layer
holds either a plain weight (fp32 or bf16, used through ``F.linear``) or a quantized weight
made by ``fpx_arena.kernels.quantize_weight`` (used through ``fpx_arena.kernels.qlinear``).
Which one is decided by a precision plan (layer name -> format, see ``precision.py``) when the
weights are loaded, so a change of number format touches only ``Linear.set_weight``.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from ..kernels import dense_formats

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
        self._dequantized = None  # CPU: the dequantized weight, kept (see _cpu_reference)
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
            from ..kernels import quantize_weight  # the precision issue's kernels

            self.qweight = quantize_weight(weight.to(device=device), fmt)
            self.weight = None
        if bias is not None:
            self.bias = nn.Parameter(bias.to(device=device, dtype=compute_dtype), requires_grad=False)
        self.fmt = fmt
        self._dequantized = None

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
        self._dequantized = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.qweight is not None:
            if x.device.type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
                return self._cpu_reference(x)
            from ..kernels import qlinear

            return qlinear(x, self.qweight, self.bias, backend=QLINEAR_BACKEND)
        return F.linear(x, self.weight, self.bias)

    def _cpu_reference(self, x: torch.Tensor) -> torch.Tensor:
        """The kernels' torch reference (what qlinear runs on CPU), with the dequantized fp32
        weight kept between calls instead of rebuilt at every call (5-50x faster on CPU, at
        the cost of 4 bytes per weight of memory): same numbers, same FP8 token rounding."""
        from ..kernels import qlinear_torch, uses_fp8_activations

        if getattr(self, "_dequantized", None) is None:
            self._dequantized = _Dequantized(self.qweight)
        m = x.numel() // self.in_features
        return qlinear_torch(x, self._dequantized, self.bias, act_fp8=uses_fp8_activations(self.qweight, m, None))

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, bias={self.bias is not None}, fmt={self.fmt}"


class _Dequantized:
    """A quantized weight's dequantized fp32 matrix, computed once: stands in for the weight in
    ``qlinear_torch``, which only asks for ``shape`` and ``dequantize()``."""

    def __init__(self, qweight):
        self.shape = qweight.shape
        self.weight = qweight.dequantize(torch.float32)

    def dequantize(self, dtype=torch.float32) -> torch.Tensor:
        return self.weight if dtype == torch.float32 else self.weight.to(dtype)
