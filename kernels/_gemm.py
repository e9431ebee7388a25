"""Triton FP8 x FP8 matmul for prompt appends with the tokens' FP8 quantization fused in: one
launch, no separate quantization kernel.

Loaded by ``ops.py`` like ``_triton.py`` (compiled for CUDA, or run by the interpreter).

A persistent grid (at most one program per SM, all resident at once) runs two phases:

1. each program quantizes the tokens ``row = pid, pid + P, ...`` per token to e4m3 (the exact
   fp32 operations of ``formats.quantize_fp8_tokens``: amax * fp32(1/448), then x * (1/scale)
   rounded to nearest even) into a workspace, then arrives at a grid barrier (an atomic counter,
   released / acquired at GPU scope; the last program out resets it for the next launch);
2. the programs walk the output tiles (grouped along M for L2 reuse) and multiply the e4m3
   tokens with the e4m3 weights on the FP8 tensor cores (wgmma), both scales and the bias in
   the epilogue.

Why a barrier and not a prologue per tile: every tile needs whole token rows (per-token amax),
so quantizing in each tile's prologue would read the bf16 tokens N/BN times (at M = 256 on the
Llama-3-8B gate_up shape that is ~4 times the bytes of the weights); the barrier costs about
one kernel launch less than a second kernel would, and the tokens are read once.
The interpreter runs programs one after another, so it is launched with one program (which
then quantizes every token and walks every tile: the same code, the barrier passed at once).
"""
import triton
import triton.language as tl

from . import ops

# _triton.py's helpers in this module's flavour (a jit function runs compiled or interpreted as
# the module that defined it was loaded)
_base = ops.kernel_module(__name__.endswith("_interp"), "_triton")
maximum, e4m3_bits, to_output = _base.maximum, _base.e4m3_bits, _base.to_output


@triton.jit
def w8a8_fused_kernel(
    X, XQ, XS, W, WS, Y, BIAS, BAR, M, N, K, stride_xm, stride_ym,
    BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, GROUP_M: tl.constexpr,
    QB: tl.constexpr,                 # tokens' K chunk in the quantization phase
    HAS_BIAS: tl.constexpr, USE_ASM: tl.constexpr,
    PROMOTE_K: tl.constexpr = None,   # see ops.W8A8_PROMOTE_K
):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)

    # ---- phase 1: per-token e4m3 quantization of rows pid, pid + nprog, ...
    offs = tl.arange(0, QB)
    for row in range(pid, M, nprog):
        amax = tl.full([QB], 0.0, tl.float32)
        for k in range(0, K, QB):
            x = tl.load(X + row * stride_xm + k + offs, mask=k + offs < K, other=0.0)
            amax = tl.maximum(amax, tl.abs(x.to(tl.float32)))
        a = tl.reduce(amax, 0, maximum)
        scale = tl.where(a > 0, a * (1.0 / 448.0), 1.0)
        inv = tl.math.div_rn(1.0, scale)
        for k in range(0, K, QB):
            x = tl.load(X + row * stride_xm + k + offs, mask=k + offs < K, other=0.0)
            q = tl.clamp(x.to(tl.float32) * inv, -448.0, 448.0)
            tl.store(XQ + row * K + k + offs, e4m3_bits(q, USE_ASM).to(tl.float8e4nv, bitcast=True),
                     mask=k + offs < K)
        tl.store(XS + row, scale)

    # ---- grid barrier: every program's tokens are written before any tile reads them
    tl.debug_barrier()
    tl.atomic_add(BAR, 1, sem="release", scope="gpu")
    seen = tl.atomic_add(BAR, 0, sem="acquire", scope="gpu")
    spins = 0
    while (seen < nprog) & (spins < 50_000_000):
        seen = tl.atomic_add(BAR, 0, sem="acquire", scope="gpu")
        spins += 1
    if seen < nprog:
        # the programs were not all resident (another kernel held SMs for seconds): flag it
        # rather than hang; ops.w8a8_barrier_failures() reads the flag
        tl.atomic_xchg(BAR + 2, 1, sem="relaxed", scope="gpu")

    # ---- phase 2: the output tiles
    grid_m = (M + BM - 1) // BM
    grid_n = (N + BN - 1) // BN
    per_group = GROUP_M * grid_n
    offs_k = tl.arange(0, BK)
    for tile in range(pid, grid_m * grid_n, nprog):
        group = tile // per_group
        first_m = group * GROUP_M
        size_m = min(grid_m - first_m, GROUP_M)
        pid_m = first_m + (tile % per_group) % size_m
        pid_n = (tile % per_group) // size_m
        offs_m = pid_m * BM + tl.arange(0, BM)
        offs_n = pid_n * BN + tl.arange(0, BN)
        m_mask = offs_m < M
        n_mask = offs_n < N
        a_ptr = XQ + offs_m[:, None] * K + offs_k[None, :]
        b_ptr = W + offs_n[:, None] * K + offs_k[None, :]
        acc = tl.full([BM, BN], 0.0, tl.float32)
        for k in range(0, (K + BK - 1) // BK):
            k_ok = offs_k < K - k * BK
            a = tl.load(a_ptr, mask=m_mask[:, None] & k_ok[None, :], other=0.0, cache_modifier=".cg")
            b = tl.load(b_ptr, mask=n_mask[:, None] & k_ok[None, :], other=0.0)
            acc = tl.dot(a, tl.trans(b), acc, max_num_imprecise_acc=PROMOTE_K)
            a_ptr += BK
            b_ptr += BK
        xs = tl.load(XS + offs_m, mask=m_mask, other=0.0, cache_modifier=".cg")
        ws = tl.load(WS + offs_n, mask=n_mask, other=0.0)
        acc = acc * xs[:, None] * ws[None, :]
        if HAS_BIAS:
            acc = acc + tl.load(BIAS + offs_n, mask=n_mask, other=0.0).to(tl.float32)[None, :]
        ptrs = Y + offs_m[:, None] * stride_ym + offs_n[None, :]
        tl.store(ptrs, to_output(acc, Y, not USE_ASM), mask=m_mask[:, None] & n_mask[None, :])

    # ---- the last program out resets the barrier for the next launch
    done = tl.atomic_add(BAR + 1, 1, sem="acq_rel", scope="gpu")
    if done == nprog - 1:
        tl.atomic_xchg(BAR, 0, sem="relaxed", scope="gpu")
        tl.atomic_xchg(BAR + 1, 0, sem="relaxed", scope="gpu")
