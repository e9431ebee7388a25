"""One FP8 layer of SmolLM2's shapes on the GPU: the Triton kernels (weight-only below 64 tokens,
W8A8 from 64) and the torch reference against the float64 product. Separates a kernel error from
the model-level divergence of the W8A8 path (see docs/precision.md).

Usage: python bench/precision_fp8_layers.py   (CUDA)
"""
import torch, sys
sys.path.insert(0, ".")
from fpx_arena.kernels import quantize_weight, qlinear, reference_product, relative_error
torch.manual_seed(0)
for (N, K) in ((576, 576), (1536, 576), (576, 1536)):
    w = torch.randn(N, K, device="cuda") * 0.02
    qw = quantize_weight(w, "fp8")
    for M in (16, 128):
        x = torch.randn(M, K, device="cuda").to(torch.bfloat16)
        r = reference_product(x, qw, act_fp8=M >= 64)
        a = qlinear(x, qw, backend="triton"); b = qlinear(x, qw, backend="torch")
        a2 = qlinear(x, qw, backend="triton", act_quant="none")
        r2 = reference_product(x, qw, act_fp8=False)
        print(N, K, M, "triton", f"{relative_error(a, r):.2e}", "torch", f"{relative_error(b, r):.2e}",
              "| weight-only triton", f"{relative_error(a2, r2):.2e}")
