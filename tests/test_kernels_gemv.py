"""The decode GEMV (kernels/_gemv.py): every tile configuration the tuner may pick, FP4 and FP8
weights, bf16 and fp16 tokens, against the float64 product of the dequantized weights on fresh
random inputs. Runs in the Triton interpreter on CPU (small shapes) and compiled on CUDA (Llama
shapes with FPX_FULL_SHAPES=1)."""
import os

import pytest
import torch

from fpx_arena.kernels import ops
from fpx_arena.kernels import (
    GemvConfig, QuantizationError, qlinear, quantize_weight, reference_product, relative_error,
    triton_available,
)

CUDA = torch.cuda.is_available()
FULL = CUDA and os.environ.get("FPX_FULL_SHAPES") == "1"
DEVICE = "cuda" if CUDA else "cpu"
pytestmark = pytest.mark.skipif(not triton_available(), reason="needs triton")
SHAPES = [(4096, 4096), (1024 + 64, 14336)] if FULL else [(40, 96), (64, 512)]


def _case(fmt, n, k, m, seed, dtype=torch.bfloat16):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=g) * (1 + torch.rand(n, 1, generator=g))
    # tokens over many binades, as activations are: the power-of-two token scale must hold them
    x = torch.randn(m, k, generator=g) * torch.exp(torch.randn(m, 1, generator=g) * 3)
    x[:, :7] *= 50.0
    return quantize_weight(w.to(DEVICE), fmt), x.to(DEVICE, dtype)


def _configs(fmt, m, n, k):
    if CUDA:
        return ops.gemv_candidates(fmt, m, n, k, torch.cuda.get_device_properties(0).multi_processor_count)
    # the interpreter's default plus a wider tile with K split three ways, unevenly
    return ops.gemv_candidates(fmt, m, n, k, interpret=True) + [GemvConfig(64, 32, 3, 4, 1)]


@pytest.mark.parametrize("fmt", ["nvfp4", "mxfp4", "fp8"])
@pytest.mark.parametrize("shape", SHAPES)
def test_every_gemv_config_matches_float64(fmt, shape):
    n, k = shape
    for i, cfg in enumerate(_configs(fmt, 2, n, k)):
        m = 1 + i % 2
        qw, x = _case(fmt, n, k, m, seed=7 * i + n)
        bias = torch.randn(n, generator=torch.Generator().manual_seed(i)).to(DEVICE, torch.bfloat16)
        out = torch.full((m, n), float("nan"), dtype=torch.bfloat16, device=DEVICE)  # poisoned
        y = qlinear(x, qw, bias, backend="triton", config=cfg, out=out)
        assert torch.isfinite(y).all(), cfg
        err = relative_error(y, reference_product(x, qw, bias))
        # bf16 output rounding (~1.1e-3) plus, on the GPU, the fp16 partial sums (~1e-3)
        assert err <= (4e-3 if CUDA else 2.5e-3), (cfg, err)
        # a second call reuses the split-K counters: they must have been reset
        y2 = qlinear(x, qw, bias, backend="triton", config=cfg)
        assert torch.equal(y2, y), cfg


def test_gemv_fp16_tokens_and_the_dispatch():
    n, k = SHAPES[0]
    qw, x = _case("nvfp4", n, k, 1, seed=3, dtype=torch.float16)
    y = qlinear(x, qw, backend="triton")
    assert ops.last_choice["kind"] == "dec"
    assert relative_error(y, reference_product(x, qw)) <= 4e-3
    # fp32 tokens take the tensor-core kernel for FP4, the GEMV for FP8
    assert not ops.gemv_eligible(qw, x.float())
    assert ops.gemv_eligible(quantize_weight(torch.randn(8, 64, device=DEVICE), "fp8"), x[:, :64].float())
    assert not ops.gemv_eligible(qw, torch.zeros(ops.GEMV_MAX_M + 1, k, device=DEVICE, dtype=torch.bfloat16))


def test_gemv_zero_tokens_and_zero_weights():
    n, k = SHAPES[0]
    qw, x = _case("mxfp4", n, k, 1, seed=4)
    assert torch.equal(qlinear(torch.zeros_like(x), qw, backend="triton"),
                       torch.zeros(1, n, device=DEVICE, dtype=torch.bfloat16))
    z = quantize_weight(torch.zeros(n, k, device=DEVICE), "nvfp4")
    assert torch.equal(qlinear(x, z, backend="triton"), torch.zeros(1, n, device=DEVICE, dtype=torch.bfloat16))


def test_gemv_rejects_nothing_silently():
    qw, x = _case("nvfp4", 40, 96, 1, seed=5)
    with pytest.raises(QuantizationError, match="expects K = 96"):
        qlinear(x[:, :64], qw, backend="triton")


def test_an_outgrown_workspace_stays_alive_for_the_graphs_captured_with_it():
    """A split-K launch captured in a CUDA graph keeps writing its partials where the workspace
    was at capture: growing it for a larger launch must not free the old one."""
    small = ops._workspace("cpu", "test-grow", 10, torch.float32)
    big = ops._workspace("cpu", "test-grow", 5000, torch.float32)
    assert big is not small and big.numel() >= 5000 and any(t is small for t in ops._retired)
    assert ops._workspace("cpu", "test-grow", 100, torch.float32) is big
