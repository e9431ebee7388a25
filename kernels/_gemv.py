"""Triton GEMV for decode (a few tokens): FP4 (NVFP4/MXFP4, fpx-planes-v1) and FP8 weights on the
CUDA cores, read at the memory's pace.

Loaded by ``ops.py`` like ``_triton.py`` (once compiled for CUDA, once for the interpreter); the
``USE_ASM`` switch picks inline PTX on the GPU and the same arithmetic in Triton ops on the CPU.

Why CUDA cores and not the tensor cores at M = 1: the work per weight, not the bytes, bounded the
tensor-core kernel (an H200 reads FP4 weights at ~8e12 per second; the SMs issue ~3.7 thread
instructions per weight in that time). Here each thread loads 16 bytes of one row (four 32-bit
words, 32 codes) per step and spends ~2 instructions per weight:

- a 32-bit word of fpx-planes-v1 is two int16 slots (j = 2q, 2q + 1 of a 64-group); its plane p
  gives two fp16 in 1-3 integer ops (the bit tricks of ``_triton.fp4_plane``), the codes of K
  ``64 g + 16 (q % 4) + 2 (q // 4) + 4 p + {0, 1}``: an adjacent pair, so the matching tokens are
  one fp16x2 register;
- the four planes of a word are multiplied and summed with ``HFMA2`` (8 products), the two
  halves added and converted to fp32 (the word's 8 codes lie in one 16-block: its scale, NVFP4
  or MXFP4, multiplies the fp32 partial once: ``FFMA``);
- the FP4 value comes out times 2**-14, so the tokens are fed as fp16 times a power of two c
  chosen per program from the largest |x| of its K range (prologue): |x c| in [2**14, 2**15),
  products at most 12, partial sums far from fp16's limits, and c is exact. The result is
  multiplied by ``out_mult / c`` at the end.

FP8 weights (4 codes per 32-bit word) use the native ``e4m3x2 -> f16x2`` conversion and fp32
``FFMA`` (exact products; there are ~7 instructions of time per weight at 1 byte per weight).
K is split over programs when the grid would leave SMs idle; the last program of a tile sums the
partials (one launch, the counter reset by that program).
"""
import triton
import triton.language as tl

from . import ops

# _triton.py's helpers in this module's flavour (a jit function runs compiled or interpreted as
# the module that defined it was loaded)
_base = ops.kernel_module(__name__.endswith("_interp"), "_triton")
maximum, fp4_plane, to_output = _base.maximum, _base.fp4_plane, _base.to_output


@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def _pair_f16(v, c, XK: tl.constexpr, USE_ASM: tl.constexpr):
    """Two adjacent tokens loaded as one 32-bit word (bf16x2 for XK 0, fp16x2 for XK 1), times c,
    -> one int32 holding two fp16 (x[k] low, x[k + 1] high)."""
    if USE_ASM:
        if XK == 0:
            r = tl.inline_asm_elementwise(
                "{ .reg .b32 lo, hi; shl.b32 lo, $1, 16; and.b32 hi, $1, 0xFFFF0000;"
                " mul.f32 lo, lo, $2; mul.f32 hi, hi, $2; cvt.rn.f16x2.f32 $0, hi, lo; }",
                "=r,r,r", [v, c], dtype=tl.int32, is_pure=True, pack=1)
        else:
            r = tl.inline_asm_elementwise(
                "{ .reg .b16 a, b; .reg .f32 lo, hi; mov.b32 {a, b}, $1;"
                " cvt.f32.f16 lo, a; cvt.f32.f16 hi, b;"
                " mul.f32 lo, lo, $2; mul.f32 hi, hi, $2; cvt.rn.f16x2.f32 $0, hi, lo; }",
                "=r,r,r", [v, c], dtype=tl.int32, is_pure=True, pack=1)
    else:
        if XK == 0:
            a = (v << 16).to(tl.float32, bitcast=True)
            b = (v & -65536).to(tl.float32, bitcast=True)
        else:
            a = (v & 0xFFFF).to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)
            b = ((v >> 16) & 0xFFFF).to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)
        lo = (a * c).to(tl.float16).to(tl.int16, bitcast=True).to(tl.int32) & 0xFFFF
        hi = (b * c).to(tl.float16).to(tl.int16, bitcast=True).to(tl.int32) & 0xFFFF
        r = lo | (hi << 16)
    return r


@triton.jit
def _plane_f32(r, P: tl.constexpr):
    """Interpreter: one 16-bit slot (int32 0..65535) -> fp32 value of plane P times 2**-14."""
    return fp4_plane(r, P, False).to(tl.float32)


@triton.jit
def _half_f32(v, HI: tl.constexpr):
    """Interpreter: one fp16 of an fp16x2 int32 -> fp32."""
    if HI:
        h = (v >> 16) & 0xFFFF
    else:
        h = v & 0xFFFF
    return h.to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)


@triton.jit
def _fp4_words_dot(wa, wb, x0, x1, x2, x3, x4, x5, x6, x7, USE_ASM: tl.constexpr):
    """Two 32-bit words of fpx-planes-v1, slots (2q, 2q + 1) and (2q + 8, 2q + 9) of a group (16
    codes of one 16-block), dotted with their tokens: x_{2p} pairs with plane p of wa, x_{2p+1}
    with plane p of wb (fp16x2 each). fp32 sum of the 16 products, codes as e2m1 times 2**-14."""
    if USE_ASM:
        s = tl.inline_asm_elementwise(
            "{ .reg .b32 a0, a1, a2, a3, b0, b1, b2, b3, t, acc; .reg .b16 lo, hi, sum;"
            " and.b32 a0, $1, 0x8E008E00; and.b32 b0, $2, 0x8E008E00;"
            " shl.b32 t, $1, 3; and.b32 a1, t, 0x8E008E00;"
            " shl.b32 t, $2, 3; and.b32 b1, t, 0x8E008E00;"
            " and.b32 t, $1, 0x40384038; mul.lo.u32 t, t, 66; and.b32 a2, t, 0x8E008E00;"
            " and.b32 t, $2, 0x40384038; mul.lo.u32 t, t, 66; and.b32 b2, t, 0x8E008E00;"
            " and.b32 t, $1, 0x20072007; mul.lo.u32 t, t, 516; and.b32 a3, t, 0x8E008E00;"
            " and.b32 t, $2, 0x20072007; mul.lo.u32 t, t, 516; and.b32 b3, t, 0x8E008E00;"
            " mul.rn.f16x2 acc, a0, $3; fma.rn.f16x2 acc, b0, $4, acc;"
            " fma.rn.f16x2 acc, a1, $5, acc; fma.rn.f16x2 acc, b1, $6, acc;"
            " fma.rn.f16x2 acc, a2, $7, acc; fma.rn.f16x2 acc, b2, $8, acc;"
            " fma.rn.f16x2 acc, a3, $9, acc; fma.rn.f16x2 acc, b3, $10, acc;"
            " mov.b32 {lo, hi}, acc; add.rn.f16 sum, lo, hi; cvt.f32.f16 $0, sum; }",
            "=r,r,r,r,r,r,r,r,r,r,r", [wa, wb, x0, x1, x2, x3, x4, x5, x6, x7],
            dtype=tl.float32, is_pure=True, pack=1)
    else:
        s = (_word_plane_dot(wa, x0, 0) + _word_plane_dot(wb, x1, 0)
             + _word_plane_dot(wa, x2, 1) + _word_plane_dot(wb, x3, 1)
             + _word_plane_dot(wa, x4, 2) + _word_plane_dot(wb, x5, 2)
             + _word_plane_dot(wa, x6, 3) + _word_plane_dot(wb, x7, 3))
    return s


@triton.jit
def _word_plane_dot(w, xp, P: tl.constexpr):
    """Interpreter: plane P of both halves of a word times the two fp16 of xp, in fp32."""
    lo = w & 0xFFFF
    hi = (w >> 16) & 0xFFFF
    return _plane_f32(lo, P) * _half_f32(xp, False) + _plane_f32(hi, P) * _half_f32(xp, True)


@triton.jit
def _fp8_word_dot(w, x0, x1, x2, x3, USE_ASM: tl.constexpr):
    """One 32-bit word of e4m3 codes (4 consecutive K, lowest byte first) dotted with fp32 tokens."""
    if USE_ASM:
        s = tl.inline_asm_elementwise(
            "{ .reg .b16 lo, hi, a, b, c, d; .reg .b32 h01, h23; .reg .f32 f0, f1, f2, f3;"
            " mov.b32 {lo, hi}, $1;"
            " cvt.rn.f16x2.e4m3x2 h01, lo; cvt.rn.f16x2.e4m3x2 h23, hi;"
            " mov.b32 {a, b}, h01; mov.b32 {c, d}, h23;"
            " cvt.f32.f16 f0, a; cvt.f32.f16 f1, b; cvt.f32.f16 f2, c; cvt.f32.f16 f3, d;"
            " mul.f32 $0, f0, $2; fma.rn.f32 $0, f1, $3, $0;"
            " fma.rn.f32 $0, f2, $4, $0; fma.rn.f32 $0, f3, $5, $0; }",
            "=r,r,r,r,r,r", [w, x0, x1, x2, x3], dtype=tl.float32, is_pure=True, pack=1)
    else:
        c0 = (w & 0xFF).to(tl.uint8).to(tl.float8e4nv, bitcast=True).to(tl.float32)
        c1 = ((w >> 8) & 0xFF).to(tl.uint8).to(tl.float8e4nv, bitcast=True).to(tl.float32)
        c2 = ((w >> 16) & 0xFF).to(tl.uint8).to(tl.float8e4nv, bitcast=True).to(tl.float32)
        c3 = ((w >> 24) & 0xFF).to(tl.uint8).to(tl.float8e4nv, bitcast=True).to(tl.float32)
        s = c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3
    return s


@triton.jit
def _bc(x, BN: tl.constexpr):
    return tl.broadcast_to(x[None, :], [BN, x.shape[0]])


@triton.jit
def _kappa_f32(u):
    """Kernel scale byte u (fp16 bits u << 7, a normal number) -> its fp32 value, in one integer
    multiply-add. u = 0 gives 2**-15 instead of 0: such blocks hold only zero codes (NVFP4) or
    are MXFP4 blocks flushed for being 2**29 below the largest, whose true factor is below 2**-14."""
    return ((u.to(tl.int32) << 20) + 0x38000000).to(tl.float32, bitcast=True)


@triton.jit
def _pow2_scale(amax):
    """A power of two c with amax * c in [2**14, 2**15) (1 when amax is 0)."""
    e = ((amax.to(tl.int32, bitcast=True) >> 23) & 0xFF) - 127
    c = ((127 + 14 - e) << 23).to(tl.float32, bitcast=True)
    return tl.where(amax > 0, c, 1.0)


@triton.jit
def gemv_kernel(
    W, KS, WSCALE, X, XP, Y, BIAS, PART, LOCK,
    M, N, K, stride_xm, stride_ym, out_mult, SPLIT_K,
    FMT: tl.constexpr,        # kernel id: 0 fp8 (e4m3 rows), 1 nvfp4, 2 mxfp4 (fpx-planes-v1)
    BN: tl.constexpr,         # weight rows per program
    BW: tl.constexpr,         # 32-bit words of a row per step (4 per thread along K)
    SPLIT: tl.constexpr,      # SPLIT_K > 1
    HAS_BIAS: tl.constexpr,
    USE_ASM: tl.constexpr,
    EVEN: tl.constexpr,       # N % BN == 0 and the words split evenly into steps: no masks
    XK: tl.constexpr,         # FP4: tokens are bf16 (0) or fp16 (1), read in pairs through XP
):
    """Y[m, :] = X[m, :] @ W^T for one token m per program (grid: N tiles, M, K splits)."""
    pid_n = tl.program_id(0)
    row = tl.program_id(1)
    pid_k = tl.program_id(2)
    offs_n = pid_n * BN + tl.arange(0, BN)
    n_mask = offs_n < N
    if FMT == 0:
        n_w = K // 4                                   # words per row (K % 4 == 0)
    else:
        n_w = ((K + 63) // 64) * 8
    steps = (n_w + BW * SPLIT_K - 1) // (BW * SPLIT_K)
    w_first = pid_k * steps * BW
    t = tl.arange(0, BW)
    xrow = X + row * stride_xm

    if FMT == 0:
        acc = tl.full([BN, BW], 0.0, tl.float32)
        for s in range(steps):
            wi = w_first + s * BW + t
            if EVEN:
                w = tl.load(W + offs_n[:, None] * n_w + wi[None, :])
            else:
                w = tl.load(W + offs_n[:, None] * n_w + wi[None, :],
                            mask=n_mask[:, None] & (wi < n_w)[None, :], other=0)
            km = wi < n_w
            x0 = tl.load(xrow + 4 * wi, mask=km, other=0.0).to(tl.float32)
            x1 = tl.load(xrow + 4 * wi + 1, mask=km, other=0.0).to(tl.float32)
            x2 = tl.load(xrow + 4 * wi + 2, mask=km, other=0.0).to(tl.float32)
            x3 = tl.load(xrow + 4 * wi + 3, mask=km, other=0.0).to(tl.float32)
            acc += _fp8_word_dot(w, tl.broadcast_to(x0[None, :], [BN, BW]),
                                 tl.broadcast_to(x1[None, :], [BN, BW]),
                                 tl.broadcast_to(x2[None, :], [BN, BW]),
                                 tl.broadcast_to(x3[None, :], [BN, BW]), USE_ASM)
        out = tl.reduce(acc, 1, _add) * tl.load(WSCALE + offs_n, mask=n_mask, other=0.0)
    else:
        # prologue: the power-of-two token scale of this program's K range
        k_lo = w_first * 8
        k_hi = tl.minimum(k_lo + steps * BW * 8, K)
        kb = tl.arange(0, 8 * BW)
        amax_v = tl.full([8 * BW], 0.0, tl.float32)
        for s in range(steps):
            kk = k_lo + s * 8 * BW + kb
            xv = tl.load(xrow + kk, mask=kk < k_hi, other=0.0).to(tl.float32)
            amax_v = tl.maximum(amax_v, tl.abs(xv))
        c = _pow2_scale(tl.reduce(amax_v, 0, maximum))
        n_g = n_w // 8
        if FMT == 1:
            n_s = n_g * 4                              # 16-blocks per row (padded K)
        else:
            n_s = n_g * 2                              # 32-blocks per row
        # A step covers BW / 8 groups. Column j = 4 g + i of the tiles below is the word pair
        # (q = i, q = i + 4) of group g: the 16 codes of 16-block i of the group, whose tokens
        # are the 8 consecutive pairs 8 j + jj of the step (jj even: word a, plane jj / 2; jj
        # odd: word b). Row-major 2-D tiles with four contiguous words per thread keep the
        # threads along K on every Triton version, so each thread's token pairs serve its rows.
        j = tl.arange(0, BW // 2)
        jw = (j // 4) * 8 + j % 4                      # word a of column j, within the step
        xp = XP + row * (stride_xm // 2)
        rows = offs_n[:, None]
        acc2 = tl.full([BN, BW // 2], 0.0, tl.float32)
        for s in range(steps):
            w0 = w_first + s * BW                      # a multiple of 8: a group boundary
            wi = w0 + jw                               # word a's index in the row
            if FMT == 1:
                bidx = w0 // 2 + j                     # 16-block (w0 / 8) * 4 + j
            else:
                bidx = w0 // 4 + j // 2
            pidx = (w_first + s * BW) * 4 + 8 * j      # first token pair (pairs = 4 per word)
            if EVEN:
                wa = tl.load(W + rows * n_w + wi[None, :])
                wb = tl.load(W + rows * n_w + wi[None, :] + 4)
                u = tl.load(KS + rows * n_s + bidx[None, :])
                x0 = tl.load(xp + pidx)
                x1 = tl.load(xp + pidx + 1)
                x2 = tl.load(xp + pidx + 2)
                x3 = tl.load(xp + pidx + 3)
                x4 = tl.load(xp + pidx + 4)
                x5 = tl.load(xp + pidx + 5)
                x6 = tl.load(xp + pidx + 6)
                x7 = tl.load(xp + pidx + 7)
            else:
                wm = n_mask[:, None] & (wi < n_w)[None, :]
                wa = tl.load(W + rows * n_w + wi[None, :], mask=wm, other=0)
                wb = tl.load(W + rows * n_w + wi[None, :] + 4, mask=wm, other=0)
                u = tl.load(KS + rows * n_s + bidx[None, :], mask=wm, other=0)
                kp = K // 2
                x0 = tl.load(xp + pidx, mask=pidx < kp, other=0)
                x1 = tl.load(xp + pidx + 1, mask=pidx + 1 < kp, other=0)
                x2 = tl.load(xp + pidx + 2, mask=pidx + 2 < kp, other=0)
                x3 = tl.load(xp + pidx + 3, mask=pidx + 3 < kp, other=0)
                x4 = tl.load(xp + pidx + 4, mask=pidx + 4 < kp, other=0)
                x5 = tl.load(xp + pidx + 5, mask=pidx + 5 < kp, other=0)
                x6 = tl.load(xp + pidx + 6, mask=pidx + 6 < kp, other=0)
                x7 = tl.load(xp + pidx + 7, mask=pidx + 7 < kp, other=0)
            part = _fp4_words_dot(
                wa, wb,
                _bc(_pair_f16(x0, c, XK, USE_ASM), BN), _bc(_pair_f16(x1, c, XK, USE_ASM), BN),
                _bc(_pair_f16(x2, c, XK, USE_ASM), BN), _bc(_pair_f16(x3, c, XK, USE_ASM), BN),
                _bc(_pair_f16(x4, c, XK, USE_ASM), BN), _bc(_pair_f16(x5, c, XK, USE_ASM), BN),
                _bc(_pair_f16(x6, c, XK, USE_ASM), BN), _bc(_pair_f16(x7, c, XK, USE_ASM), BN),
                USE_ASM)
            acc2 += part * _kappa_f32(u)
        out = tl.reduce(acc2, 1, _add) * (out_mult / c)

    if not SPLIT:
        _store_row(out, offs_n, n_mask, row, Y, BIAS, stride_ym, HAS_BIAS, not USE_ASM)
    else:
        part_ptr = PART + row * N + offs_n
        tl.store(part_ptr + pid_k * M * N, out, mask=n_mask)
        tl.debug_barrier()
        lock = LOCK + row * tl.num_programs(0) + pid_n
        arrived = tl.atomic_add(lock, 1, sem="acq_rel", scope="gpu")
        if arrived == SPLIT_K - 1:
            tot = tl.full([BN], 0.0, tl.float32)
            for i in range(SPLIT_K):
                tot += tl.load(part_ptr + i * M * N, mask=n_mask, other=0.0, cache_modifier=".cg")
            _store_row(tot, offs_n, n_mask, row, Y, BIAS, stride_ym, HAS_BIAS, not USE_ASM)
            tl.atomic_xchg(lock, 0, sem="relaxed", scope="gpu")


@triton.jit
def _store_row(out, offs_n, n_mask, row, Y, BIAS, stride_ym, HAS_BIAS: tl.constexpr,
               INTERPRET: tl.constexpr):
    if HAS_BIAS:
        out = out + tl.load(BIAS + offs_n, mask=n_mask, other=0.0).to(tl.float32)
    tl.store(Y + row * stride_ym + offs_n, to_output(out, Y, INTERPRET), mask=n_mask)
