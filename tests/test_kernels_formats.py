"""Formats and quantizers: exact encoders, packing, quantized-weight round trips and errors."""
import numpy as np
import pytest
import torch

from fpx_arena.errors import UserError
from fpx_arena.kernels import (
    QuantizationError, QuantizedWeight, decode_e2m1, decode_e4m3, encode_e2m1,
    encode_e2m1_reference, encode_e4m3, encode_e4m3_reference, pack_fp4_planes,
    quantize_fp8_tokens, quantize_mxfp4, quantize_nvfp4, quantize_weight, unpack_fp4_planes,
)
from fpx_arena.kernels import (
    FORMATS, REGISTRY, format_by_id, get_format, is_quantized, quantized_formats,
)
from fpx_arena.kernels.formats import E4M3_VALUES
from fpx_arena.llm import precision


def _wide_values(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=g) * torch.exp(torch.randn(n, generator=g) * 4)


def test_e2m1_encoder_matches_reference_including_ties_and_saturation():
    vals = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0, 6.5, 100.0, 0.0, 0.1, 0.24,
                         0.26, 1.0, 4.0, 3e-8])
    x = torch.cat([vals, -vals, _wide_values(20000, 1)])
    assert torch.equal(encode_e2m1(x), encode_e2m1_reference(x))
    # ties go to the even code: 0.25 -> 0, 0.75 -> 1.0, 1.25 -> 1.0, 2.5 -> 2, 5 -> 4
    got = decode_e2m1(encode_e2m1(torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 9.0])))
    assert got.tolist() == [0.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 6.0]
    assert encode_e2m1(torch.tensor([-0.1])).item() == 8          # sign of zero kept


def test_e4m3_encoder_matches_reference_including_subnormals_ties_saturation():
    finite = E4M3_VALUES[torch.isfinite(E4M3_VALUES)].float()
    pos = finite[finite > 0].sort().values
    mids = (pos[1:] + pos[:-1]) / 2                              # every tie between neighbours
    x = torch.cat([finite, mids, -mids, torch.tensor([2.0 ** -10, 3 * 2.0 ** -11, 2.0 ** -12,
                                                      449.0, 464.0, 480.0, 1e6, -1e6]),
                   _wide_values(20000, 2)])
    assert torch.equal(encode_e4m3(x), encode_e4m3_reference(x))
    assert decode_e4m3(encode_e4m3(torch.tensor([1e6, -500.0]))).tolist() == [448.0, -448.0]
    assert decode_e4m3(encode_e4m3(torch.tensor([2.0 ** -9]))).item() == 2.0 ** -9   # subnormal
    # every finite code survives decode -> encode
    codes = torch.arange(256, dtype=torch.uint8)
    ok = torch.isfinite(decode_e4m3(codes))
    assert torch.equal(encode_e4m3(decode_e4m3(codes)[ok]), codes[ok])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_encoders_and_quantizers_reject_nan_inf(bad):
    x = torch.randn(4, 32)
    x[1, 3] = bad
    for fn in (encode_e4m3, encode_e2m1, quantize_fp8_tokens):
        with pytest.raises(QuantizationError, match="NaN or Inf"):
            fn(x)
    for fmt in ("fp8", "nvfp4", "mxfp4"):
        with pytest.raises(UserError, match="NaN or Inf"):
            quantize_weight(x, fmt)


def test_quantize_weight_errors_are_clear():
    with pytest.raises(ValueError, match="unknown weight format 'int4'"):
        quantize_weight(torch.randn(4, 32), "int4")
    with pytest.raises(QuantizationError, match="divisible by its block of 16"):
        quantize_weight(torch.randn(4, 40), "nvfp4")
    with pytest.raises(QuantizationError, match="divisible by its block of 32"):
        quantize_weight(torch.randn(4, 48), "mxfp4")
    with pytest.raises(QuantizationError, match="2-D"):
        quantize_weight(torch.randn(32), "fp8")
    quantize_weight(torch.randn(4, 40), "fp8")                    # fp8 takes any K


def _nvfp4_loop_reference(w):
    """NVFP4 block by block with the brute-force encoders (float32 arithmetic as specified)."""
    n, k = w.shape
    g = w.abs().max() * (1.0 / (6 * 448))
    codes = torch.zeros(n, k, dtype=torch.uint8)
    scales = torch.zeros(n, k // 16, dtype=torch.uint8)
    for r in range(n):
        for b in range(k // 16):
            blk = w[r, 16 * b:16 * b + 16]
            sc = encode_e4m3_reference((blk.abs().max() / (6 * g)).reshape(1))
            scales[r, b] = sc
            s = decode_e4m3(sc)[0] * g
            if s > 0:
                codes[r, 16 * b:16 * b + 16] = encode_e2m1_reference(blk / s)
    return codes, scales, g


def _mxfp4_loop_reference(w):
    n, k = w.shape
    codes = torch.zeros(n, k, dtype=torch.uint8)
    scales = torch.zeros(n, k // 32, dtype=torch.uint8)
    for r in range(n):
        for b in range(k // 32):
            blk = w[r, 32 * b:32 * b + 32].double()
            amax = float(blk.abs().max())
            e = (int(np.floor(np.log2(amax))) - 2) if amax > 0 else -127
            e = max(-127, min(127, e))
            scales[r, b] = e + 127
            codes[r, 32 * b:32 * b + 32] = encode_e2m1_reference((blk / 2.0 ** e).float())
    return codes, scales


def test_block_quantizers_match_blockwise_reference():
    g = torch.Generator().manual_seed(3)
    w = torch.randn(6, 64, generator=g) * torch.exp(torch.randn(6, 1, generator=g) * 3)
    w[2, :16] = 0.0                                               # an all-zero block
    w[3, 16:32] *= 1e-7                                           # a subnormal-scale block
    w[4, 5] = 6 * w[4, 6]                                         # exact ties after scaling
    q, s, gs = quantize_nvfp4(w)
    rq, rs, rg = _nvfp4_loop_reference(w)
    assert torch.equal(s, rs) and torch.equal(q, rq) and float(gs) == float(rg)
    q, s = quantize_mxfp4(w)
    rq, rs = _mxfp4_loop_reference(w)
    assert torch.equal(s, rs) and torch.equal(q, rq)


def test_fp4_plane_packing_round_trips_and_pads():
    g = torch.Generator().manual_seed(4)
    for k in (16, 64, 80, 208):
        codes = torch.randint(0, 16, (5, k), generator=g, dtype=torch.uint8)
        words = pack_fp4_planes(codes)
        assert words.dtype == torch.int16 and words.shape == (5, -(-k // 64) * 16)
        assert torch.equal(unpack_fp4_planes(words, k), codes)


def _plane_asm_sources():
    """The four PTX strings of _triton.fp4_plane, read from the kernel source."""
    import os
    import re

    import fpx_arena.kernels as kern
    with open(os.path.join(os.path.dirname(kern.__file__), "_triton.py")) as f:
        text = f.read()
    start = text.index("def fp4_plane(")
    src = text[start:text.index("@triton.jit", start)]
    asms = re.findall(r'inline_asm_elementwise\(\s*((?:"[^"]*"\s*)+),', src)
    return ["".join(re.findall(r'"([^"]*)"', a)) for a in asms]


def _run_ptx(asm, reg):
    """Evaluate the small PTX subset used by the unpack (and/shl/mul.lo on b32/u32)."""
    env = {"$1": reg}
    val = lambda t: env[t] if t in env else np.uint32(int(t, 0))   # noqa: E731
    for ins in asm.replace("{", " ").replace("}", " ").split(";"):
        ins = ins.strip()
        if not ins or ins.startswith(".reg"):
            continue
        op, args = ins.split(None, 1)
        d, a, b = [x.strip() for x in args.split(",")]
        if op == "and.b32":
            env[d] = val(a) & val(b)
        elif op == "shl.b32":
            env[d] = val(a) << val(b)
        elif op == "mul.lo.u32":
            env[d] = val(a) * val(b)
        else:
            raise AssertionError(f"unexpected PTX {op}")
    return env["$0"]


def _emulate_unpack_ptx(words):
    """Run the kernel's unpack PTX on uint32 registers holding two words each; returns the fp16
    bit pattern per word for each plane."""
    w = words.astype(np.uint32) & 0xFFFF
    reg = w[0::2] | (w[1::2] << np.uint32(16))
    res = []
    for asm in _plane_asm_sources():
        o = _run_ptx(asm, reg)
        lanes = np.empty(words.shape[0], dtype=np.uint16)
        lanes[0::2] = (o & 0xFFFF).astype(np.uint16)
        lanes[1::2] = (o >> 16).astype(np.uint16)
        res.append(lanes)
    assert len(res) == 4
    return res


def test_ptx_unpack_arithmetic_gives_e2m1_times_2_pow_minus_14_for_every_word():
    lane0 = np.arange(65536, dtype=np.uint32)
    rng = np.random.default_rng(5)
    for other in list(rng.integers(0, 65536, size=6)) + [0, 0xFFFF]:
        words = np.empty(2 * 65536, dtype=np.uint32)
        first, second = (lane0, np.uint32(other)) if other % 2 else (np.uint32(other), lane0)
        words[0::2] = first                       # the exhaustive word in either half
        words[1::2] = second
        planes = _emulate_unpack_ptx(words)
        shifts = ((9, 15), (6, 12), (3, 14), (0, 13))
        for p, (ms, ss) in enumerate(shifts):
            code = ((words >> ms) & 7) | (((words >> ss) & 1) << 3)
            want = decode_e2m1(torch.from_numpy(code.astype(np.int64))).numpy() * 2.0 ** -14
            got = planes[p].view(np.float16).astype(np.float64)
            np.testing.assert_array_equal(got, want)


def test_quantized_weight_dequantize_state_dict_and_device_moves(tmp_path):
    from safetensors.torch import load_file, save_file
    g = torch.Generator().manual_seed(6)
    w = torch.randn(40, 96, generator=g)
    for fmt in ("fp8", "nvfp4", "mxfp4"):
        qw = quantize_weight(w, fmt)
        assert isinstance(qw, QuantizedWeight) and qw.fmt == fmt and qw.shape == (40, 96)
        d = qw.dequantize()
        assert d.shape == (40, 96) and d.dtype == torch.float32
        assert qw.dequantize(torch.bfloat16).dtype == torch.bfloat16
        path = tmp_path / f"{fmt}.safetensors"
        save_file(qw.state_dict("layer."), str(path), metadata=qw.metadata())
        back = QuantizedWeight.from_state_dict(load_file(str(path)), "layer.")
        assert back.fmt == fmt and back.shape == qw.shape
        assert torch.equal(back.dequantize(), d)
        assert back.out_multiplier == qw.out_multiplier
        assert torch.equal(qw.to("cpu").dequantize(), d)
    with pytest.raises(QuantizationError):
        QuantizedWeight.from_state_dict({}, "nope.")


def test_quantization_error_orders_on_gaussian_weights():
    """Mean relative error: NVFP4 < MXFP4, FP8 far below both (Gaussian weights)."""
    g = torch.Generator().manual_seed(7)
    w = torch.randn(256, 1024, generator=g)
    err = {}
    for fmt in ("fp8", "nvfp4", "mxfp4"):
        d = quantize_weight(w, fmt).dequantize()
        err[fmt] = float(((d - w).norm(dim=1) / w.norm(dim=1)).mean())
    assert err["nvfp4"] < err["mxfp4"]
    assert err["fp8"] < err["nvfp4"] / 2.5
    assert 0.05 < err["nvfp4"] < 0.15 and 0.01 < err["fp8"] < 0.05


# ----------------------------------------------------------------------------- the format registry

def test_registry_is_the_one_list_of_formats():
    assert quantized_formats() == FORMATS == precision.QUANTIZED
    assert get_format("FP4").name == "nvfp4" and precision.ALIASES["fp4"] == "nvfp4"
    assert is_quantized("fp4") and not is_quantized("bf16") and not is_quantized("int3")
    ids = [REGISTRY[f].kernel_id for f in FORMATS]
    assert len(set(ids)) == len(ids)
    with pytest.raises(QuantizationError, match="unknown number format 'int3'"):
        get_format("int3")
    g = torch.Generator().manual_seed(5)
    n, k = 24, 96
    w = torch.randn(n, k, generator=g)
    for f in FORMATS:
        spec = REGISTRY[f]
        qw = quantize_weight(w, f)
        assert format_by_id(spec.kernel_id) is spec
        back = QuantizedWeight.from_state_dict(qw.state_dict("l."), "l.")
        assert back.fmt == f and torch.equal(back.dequantize(), qw.dequantize())
        # bits per weight with scales = what is stored: e2m1/e4m3 codes plus the canonical scales
        stored = n * k * spec.bits + qw.scales.numel() * qw.scales.element_size() * 8
        if f == "nvfp4":
            stored += 32                                            # the per-tensor fp32
        assert spec.bits_with_scales(n, k) == pytest.approx(stored / (n * k))
        if spec.block:
            assert qw.scales.shape == (n, k // spec.block)
            with pytest.raises(QuantizationError, match=f"block of {spec.block}"):
                quantize_weight(torch.randn(4, spec.block + 8), f)
    assert torch.equal(quantize_weight(w, "fp4").codes, quantize_weight(w, "nvfp4").codes)
