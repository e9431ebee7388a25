"""The one linear-layer type of the model.

Every projection in the transformer (q/k/v/o, gate/up/down, lm_head) is a ``Linear``. A layer
holds either a plain weight (fp32 or bf16, used through ``F.linear``) or a quantized weight
made by ``fpx_arena.kernels.quantize_weight`` (used through ``fpx_arena.kernels.qlinear``).
Which one is decided by a precision plan (layer name -> format, see ``precision.py``) when the
weights are loaded, so a change of number format touches only ``Linear.set_weight``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Formats stored as a plain tensor and multiplied with F.linear.
DENSE_FORMATS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


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
            self.weight = nn.Parameter(weight.to(device=device, dtype=DENSE_FORMATS[fmt]),
                                       requires_grad=False)
            self.qweight = None
        else:
            from ..kernels import quantize_weight  # the precision issue's kernels

            self.qweight = quantize_weight(weight.to(device=device), fmt)
            self.weight = None
        if bias is not None:
            self.bias = nn.Parameter(bias.to(device=device, dtype=compute_dtype), requires_grad=False)
        self.fmt = fmt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.qweight is not None:
            from ..kernels import qlinear

            return qlinear(x, self.qweight, self.bias)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, bias={self.bias is not None}, fmt={self.fmt}"
