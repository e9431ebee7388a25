"""Fused kernels of a decode step, with torch references: residual add + RMSNorm, rope + KV
write (with Qwen3's per-head q/k norm), one-query attention over the cache split along the
sequence (two launches: chunks, then their softmax combine), SwiGLU.

Each op takes ``backend``: "triton" (CUDA tensors, or CPU tensors under the Triton
interpreter) or "torch"; None picks Triton on CUDA and under ``TRITON_INTERPRET=1``, torch
elsewhere. The torch references round where the model's eager code rounds (bf16 sums,
RMSNorm's cast before its weight, F.silu before the product), so both agree to bf16 rounding.

Position, slot and length are device tensors, read by the kernels: a captured CUDA graph of a
step stays valid while they advance.
"""
from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

from .ops import kernel_module

ATTN_CHUNK = 64        # cache slots per attention program


def _kernels(interpret: bool):
    return kernel_module(interpret, "_fused_triton")


def use_triton(x: torch.Tensor, backend: str | None = None) -> bool:
    if backend is None:
        if x.is_cuda:
            return True
        return os.environ.get("TRITON_INTERPRET") == "1"
    if backend not in ("triton", "torch"):
        raise ValueError(f"unknown backend {backend!r}; expected 'triton' or 'torch'")
    return backend == "triton"


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


# ----------------------------------------------------------------------------- residual + norm

def add_rmsnorm(x: torch.Tensor, delta: torch.Tensor | None, weight: torch.Tensor, eps: float,
                backend: str | None = None) -> torch.Tensor:
    """x += delta in place (x: [rows, n] contiguous), then weight * rmsnorm(x): one launch."""
    if not use_triton(x, backend):
        if delta is not None:
            x.add_(delta)
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
        return weight * xf.to(x.dtype)
    n = x.shape[-1]
    out = torch.empty_like(x)
    rows = x.numel() // n
    block = _pow2(n)
    _kernels(not x.is_cuda).add_rmsnorm_kernel[(rows,)](
        x, delta if delta is not None else x, weight, out, n, eps, HAS_DELTA=delta is not None, BLOCK=block,
        num_warps=min(16, max(1, block // 256)))
    return out


# ----------------------------------------------------------------------------- rope + KV write

def rope_kv_write(qkv: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor, inv_freq: torch.Tensor,
                  k_cache: torch.Tensor, v_cache: torch.Tensor, n_heads: int, n_kv_heads: int,
                  q_norm: torch.Tensor | None = None, k_norm: torch.Tensor | None = None, eps: float = 1e-6,
                  backend: str | None = None) -> torch.Tensor:
    """qkv [T, (H + 2 Hkv) hd] -> q [T, H, hd] rotated (normed first with q_norm/k_norm);
    the rotated keys and the values go to k_cache/v_cache [Hkv, capacity, hd] at ``slots``
    [T]; ``positions`` [T] are the rope positions."""
    T = qkv.shape[0]
    hd = k_cache.shape[-1]
    if not use_triton(qkv, backend):
        q, k, v = qkv.view(T, -1, hd).split([n_heads, n_kv_heads, n_kv_heads], dim=1)
        if q_norm is not None:
            q, k = _head_norm(q, q_norm, eps), _head_norm(k, k_norm, eps)
        freqs = positions.to(torch.float32)[:, None] * inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]

        def rot(x):
            xf = x.float()
            half = hd // 2
            return (xf * cos + torch.cat((-xf[..., half:], xf[..., :half]), -1) * sin).to(x.dtype)

        k_cache[:, slots] = rot(k).transpose(0, 1)
        v_cache[:, slots] = v.transpose(0, 1)
        return rot(q)
    q_out = torch.empty(T, n_heads, hd, dtype=qkv.dtype, device=qkv.device)
    has_norm = q_norm is not None
    _kernels(not qkv.is_cuda).rope_kv_kernel[(n_heads + n_kv_heads, T)](
        qkv, q_out, k_cache, v_cache, positions, slots, inv_freq,
        q_norm if has_norm else qkv, k_norm if has_norm else qkv, eps, qkv.stride(0), k_cache.stride(0),
        H=n_heads, HKV=n_kv_heads, HD=hd, HAS_QKNORM=has_norm, num_warps=1)
    return q_out


def _head_norm(x, w, eps):
    xf = x.float()
    return w * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


# ----------------------------------------------------------------------------- decode attention

def decode_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, length: torch.Tensor,
                     scale: float | None = None, backend: str | None = None) -> torch.Tensor:
    """One query per head, q [H, hd], over cache slots 0..length-1 of k/v_cache [Hkv, capacity,
    hd] (``length`` a one-element device tensor): out [H * hd] in q's dtype. Query head h reads
    kv head h // (H / Hkv). Split along the sequence into chunks of ATTN_CHUNK slots."""
    H, hd = q.shape
    hkv, cap, _ = k_cache.shape
    g = H // hkv
    scale = 1.0 / math.sqrt(hd) if scale is None else scale
    if not use_triton(q, backend):
        n = int(length.reshape(-1)[0])
        k = k_cache[:, :n].repeat_interleave(g, 0).float()
        v = v_cache[:, :n].repeat_interleave(g, 0).float()
        w = torch.softmax(torch.einsum("hd,hnd->hn", q.float(), k) * scale, -1)
        return torch.einsum("hn,hnd->hd", w, v).to(q.dtype).reshape(H * hd)
    nsplit = -(-cap // ATTN_CHUNK)
    gp = max(16, _pow2(g))
    dev = q.device
    m = torch.empty(hkv * nsplit * gp, dtype=torch.float32, device=dev)
    l_sum = torch.empty_like(m)
    acc = torch.empty(hkv * nsplit * gp, hd, dtype=torch.float32, device=dev)
    out = torch.empty(H * hd, dtype=q.dtype, device=dev)
    mod = _kernels(not q.is_cuda)
    mod.attn_partial_kernel[(hkv, nsplit)](q, k_cache, v_cache, length, m, l_sum, acc, scale, k_cache.stride(0),
                                           nsplit, G=g, GP=gp, HD=hd, CHUNK=ATTN_CHUNK, num_warps=4)
    mod.attn_combine_kernel[(H,)](m, l_sum, acc, out, nsplit, G=g, GP=gp, HD=hd, SP=max(2, _pow2(nsplit)),
                                  num_warps=4)
    return out


# ----------------------------------------------------------------------------- SwiGLU

def silu_mul(gate_up: torch.Tensor, backend: str | None = None) -> torch.Tensor:
    """[T, 2I] = [gate | up] -> silu(gate) * up, [T, I]."""
    T, two_i = gate_up.shape
    inter = two_i // 2
    if not use_triton(gate_up, backend):
        gate, up = gate_up.split(inter, dim=-1)
        return F.silu(gate) * up
    out = torch.empty(T, inter, dtype=gate_up.dtype, device=gate_up.device)
    block = 1024
    _kernels(not gate_up.is_cuda).silu_mul_kernel[(T, -(-inter // block))](gate_up, out, inter, BLOCK=block,
                                                                            num_warps=4)
    return out


def supported(head_dim: int, dtype: torch.dtype) -> bool:
    """Whether the fused decode kernels take this head size and dtype (tensor-core shapes)."""
    return dtype in (torch.bfloat16, torch.float16) and 16 <= head_dim <= 256 and head_dim & (head_dim - 1) == 0
