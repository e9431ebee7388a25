"""Triton kernels of the engine's fused decode step (see fused.py): residual add + RMSNorm,
rope + KV-cache write, one-query attention split along the sequence, SwiGLU.

Loaded by ``fused.py`` through importlib, once compiled for CUDA and once under the Triton
interpreter, like ``_triton.py``. Every kernel reads device scalars (position, slot, length)
from memory, never from the host, so a CUDA graph of a step stays valid as they advance.
"""
import os

import triton
import triton.language as tl

_INTERP = tl.constexpr(os.environ.get("TRITON_INTERPRET") == "1")

# Triton's library helpers (tl.sum, tl.max, tl.zeros, tl.sigmoid) are themselves @jit functions,
# compiled-mode objects when triton was imported without TRITON_INTERPRET: the kernels here use
# builtins and their own combine functions so that the interpreter flavour runs too.


@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def _max(a, b):
    return tl.maximum(a, b)


@triton.jit
def _cast(x, DT: tl.constexpr):
    """fp32 -> DT rounded to nearest even (the interpreter's own fp32 -> bf16 truncates)."""
    if _INTERP and DT == tl.bfloat16:
        bits = x.to(tl.uint32, bitcast=True)
        bits = bits + 0x7FFF + ((bits >> 16) & 1)
        return (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    return x.to(DT)


@triton.jit
def _mma_in(x):
    """A tensor-core operand: bf16/fp16 as loaded on the GPU; fp32 in the interpreter, whose
    dot on bf16 operands is not exact."""
    if _INTERP:
        return x.to(tl.float32)
    return x


@triton.jit
def _sum(x, axis: tl.constexpr):
    return tl.reduce(x, axis, _add)


@triton.jit
def _rmax(x, axis: tl.constexpr):
    return tl.reduce(x, axis, _max)


@triton.jit
def add_rmsnorm_kernel(x_ptr, d_ptr, w_ptr, out_ptr, n, eps, HAS_DELTA: tl.constexpr, BLOCK: tl.constexpr):
    """x += delta (rounded to x's dtype, kept in x), out = w * rmsnorm(x) (as RMSNorm rounds)."""
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + row * n + offs, mask=mask, other=0.0)
    if HAS_DELTA:
        d = tl.load(d_ptr + row * n + offs, mask=mask, other=0.0)
        x = _cast(x.to(tl.float32) + d.to(tl.float32), x_ptr.dtype.element_ty)
        tl.store(x_ptr + row * n + offs, x, mask=mask)
    xf = x.to(tl.float32)
    var = _sum(xf * xf, 0) / n
    xn = _cast(xf * tl.rsqrt(var + eps), out_ptr.dtype.element_ty).to(tl.float32)
    w = tl.load(w_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + row * n + offs, _cast(xn * w, out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _head_norm(x1, x2, w_ptr, eps, HALF: tl.constexpr, DT: tl.constexpr):
    i = tl.arange(0, HALF)
    var = (_sum(x1 * x1, 0) + _sum(x2 * x2, 0)) / (2 * HALF)
    r = tl.rsqrt(var + eps)
    w1 = tl.load(w_ptr + i).to(tl.float32)
    w2 = tl.load(w_ptr + HALF + i).to(tl.float32)
    y1 = _cast(_cast(x1 * r, DT).to(tl.float32) * w1, DT).to(tl.float32)
    y2 = _cast(_cast(x2 * r, DT).to(tl.float32) * w2, DT).to(tl.float32)
    return y1, y2


@triton.jit
def rope_kv_kernel(qkv_ptr, q_out_ptr, k_cache_ptr, v_cache_ptr, pos_ptr, slot_ptr, inv_freq_ptr,
                   qn_ptr, kn_ptr, eps, row_stride, cache_head_stride,
                   H: tl.constexpr, HKV: tl.constexpr, HD: tl.constexpr, HAS_QKNORM: tl.constexpr):
    """Program (head, token): q heads are normed (Qwen3), rotated and written to q_out[t, h];
    k heads rotated and written with their v head at cache slot slot[t]."""
    h = tl.program_id(0)
    t = tl.program_id(1)
    HALF: tl.constexpr = HD // 2
    DT = q_out_ptr.dtype.element_ty
    i = tl.arange(0, HALF)
    pos = tl.load(pos_ptr + t).to(tl.float32)
    ang = pos * tl.load(inv_freq_ptr + i)
    c = tl.cos(ang)
    s = tl.sin(ang)
    row = qkv_ptr + t * row_stride
    is_q = h < H
    base = tl.where(is_q, h * HD, H * HD + (h - H) * HD)
    x1 = tl.load(row + base + i).to(tl.float32)
    x2 = tl.load(row + base + HALF + i).to(tl.float32)
    if HAS_QKNORM:
        if is_q:
            x1, x2 = _head_norm(x1, x2, qn_ptr, eps, HALF, DT)
        else:
            x1, x2 = _head_norm(x1, x2, kn_ptr, eps, HALF, DT)
    o1 = _cast(x1 * c - x2 * s, DT)
    o2 = _cast(x2 * c + x1 * s, DT)
    # each branch keeps its own names: Triton 3.6 refuses one name holding a pointer in one
    # branch and an integer offset in the other
    if is_q:
        q_dst = q_out_ptr + (t * H + h) * HD
        tl.store(q_dst + i, o1)
        tl.store(q_dst + HALF + i, o2)
    else:
        kh = h - H
        slot = tl.load(slot_ptr + t)
        kv_off = kh * cache_head_stride + slot * HD
        tl.store(k_cache_ptr + kv_off + i, o1)
        tl.store(k_cache_ptr + kv_off + HALF + i, o2)
        v_src = row + H * HD + HKV * HD + kh * HD
        v1 = tl.load(v_src + i)
        v2 = tl.load(v_src + HALF + i)
        tl.store(v_cache_ptr + kv_off + i, v1)
        tl.store(v_cache_ptr + kv_off + HALF + i, v2)


@triton.jit
def attn_partial_kernel(q_ptr, k_ptr, v_ptr, len_ptr, m_ptr, l_ptr, acc_ptr, scale, cache_head_stride,
                        NSPLIT, G: tl.constexpr, GP: tl.constexpr, HD: tl.constexpr, CHUNK: tl.constexpr):
    """Program (kv head, chunk of the sequence): the G query heads of this kv head (padded to
    GP >= 16 rows for the tensor cores) against cache slots [chunk * CHUNK, +CHUNK) below the
    valid length: row max, sum of exponentials and weighted values of the chunk."""
    kh = tl.program_id(0)
    sp = tl.program_id(1)
    length = tl.load(len_ptr)
    g = tl.arange(0, GP)
    d = tl.arange(0, HD)
    offs = sp * CHUNK + tl.arange(0, CHUNK)
    valid = offs < length
    part = (kh * NSPLIT + sp) * GP + g
    if sp * CHUNK >= length:   # past the valid slots: an empty partial
        tl.store(m_ptr + part, tl.full([GP], float("-inf"), tl.float32))
        tl.store(l_ptr + part, tl.full([GP], 0.0, tl.float32))
        tl.store(acc_ptr + part[:, None] * HD + d[None, :], tl.full([GP, HD], 0.0, tl.float32))
    else:
        q = tl.load(q_ptr + (kh * G + g)[:, None] * HD + d[None, :], mask=(g < G)[:, None], other=0.0)
        kv_off = kh * cache_head_stride + offs[:, None] * HD + d[None, :]
        k = tl.load(k_ptr + kv_off, mask=valid[:, None], other=0.0)
        s = tl.dot(_mma_in(q), _mma_in(tl.trans(k))) * scale                                 # [GP, CHUNK] fp32
        s = tl.where(valid[None, :], s, float("-inf"))
        m = _rmax(s, 1)
        p = tl.exp(s - m[:, None])
        l_sum = _sum(p, 1)
        v = tl.load(v_ptr + kv_off, mask=valid[:, None], other=0.0)
        acc = tl.dot(_mma_in(p.to(v.dtype)), _mma_in(v))                                      # [GP, HD] fp32
        tl.store(m_ptr + part, m)
        tl.store(l_ptr + part, l_sum)
        tl.store(acc_ptr + part[:, None] * HD + d[None, :], acc)


@triton.jit
def attn_combine_kernel(m_ptr, l_ptr, acc_ptr, out_ptr, NSPLIT, G: tl.constexpr, GP: tl.constexpr,
                        HD: tl.constexpr, SP: tl.constexpr):
    """Program (query head): the softmax-weighted sum of its chunks' partial results."""
    h = tl.program_id(0)
    kh = h // G
    g = h % G
    sp = tl.arange(0, SP)
    d = tl.arange(0, HD)
    ok = sp < NSPLIT
    part = (kh * NSPLIT + sp) * GP + g
    m = tl.load(m_ptr + part, mask=ok, other=float("-inf"))
    l_sum = tl.load(l_ptr + part, mask=ok, other=0.0)
    mx = _rmax(m, 0)
    w = tl.where(m == float("-inf"), 0.0, tl.exp(m - mx))
    total = _sum(w * l_sum, 0)
    acc = tl.load(acc_ptr + part[:, None] * HD + d[None, :], mask=ok[:, None], other=0.0)
    out = _sum(w[:, None] * acc, 0) / total
    tl.store(out_ptr + h * HD + d, _cast(out, out_ptr.dtype.element_ty))


@triton.jit
def silu_mul_kernel(gu_ptr, out_ptr, inter, BLOCK: tl.constexpr):
    """out[t] = silu(gate) * up for gu[t] = [gate | up], rounded as F.silu(g) * u is."""
    t = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < inter
    g = tl.load(gu_ptr + t * 2 * inter + offs, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(gu_ptr + t * 2 * inter + inter + offs, mask=mask, other=0.0).to(tl.float32)
    DT = out_ptr.dtype.element_ty
    sg = _cast(g * (1.0 / (1.0 + tl.exp(-g))), DT).to(tl.float32)
    tl.store(out_ptr + t * inter + offs, _cast(sg * u, DT), mask=mask)
