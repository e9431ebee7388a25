"""The fused decode step: one token of a batch-1 cache in about ten kernels per layer.

Per layer: residual add + RMSNorm (one kernel), q/k/v as one projection, rope + the KV-cache
write (one kernel, with Qwen3's q/k norm), attention of the one query over the cache split
along the sequence (two kernels), the output projection, residual add + RMSNorm, gate/up as
one projection, SwiGLU (one kernel), the down projection. The quantized projections are the
kernels' GEMVs (``kernels.qlinear``), the dense ones cuBLAS. Position and slot are device
tensors, so the step can be captured in a CUDA graph once and replayed as the cache fills
(see cuda_graph.py).

Runs on CUDA by default (``FPX_FUSED_DECODE=0`` turns it off: the model's own static step is
then captured instead), and on the CPU under ``TRITON_INTERPRET=1`` (the same Triton code, for
tests); ``usable()`` says when: bf16/fp16 compute, a head size the attention kernel takes,
batch 1. Verified on an H100 (Triton 3.6): tests/test_llm_gpu.py, test_fused_kernels.py and
bench/decisions.py (fused step against the eager step on every shape and precision).
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from ..kernels import fused, qlinear


def usable(model, cache) -> bool:
    dev = model.device
    if dev.type == "cuda":
        if os.environ.get("FPX_FUSED_DECODE", "1") == "0":
            return False
    elif os.environ.get("TRITON_INTERPRET") != "1":
        return False
    return (not getattr(model, "eager_decode", False) and cache.k.shape[1] == 1
            and fused.supported(model.config.head_dim, model.dtype))


def _proj(fusedlin, members, x):
    if fusedlin is not None and fusedlin.current():
        return fusedlin(x)
    if x.shape[0] == 1 and all(m.qweight is not None for m in members):
        # members of different formats (an fpx plan): each product writes its columns of one
        # row (a contiguous slice), so no concatenation follows the products
        y = torch.empty(1, sum(m.out_features for m in members), dtype=x.dtype, device=x.device)
        a = 0
        for m in members:
            qlinear(x, m.qweight, m.bias, out=y[:, a:a + m.out_features])
            a += m.out_features
        return y
    return torch.cat([m(x) for m in members], dim=-1)


def _attention_inputs(model, blk, cache, i, x, delta, positions, slots):
    """Residual add + norm, the q/k/v projection, rope with the KV-cache write at ``slots``:
    the rotated queries and layer i's cache views (both the decode step and appends start so)."""
    c, attn = model.config, blk.attn
    h = fused.add_rmsnorm(x, delta, blk.attn_norm.weight, c.norm_eps)
    qkv = _proj(attn.fused_qkv, (attn.q_proj, attn.k_proj, attn.v_proj), h)
    k_cache, v_cache = cache.k[i, 0], cache.v[i, 0]
    qn = attn.q_norm.weight if attn.q_norm is not None else None
    kn = attn.k_norm.weight if attn.k_norm is not None else None
    q = fused.rope_kv_write(qkv, positions, slots, model.inv_freq, k_cache, v_cache, c.n_heads, c.n_kv_heads,
                            qn, kn, c.norm_eps)
    return q, k_cache, v_cache


def decode_step(model, cache, token: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Logits [1, vocab] (the compute dtype) of token [1] (a device tensor) written at cache
    slot ``pos`` [1] (also its rope position), attending over slots 0..pos. Does not touch
    cache.length."""
    c = model.config
    eps = c.norm_eps
    x = model.embed(token.reshape(1))                 # [1, dim]; updated in place by add_rmsnorm
    length = pos + 1
    delta = None
    for i, blk in enumerate(model.layers):
        attn, mlp = blk.attn, blk.mlp
        q, k_cache, v_cache = _attention_inputs(model, blk, cache, i, x, delta, pos, pos)
        a = fused.decode_attention(q.reshape(c.n_heads, c.head_dim), k_cache, v_cache, length)
        delta = attn.o_proj(a.reshape(1, -1))
        h = fused.add_rmsnorm(x, delta, blk.mlp_norm.weight, eps)
        gu = _proj(mlp.fused_gate_up, (mlp.gate_proj, mlp.up_proj), h)
        delta = mlp.down_proj(fused.silu_mul(gu))
    h = fused.add_rmsnorm(x, delta, model.norm.weight, eps)
    return model.lm_head(h)


def forward_static(model, cache, tokens: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor,
                   mask: torch.Tensor, out_rows=None) -> torch.Tensor:
    """A static-shape append of W tokens ([1, W]) at cache ``slots`` [W] with rope
    ``positions`` [W], attention under ``mask`` [W, span] over the cache's first ``span`` slots
    (the graphs of a prompt tail and of constrained scoring): the fused norm, rope + KV write
    and SwiGLU kernels around the projections, attention by SDPA. Returns logits [rows, vocab]
    (the compute dtype) of ``out_rows`` (default: all)."""
    c = model.config
    eps = c.norm_eps
    W, span = tokens.shape[1], mask.shape[-1]
    x = model.embed(tokens[0])                        # [W, dim]; updated in place by add_rmsnorm
    delta = None
    for i, blk in enumerate(model.layers):
        attn, mlp = blk.attn, blk.mlp
        q, k_cache, v_cache = _attention_inputs(model, blk, cache, i, x, delta, positions, slots)
        y = F.scaled_dot_product_attention(q.transpose(0, 1)[None], k_cache[None, :, :span],
                                           v_cache[None, :, :span], attn_mask=mask,
                                           enable_gqa=c.n_heads != c.n_kv_heads)
        delta = attn.o_proj(y[0].transpose(0, 1).reshape(W, -1))
        h = fused.add_rmsnorm(x, delta, blk.mlp_norm.weight, eps)
        gu = _proj(mlp.fused_gate_up, (mlp.gate_proj, mlp.up_proj), h)
        delta = mlp.down_proj(fused.silu_mul(gu))
    h = fused.add_rmsnorm(x, delta, model.norm.weight, eps)
    if out_rows is not None:
        h = h[out_rows]
    return model.lm_head(h)
