"""The fused decode kernels (kernels/fused.py) under the Triton interpreter against their torch
references and against float64 math: residual add + RMSNorm, rope + KV write (with q/k norm),
split-sequence decode attention with GQA over a partly filled cache, SwiGLU."""
import math

import pytest
import torch

from fpx_arena.kernels import fused

pytest.importorskip("triton")
BF = torch.bfloat16


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


def test_add_rmsnorm_matches_reference_and_updates_the_residual():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 96, generator=g).to(BF)
    d = torch.randn(3, 96, generator=g).to(BF)
    w = (1 + 0.1 * torch.randn(96, generator=g)).to(BF)
    x1, x2 = x.clone(), x.clone()
    ref = fused.add_rmsnorm(x1, d, w, 1e-5, backend="torch")
    out = fused.add_rmsnorm(x2, d, w, 1e-5, backend="triton")
    assert torch.equal(x1, x2) and torch.equal(x1, (x.float() + d.float()).to(BF))
    assert rel(out, ref) < 1e-2
    s = (x.double() + d.double())
    exact = w.double() * s / torch.sqrt(s.pow(2).mean(-1, keepdim=True) + 1e-5)
    assert rel(out, exact) < 1e-2
    y = fused.add_rmsnorm(x2.clone(), None, w, 1e-5, backend="triton")  # no residual: norm only
    assert rel(y, fused.add_rmsnorm(x2.clone(), None, w, 1e-5, backend="torch")) < 1e-2


@pytest.mark.parametrize("qk_norm", [False, True])
def test_rope_kv_write_matches_reference(qk_norm):
    g = torch.Generator().manual_seed(1)
    H, HKV, HD, T, CAP = 4, 2, 32, 3, 40
    qkv = torch.randn(T, (H + 2 * HKV) * HD, generator=g).to(BF)
    pos = torch.tensor([17, 18, 30])
    slots = torch.tensor([5, 6, 9])
    inv_freq = 1.0 / (10000 ** (torch.arange(0, HD, 2).float() / HD))
    qn = (1 + 0.1 * torch.randn(HD, generator=g)).to(BF) if qk_norm else None
    kn = (1 + 0.1 * torch.randn(HD, generator=g)).to(BF) if qk_norm else None
    caches = [(torch.randn(HKV, CAP, HD, generator=g).to(BF),) * 1 for _ in range(2)]
    kc = [caches[0][0].clone(), caches[0][0].clone()]
    vc = [caches[1][0].clone(), caches[1][0].clone()]
    outs = [fused.rope_kv_write(qkv, pos, slots, inv_freq, kc[i], vc[i], H, HKV, qn, kn, 1e-6, backend=b)
            for i, b in enumerate(("torch", "triton"))]
    assert rel(outs[1], outs[0]) < 1e-2
    assert rel(kc[1], kc[0]) < 1e-2 and torch.equal(vc[1], vc[0])
    untouched = [s for s in range(CAP) if s not in slots.tolist()]
    assert torch.equal(kc[1][:, untouched], caches[0][0][:, untouched])
    # the rotation itself, in float64, for an unnormed key head
    if not qk_norm:
        k = qkv.view(T, -1, HD)[:, H].double()
        ang = pos.double()[:, None] * inv_freq.double()[None, :]
        c, s = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
        want = k * c + torch.cat([-k[:, HD // 2:], k[:, :HD // 2]], -1) * s
        assert rel(kc[1][0, slots], want) < 1e-2


@pytest.mark.parametrize("heads,kv_heads,length", [(8, 2, 150), (6, 3, 1), (4, 4, 64)])
def test_decode_attention_matches_float64(heads, kv_heads, length):
    g = torch.Generator().manual_seed(heads + length)
    HD, CAP = 32, 200
    q = torch.randn(heads, HD, generator=g).to(BF)
    kc = torch.randn(kv_heads, CAP, HD, generator=g).to(BF)
    vc = torch.randn(kv_heads, CAP, HD, generator=g).to(BF)
    kc[:, length:] = 1e4  # garbage past the valid length must not count
    n = torch.tensor([length])
    out = fused.decode_attention(q, kc, vc, n, backend="triton")
    ref = fused.decode_attention(q, kc, vc, n, backend="torch")
    grp = heads // kv_heads
    k = kc[:, :length].double().repeat_interleave(grp, 0)
    v = vc[:, :length].double().repeat_interleave(grp, 0)
    w = torch.softmax(torch.einsum("hd,hnd->hn", q.double(), k) / math.sqrt(HD), -1)
    exact = torch.einsum("hn,hnd->hd", w, v).reshape(-1)
    assert rel(out, exact) < 2e-2 and rel(ref, exact) < 1e-2


def test_silu_mul_matches_reference():
    g = torch.Generator().manual_seed(3)
    gu = torch.randn(2, 2 * 1500, generator=g).to(BF)
    out = fused.silu_mul(gu, backend="triton")
    ref = fused.silu_mul(gu, backend="torch")
    assert rel(out, ref) < 1e-2
    gate, up = gu.double().split(1500, -1)
    assert rel(out, gate * torch.sigmoid(gate) * up) < 1e-2
