"""Torch references: the CPU path of ``qlinear`` and the float64 product tests compare with."""
from __future__ import annotations

import torch

from .formats import QuantizedWeight, decode_e4m3, quantize_fp8_tokens


def qlinear_torch(x: torch.Tensor, qw: QuantizedWeight, bias: torch.Tensor | None = None,
                  act_fp8: bool = False) -> torch.Tensor:
    """x [..., K] @ dequantize(W)^T (+ bias) in float32, returned in x's dtype. With
    ``act_fp8`` the activations are first quantized per token to e4m3, as the W8A8 kernel does."""
    k = qw.shape[1]
    x2 = x.reshape(-1, k)
    if act_fp8:
        xq, xs = quantize_fp8_tokens(x2)
        xf = decode_e4m3(xq) * xs[:, None]
    else:
        xf = x2.float()
    y = xf @ qw.dequantize(torch.float32).t()
    if bias is not None:
        y = y + bias.float()
    return y.to(x.dtype).reshape(*x.shape[:-1], qw.shape[0])


def reference_product(x: torch.Tensor, qw: QuantizedWeight, bias: torch.Tensor | None = None,
                      act_fp8: bool = False) -> torch.Tensor:
    """The float64 product of (x as given, or its per-token e4m3 rounding with ``act_fp8``) and
    the dequantized weight: what every backend of qlinear approximates."""
    k = qw.shape[1]
    x2 = x.reshape(-1, k)
    if act_fp8:
        xq, xs = quantize_fp8_tokens(x2)
        xd = decode_e4m3(xq).double() * xs.double()[:, None]
    else:
        xd = x2.double()
    y = xd @ qw.dequantize(torch.float64).t()
    if bias is not None:
        y = y + bias.double()
    return y.reshape(*x.shape[:-1], qw.shape[0])


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref|| in float64 (NaN if out has any NaN/Inf)."""
    out = out.double()
    if not torch.isfinite(out).all():
        return float("nan")
    ref = ref.double().to(out.device)
    return float((out - ref).norm() / ref.norm().clamp_min(1e-300))
