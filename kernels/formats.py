"""Number formats, quantizers and the packed layouts the Triton kernels read.

Everything here is plain torch (CPU or CUDA) and exact: the encoders round to nearest with
ties to even and saturate, and their results are checked bit for bit against the brute-force
reference encoders at the end of this file.

Formats
-------
- e4m3 (OCP FP8 E4M3 "fn"): 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities,
  0x7F/0xFF are NaN; largest finite 448, smallest subnormal 2**-9.
- e2m1 (OCP FP4): 1 sign, 2 exponent (bias 1), 1 mantissa bit: +-{0, .5, 1, 1.5, 2, 3, 4, 6}.
- e8m0 (OCP MX scale): a biased power of two, 2**(byte - 127); 0xFF is NaN (never produced).
- ``fp8``: e4m3 weights with one fp32 scale per output channel (row): amax(row) / 448.
- ``nvfp4``: e2m1 in blocks of 16 along K, one e4m3 scale per block, one fp32 per tensor
  (global = amax / (6 * 448); block scale = e4m3(amax_block / (6 * global))).
- ``mxfp4`` (OCP MX v1.0): e2m1 in blocks of 32, one e8m0 scale per block equal to
  2**(floor(log2(amax_block)) - 2); elements beyond 6 after scaling saturate to 6.

Kernel layout of FP4 weights (``fpx-planes-v1``, see docs/kernels.md)
--------------------------------------------------------------------
Codes are stored as int16 words, four codes per word, one word per (row, group of 64 K,
slot j in 0..15). The four codes of a word are four "planes" p = 0..3; plane p of slot j holds
K index ``64 g + 16 ((j % 8) // 2) + 4 p + (j % 2) + 2 (j // 8)``. With this order the four K
values a tensor-core thread holds for one row and one plane ({2t, 2t+1, 2t+8, 2t+9}) fall in one
16-block, so each thread needs one block scale per row per group. Inside a word, plane 0 keeps
its magnitude bits at 9..11 and sign at 15 -- where an fp16 holds them -- plane 1 at 6..8 / 12,
plane 2 at 3..5 / 14, plane 3 at 0..2 / 13, so that one 32-bit register (two words) becomes two
fp16 values of one plane in 1, 2, 3 and 3 integer operations. The fp16 so made equals the e2m1
value times 2**-14 (the subnormal 0.5 lands on an fp16 subnormal, exactly).

Block scales for the kernel ("kernel scales") are one byte u per block whose fp16 bit pattern
is ``u << 7``: kappa = block multiplier * 2**7 / G, G a per-tensor fp32 (the NVFP4 global; a
power of two for MXFP4 chosen so the largest block lands at fp16 exponent 30). Then the fp16
weight the kernel feeds to the tensor cores is exact and the output is ``acc * G * 2**7``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..errors import UserError

GROUP = 64                      # K values per packed FP4 group (16 int16 words)
LAYOUT = "fpx-planes-v1"
E4M3_MAX = 448.0
E2M1_MAX = 6.0
KAPPA_SHIFT = 7                 # kernel scales carry an extra 2**7 (see module docstring)


class QuantizationError(UserError, ValueError):
    """A weight or activation that cannot be quantized as asked (bad format, shape, values)."""


# ----------------------------------------------------------------------------- e4m3

def _e4m3_table() -> torch.Tensor:
    """float64 value of each of the 256 e4m3 codes (NaN for 0x7F and 0xFF)."""
    vals = []
    for b in range(256):
        s, e, m = b >> 7, (b >> 3) & 15, b & 7
        if e == 15 and m == 7:
            v = math.nan
        elif e == 0:
            v = m / 8 * 2.0 ** -6
        else:
            v = (1 + m / 8) * 2.0 ** (e - 7)
        vals.append(-v if s else v)
    return torch.tensor(vals, dtype=torch.float64)


E4M3_VALUES = _e4m3_table()
E2M1_VALUES = torch.tensor([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6],
                           dtype=torch.float64)


def _check_finite(x: torch.Tensor, what: str) -> None:
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise QuantizationError(f"{what} contains {bad} NaN or Inf value(s); cannot quantize")


def encode_e4m3(x: torch.Tensor) -> torch.Tensor:
    """Round float values to e4m3 codes (uint8): nearest, ties to even, saturating at +-448.
    NaN/Inf are rejected."""
    _check_finite(x, "input")
    x = x.float().clamp(-E4M3_MAX, E4M3_MAX)
    # torch's cast rounds to nearest-even; the clamp above makes it saturating.
    return x.to(torch.float8_e4m3fn).view(torch.uint8)


def decode_e4m3(codes: torch.Tensor) -> torch.Tensor:
    """e4m3 codes (uint8) -> float32 values."""
    return codes.view(torch.float8_e4m3fn).float() if codes.dtype == torch.uint8 else \
        codes.to(torch.uint8).view(torch.float8_e4m3fn).float()


# ----------------------------------------------------------------------------- e2m1

# |x| thresholds between consecutive magnitudes; ">" where the tie goes down to an even code,
# ">=" where it goes up to an even code (codes 0..7 = 0, .5, 1, 1.5, 2, 3, 4, 6).
_E2M1_STEPS = ((0.25, False), (0.75, True), (1.25, False), (1.75, True), (2.5, False),
               (3.5, True), (5.0, False))


def encode_e2m1(x: torch.Tensor) -> torch.Tensor:
    """Round float values to e2m1 codes (uint8 0..15, bit 3 = sign): nearest, ties to even,
    saturating at +-6; the sign of zero follows the input. NaN/Inf are rejected."""
    _check_finite(x, "input")
    x = x.float()
    a = x.abs()
    code = torch.zeros_like(a, dtype=torch.uint8)
    for t, up in _E2M1_STEPS:
        code += (a >= t if up else a > t).to(torch.uint8)
    sign = torch.signbit(x).to(torch.uint8) << 3
    return code | sign


def decode_e2m1(codes: torch.Tensor) -> torch.Tensor:
    """e2m1 codes (0..15) -> float32 values."""
    return E2M1_VALUES.float().to(codes.device)[codes.long()]


def decode_e8m0(codes: torch.Tensor) -> torch.Tensor:
    """e8m0 scale bytes -> float32 powers of two (2**(b-127)); 0xFF (NaN) is never produced."""
    return torch.ldexp(torch.ones_like(codes, dtype=torch.float32), codes.to(torch.int32) - 127)


# ----------------------------------------------------------------------------- quantizers

def _check_weight(w: torch.Tensor, fmt: str) -> torch.Tensor:
    if fmt not in FORMATS:
        raise QuantizationError(f"unknown weight format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not isinstance(w, torch.Tensor) or w.dim() != 2:
        raise QuantizationError(f"weight must be a 2-D [N, K] tensor, got "
                                f"{tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__}")
    if not w.is_floating_point():
        raise QuantizationError(f"weight must be a float tensor, got {w.dtype}")
    if w.numel() == 0:
        raise QuantizationError("weight is empty")
    if fmt in BLOCK and w.shape[1] % BLOCK[fmt]:
        raise QuantizationError(
            f"{fmt} needs K (= in_features = {w.shape[1]}) divisible by its block of {BLOCK[fmt]}")
    _check_finite(w, "weight")
    return w.float()


def quantize_fp8_rows(w: torch.Tensor):
    """Per-output-channel FP8: returns (codes uint8 [N, K], scale fp32 [N]) with
    w ~= decode_e4m3(codes) * scale[:, None]. All-zero rows get scale 1."""
    amax = w.abs().amax(dim=1)
    scale = torch.where(amax > 0, amax * (1.0 / E4M3_MAX), torch.ones_like(amax))
    return encode_e4m3(w / scale[:, None]), scale


def quantize_fp8_tokens(x: torch.Tensor):
    """Per-token FP8 activations: x [..., K] -> (codes uint8 [..., K], scale fp32 [...]).
    scale = amax * fp32(1/448); codes = e4m3(x * (1 / scale)): two fp32 roundings spelled out,
    so CPU, CUDA and the Triton kernel agree bit for bit."""
    _check_finite(x, "activation")
    x = x.float()
    amax = x.abs().amax(dim=-1)
    scale = torch.where(amax > 0, amax * (1.0 / E4M3_MAX), torch.ones_like(amax))
    inv = torch.ones_like(scale) / scale
    return encode_e4m3(x * inv[..., None]), scale


def quantize_nvfp4(w: torch.Tensor):
    """NVFP4: returns (codes uint8 [N, K] in 0..15, block scales e4m3 uint8 [N, K/16],
    global fp32 scalar tensor)."""
    n, k = w.shape
    amax = w.abs().max()
    # fp32 arithmetic throughout; divisors are expanded to full tensors so that CPU and CUDA
    # both divide exactly (a scalar divisor may become a multiply by its reciprocal)
    g = (amax * (1.0 / (E2M1_MAX * E4M3_MAX))) if amax > 0 else torch.ones((), device=w.device)
    g = g.float()
    blocks = w.reshape(n, k // 16, 16)
    bmax = blocks.abs().amax(dim=2)
    s_codes = encode_e4m3(bmax / (E2M1_MAX * g).expand_as(bmax))
    s = decode_e4m3(s_codes) * g                          # the real block multiplier
    safe = torch.where(s > 0, s, torch.ones_like(s))
    q = encode_e2m1(blocks / safe[..., None])
    q = torch.where((s > 0)[..., None], q, torch.zeros_like(q))
    return q.reshape(n, k), s_codes, g.reshape(1)


def quantize_mxfp4(w: torch.Tensor):
    """MXFP4 (OCP MX v1.0): returns (codes uint8 [N, K], e8m0 scales uint8 [N, K/32])."""
    n, k = w.shape
    blocks = w.reshape(n, k // 32, 32)
    bmax = blocks.abs().amax(dim=2)
    _, exp = torch.frexp(bmax)                          # bmax = m * 2**exp, m in [0.5, 1)
    shared = (exp.to(torch.int32) - 1) - 2              # floor(log2 bmax) - emax(e2m1)
    shared = torch.where(bmax > 0, shared, torch.full_like(shared, -127)).clamp(-127, 127)
    q = encode_e2m1(torch.ldexp(blocks, -shared[..., None]))   # exact power-of-two division
    return q.reshape(n, k), (shared + 127).to(torch.uint8)


# ----------------------------------------------------------------------------- kernel layout

def _plane_order(device) -> torch.Tensor:
    """perm[p, j] = K offset inside a 64-group of plane p, slot j (see module docstring)."""
    p = torch.arange(4, device=device)[:, None]
    j = torch.arange(16, device=device)[None, :]
    return 16 * ((j % 8) // 2) + 4 * p + (j % 2) + 2 * (j // 8)


# (magnitude shift, sign shift) that put plane p's bits into a word: mag << ms, sign << ss
_PLANE_BITS = ((9, 15), (6, 12), (3, 14), (0, 13))


def pack_fp4_planes(codes: torch.Tensor) -> torch.Tensor:
    """e2m1 codes [N, K] (K % 16 == 0) -> int16 words [N, Kp/4], Kp = K rounded up to 64."""
    n, k = codes.shape
    kp = -(-k // GROUP) * GROUP
    c = torch.zeros(n, kp, dtype=torch.int32, device=codes.device)
    c[:, :k] = codes.to(torch.int32)
    c = c.reshape(n, kp // GROUP, GROUP)[:, :, _plane_order(codes.device)]   # [N, G, 4, 16]
    word = torch.zeros(n, kp // GROUP, 16, dtype=torch.int32, device=codes.device)
    for p, (ms, ss) in enumerate(_PLANE_BITS):
        word |= ((c[:, :, p] & 7) << ms) | (((c[:, :, p] >> 3) & 1) << ss)
    word = torch.where(word >= 32768, word - 65536, word)     # two's complement int16
    return word.to(torch.int16).reshape(n, kp // 4)


def unpack_fp4_planes(words: torch.Tensor, k: int) -> torch.Tensor:
    """Inverse of pack_fp4_planes: int16 words -> e2m1 codes [N, K] (uint8)."""
    n = words.shape[0]
    w = words.to(torch.int32) & 0xFFFF
    w = w.reshape(n, -1, 16)
    planes = []
    for ms, ss in _PLANE_BITS:
        planes.append(((w >> ms) & 7) | (((w >> ss) & 1) << 3))
    c = torch.stack(planes, dim=2)                              # [N, G, 4, 16]
    out = torch.empty(n, c.shape[1], GROUP, dtype=torch.int32, device=words.device)
    out[:, :, _plane_order(words.device)] = c
    return out.reshape(n, -1)[:, :k].to(torch.uint8)


def kernel_scale_bytes(kappa: torch.Tensor) -> torch.Tensor:
    """Kernel scales kappa (float32, exact fp16 values) -> bytes u with fp16 bits u << 7.
    Values below fp16's normal range are flushed to 0 (MXFP4 blocks 2**29 below the largest)."""
    kappa = kappa.float()
    kappa = torch.where(kappa >= 2.0 ** -14, kappa, torch.zeros_like(kappa))
    bits = kappa.to(torch.float16).view(torch.int16).to(torch.int32)
    if bool(((bits & 0x7F) != 0).any()) or bool((kappa > 65504).any()):
        raise AssertionError("kernel scale does not fit the u << 7 encoding")   # cannot happen
    return (bits >> 7).to(torch.uint8)


def _pad_cols(t: torch.Tensor, cols: int) -> torch.Tensor:
    if t.shape[1] == cols:
        return t.contiguous()
    out = torch.zeros(t.shape[0], cols, dtype=t.dtype, device=t.device)
    out[:, :t.shape[1]] = t
    return out



# ----------------------------------------------------------------------------- the registry

@dataclass(frozen=True)
class Format:
    """One number format of linear-layer weights: everything the kernels, precision plans, the
    quantized-weight cache and the docs need to know about it. A new format is one entry here
    (with its quantizer) plus its kernels.

    ``kernel_id`` is what kernels dispatch on and what ``QuantizedWeight.state_dict`` stores
    (never renumber an entry); dense formats have none. ``block`` is the number of K values that
    share one scale (None: one scale per output row, or no scale)."""
    name: str
    element: str                       # element type: "e4m3", "e2m1", or the dense dtype's name
    bits: int                          # bits per element, before the scales
    block: int | None                  # K values per scale
    scale: str                         # how it is scaled (docs)
    kernel_id: int | None = None
    quantizer: Callable | None = None  # [N, K] fp32 weight -> QuantizedWeight (quantized formats)
    dtype: torch.dtype | None = None   # dense formats: the torch dtype
    aliases: tuple = ()

    @property
    def quantized(self) -> bool:
        return self.kernel_id is not None

    def bits_with_scales(self, n: int, k: int) -> float:
        """Exact stored bits per weight of an [n, k] weight, scales included."""
        if self.name == "fp8":
            return 8 + 32 / k                          # one fp32 per row
        if self.name == "nvfp4":
            return 4 + 8 / 16 + 32 / (n * k)           # e4m3 per 16, fp32 per tensor
        if self.name == "mxfp4":
            return 4 + 8 / 32                          # e8m0 per 32
        return float(self.bits)


def _entries() -> tuple:
    return (
        Format("fp32", "fp32", 32, None, "none", dtype=torch.float32),
        Format("bf16", "bf16", 16, None, "none", dtype=torch.bfloat16),
        Format("fp16", "fp16", 16, None, "none", dtype=torch.float16),
        Format("fp8", "e4m3", 8, None, "fp32 per output row (amax / 448)", 0, _quantize_fp8),
        Format("nvfp4", "e2m1", 4, 16, "e4m3 per 16 along K + fp32 per tensor", 1, _quantize_nvfp4,
               aliases=("fp4",)),
        Format("mxfp4", "e2m1", 4, 32, "e8m0 (power of two) per 32 along K", 2, _quantize_mxfp4),
    )


REGISTRY: dict = {}      # name -> Format, filled at the end of this module
_ALIASES: dict = {}


def get_format(name: str) -> Format:
    """The registry entry of a format name or alias (case-insensitive)."""
    key = str(name).strip().lower()
    f = REGISTRY.get(_ALIASES.get(key, key))
    if f is None:
        raise QuantizationError(f"unknown number format {name!r}; expected one of "
                                f"{', '.join(REGISTRY)} (aliases: {', '.join(f'{a}={b}' for a, b in _ALIASES.items())})")
    return f


def canonical_name(name: str) -> str:
    return get_format(name).name


def format_by_id(kernel_id: int) -> Format:
    for f in REGISTRY.values():
        if f.kernel_id == kernel_id:
            return f
    raise QuantizationError(f"unknown quantized format id {kernel_id}")


def quantized_formats() -> tuple:
    """Names of the formats quantize_weight makes, in kernel-id order."""
    return tuple(f.name for f in sorted((f for f in REGISTRY.values() if f.quantized),
                                        key=lambda f: f.kernel_id))


def dense_formats() -> dict:
    return {f.name: f.dtype for f in REGISTRY.values() if not f.quantized}


def aliases() -> dict:
    return dict(_ALIASES)


def is_quantized(name: str) -> bool:
    key = str(name).strip().lower()
    f = REGISTRY.get(_ALIASES.get(key, key))
    return f is not None and f.quantized


# ----------------------------------------------------------------------------- the weight type


@dataclass
class QuantizedWeight:
    """A [N, K] weight in ``fmt``. Tensors:

    - ``codes``: fp8 -> uint8 e4m3 [N, K]; nvfp4/mxfp4 -> int16 words [N, Kp/4] (fpx-planes-v1)
    - ``scales``: fp8 -> fp32 [N]; nvfp4 -> e4m3 uint8 [N, K/16]; mxfp4 -> e8m0 uint8 [N, K/32]
    - ``kernel_scales``: FP4 only, uint8 [N, Kp/block] (see module docstring)
    - ``global_scale``: fp32 [1]; nvfp4's per-tensor scale, mxfp4's kernel G, 1 for fp8
    """
    fmt: str
    shape: tuple
    codes: torch.Tensor
    scales: torch.Tensor
    kernel_scales: torch.Tensor | None = None
    global_scale: torch.Tensor = field(default_factory=lambda: torch.ones(1))
    out_multiplier: float = 1.0     # what the FP4 kernels multiply their fp32 sums by

    @property
    def device(self) -> torch.device:
        return self.codes.device

    @property
    def nbytes(self) -> int:
        """Bytes the kernels read for one product (codes + the scales they use)."""
        s = self.kernel_scales if self.kernel_scales is not None else self.scales
        return self.codes.numel() * self.codes.element_size() + s.numel() * s.element_size()

    def to(self, device) -> "QuantizedWeight":
        mv = lambda t: None if t is None else t.to(device)   # noqa: E731
        return QuantizedWeight(self.fmt, self.shape, mv(self.codes), mv(self.scales),
                               mv(self.kernel_scales), mv(self.global_scale), self.out_multiplier)

    def e2m1_codes(self) -> torch.Tensor:
        """The FP4 codes as a plain [N, K] uint8 matrix (0..15)."""
        return unpack_fp4_planes(self.codes, self.shape[1])

    def dequantize(self, dtype=torch.float32) -> torch.Tensor:
        """The [N, K] weight the codes stand for (computed in float64 when asked, exactly)."""
        n, k = self.shape
        ct = torch.float64 if dtype == torch.float64 else torch.float32
        if self.fmt == "fp8":
            w = decode_e4m3(self.codes).to(ct) * self.scales.to(ct)[:, None]
        else:
            b = BLOCK[self.fmt]
            v = decode_e2m1(self.e2m1_codes()).to(ct).reshape(n, k // b, b)
            if self.fmt == "nvfp4":
                s = decode_e4m3(self.scales).to(ct) * self.global_scale.to(ct)
            else:
                s = decode_e8m0(self.scales).to(ct)
            w = (v * s[..., None]).reshape(n, k)
        return w.to(dtype)

    def state_dict(self, prefix: str = "") -> dict:
        """Plain tensors (safetensors-ready); ``meta`` = [format id, N, K, layout version]."""
        sd = {prefix + "codes": self.codes, prefix + "scales": self.scales,
              prefix + "global_scale": self.global_scale.float().reshape(1),
              prefix + "meta": torch.tensor([REGISTRY[self.fmt].kernel_id, self.shape[0], self.shape[1], 1],
                                            dtype=torch.int64)}
        if self.kernel_scales is not None:
            sd[prefix + "kernel_scales"] = self.kernel_scales
        return sd

    def metadata(self) -> dict:
        """Human-readable string metadata (for a safetensors header)."""
        return {"fmt": self.fmt, "shape": f"{self.shape[0]},{self.shape[1]}", "layout": LAYOUT}

    @classmethod
    def from_state_dict(cls, sd: dict, prefix: str = "") -> "QuantizedWeight":
        try:
            fmt_id, n, k, version = (int(v) for v in sd[prefix + "meta"].tolist())
            fmt = format_by_id(fmt_id).name
        except (KeyError, IndexError, ValueError, QuantizationError) as e:
            raise QuantizationError(f"not a quantized-weight state dict (prefix {prefix!r}): {e}")
        if version != 1:
            raise QuantizationError(f"unknown quantized-weight layout version {version}")
        g = sd[prefix + "global_scale"].float().reshape(1)
        return cls(fmt, (n, k), sd[prefix + "codes"], sd[prefix + "scales"],
                   sd.get(prefix + "kernel_scales"), g, _out_multiplier(fmt, g))

    def __repr__(self) -> str:
        return f"QuantizedWeight(fmt={self.fmt}, shape={self.shape}, device={self.device})"


def _out_multiplier(fmt: str, g: torch.Tensor) -> float:
    return 1.0 if fmt == "fp8" else float(g.float().cpu()[0]) * 2.0 ** KAPPA_SHIFT


def quantize_weight(w: torch.Tensor, fmt: str) -> QuantizedWeight:
    """Quantize a [N, K] float weight to ``fmt`` ("fp8", "nvfp4" (alias "fp4") or "mxfp4") on
    its device."""
    key = fmt.strip().lower() if isinstance(fmt, str) else None
    spec = REGISTRY.get(_ALIASES.get(key, key)) if key else None
    if spec is None or not spec.quantized:
        raise QuantizationError(f"unknown weight format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return spec.quantizer(_check_weight(w, spec.name))


def _quantize_fp8(wf: torch.Tensor) -> QuantizedWeight:
    n, k = wf.shape
    codes, scale = quantize_fp8_rows(wf)
    return QuantizedWeight("fp8", (n, k), codes.contiguous(), scale.contiguous(), None,
                           torch.ones(1, device=wf.device), 1.0)


def _quantize_nvfp4(wf: torch.Tensor) -> QuantizedWeight:
    q, s_codes, g = quantize_nvfp4(wf)
    gf = float(g.cpu()[0])
    ks = kernel_scale_bytes(decode_e4m3(s_codes) * 2.0 ** KAPPA_SHIFT)   # G = global
    return _fp4_weight("nvfp4", wf.shape, q, s_codes, ks, g.reshape(1).float(), gf)


def _quantize_mxfp4(wf: torch.Tensor) -> QuantizedWeight:
    q, s_codes = quantize_mxfp4(wf)
    emax = int(s_codes.max().cpu()) - 127                 # largest block exponent
    gf = 2.0 ** (emax - 8)                                # its kappa lands at 2**15
    ks = kernel_scale_bytes(torch.ldexp(torch.ones_like(s_codes, dtype=torch.float32),
                                        s_codes.to(torch.int32) - 127 - emax + 15))
    return _fp4_weight("mxfp4", wf.shape, q, s_codes, ks,
                       torch.tensor([gf], device=wf.device, dtype=torch.float32), gf)


def _fp4_weight(fmt, shape, q, s_codes, ks, g, gf) -> QuantizedWeight:
    n, k = shape
    kp = -(-k // GROUP) * GROUP
    ks = _pad_cols(ks, kp // BLOCK[fmt])
    return QuantizedWeight(fmt, (n, k), pack_fp4_planes(q), s_codes.contiguous(), ks, g,
                           gf * 2.0 ** KAPPA_SHIFT)


# ----------------------------------------------------------------------------- references

def encode_e4m3_reference(x: torch.Tensor) -> torch.Tensor:
    """Brute force: the finite e4m3 code nearest to each value (float64), ties to the even code,
    saturating. Slow; for tests."""
    x = x.double().flatten()
    vals = E4M3_VALUES.clone()
    finite = torch.isfinite(vals)
    codes = torch.arange(256)[finite]
    vals = vals[finite]
    d = (x[:, None] - vals[None, :]).abs()
    best = d.min(dim=1, keepdim=True).values
    cand = d == best
    # among ties prefer an even mantissa (code LSB 0), then the sign of x (for zero)
    even = (codes & 1) == 0
    same_sign = ((codes >> 7) == 1) == torch.signbit(x)[:, None]
    score = cand.long() * 4 + (cand & even[None, :]).long() * 2 + (cand & same_sign).long()
    return codes[score.argmax(dim=1)].to(torch.uint8)


def encode_e2m1_reference(x: torch.Tensor) -> torch.Tensor:
    """Brute force e2m1 encoder (float64), ties to even code, saturating, sign of zero kept."""
    x = x.double().flatten()
    vals = E2M1_VALUES
    codes = torch.arange(16)
    d = (x[:, None] - vals[None, :]).abs()
    best = d.min(dim=1, keepdim=True).values
    cand = d == best
    even = (codes & 1) == 0
    same_sign = ((codes >> 3) == 1) == torch.signbit(x)[:, None]
    score = cand.long() * 4 + (cand & even[None, :]).long() * 2 + (cand & same_sign).long()
    return codes[score.argmax(dim=1)].to(torch.uint8)


# ----------------------------------------------------------------------------- fill the registry

for _f in _entries():
    REGISTRY[_f.name] = _f
    for _a in _f.aliases:
        _ALIASES[_a] = _f.name
FORMATS = quantized_formats()                       # ("fp8", "nvfp4", "mxfp4")
BLOCK = {f.name: f.block for f in REGISTRY.values() if f.quantized and f.block}
