"""The FP8 x FP8 prompt-append matmul with the tokens' quantization fused in (kernels/_gemm.py):
every tile the tuner may pick, fused and as two launches, against the float64 product of the
e4m3-rounded tokens and the dequantized weights; the grid barrier's counters are reset for the
next launch. Interpreter on CPU (one persistent program), compiled on CUDA (a program per SM)."""
import os

import pytest
import torch

from fpx_arena.kernels import ops
from fpx_arena.kernels import qlinear, quantize_weight, reference_product, relative_error, triton_available

CUDA = torch.cuda.is_available()
FULL = CUDA and os.environ.get("FPX_FULL_SHAPES") == "1"
DEVICE = "cuda" if CUDA else "cpu"
pytestmark = pytest.mark.skipif(not triton_available(), reason="needs triton")
CASES = [(64, 4096, 4096), (300, 6144, 4096 + 128)] if FULL else [(64, 40, 72), (70, 33, 200)]


@pytest.mark.parametrize("m,n,k", CASES)
def test_every_w8a8_config_matches_float64(m, n, k):
    g = torch.Generator().manual_seed(m + k)
    qw = quantize_weight((torch.randn(n, k, generator=g) * 0.05).to(DEVICE), "fp8")
    bias = torch.randn(n, generator=g).to(DEVICE, torch.bfloat16)
    for i, cfg in enumerate(ops.w8a8_candidates(m, interpret=not CUDA, fused=True)):
        # fresh tokens for every config, over many binades per token
        x = torch.randn(m, k, generator=g) * torch.exp(torch.randn(m, 1, generator=g) * 2)
        x = x.to(DEVICE, torch.bfloat16)
        out = torch.full((m, n), float("nan"), dtype=torch.bfloat16, device=DEVICE)
        y = qlinear(x, qw, bias, backend="triton", config=cfg, out=out)
        ref = reference_product(x, qw, bias, act_fp8=True)
        # Hopper's FP8 accumulation (ops.W8A8_PROMOTE_K) on the GPU; bf16 output rounding only
        # in the interpreter
        assert relative_error(y, ref) <= (1.5e-2 if CUDA else 4e-3), cfg
        y2 = qlinear(x, qw, bias, backend="triton", config=cfg)
        assert torch.equal(y, y2), cfg
        if cfg.fused:
            assert ops._work[(x.device, "bar")][:2].tolist() == [0, 0]
            assert ops.w8a8_barrier_failures(x.device) == 0


def test_fused_candidates_are_opt_in():
    assert any(c.fused for c in ops.w8a8_candidates(256, fused=True))
    assert not any(c.fused for c in ops.w8a8_candidates(256, fused=False))
    assert all(c.fused == ops.W8A8_FUSED for c in ops.w8a8_candidates(256)[:1])


def test_default_dispatch_quantizes_tokens_for_fp8_prefill_only():
    qw = quantize_weight(torch.randn(40, 72, device=DEVICE), "fp8")
    x = torch.randn(64, 72, device=DEVICE).to(torch.bfloat16)
    qlinear(x, qw, backend="triton")
    assert ops.last_choice["kind"].startswith("w8a8")
    qlinear(x[:3], qw, backend="triton")
    assert ops.last_choice["kind"] == "dec"
