"""``qlinear``: dispatch by backend and by the number of tokens M, launch, and the tuner.

Backends: ``triton`` (CUDA tensors; CPU tensors run the very same kernels in the Triton
interpreter) and ``torch`` (dequantize + matmul, the CPU default). Which Triton kernel runs:

- ``fp8`` weights: M < 64 -> weight-only kernel (e4m3 -> fp16 in registers, bf16/fp16 tokens);
  M >= 64 -> tokens quantized per token to e4m3 (one small kernel) and an FP8 x FP8 tensor-core
  matmul with both scales in the epilogue. ``act_quant="none"|"fp8"`` overrides the choice.
- ``nvfp4`` / ``mxfp4``: the weight-only kernel at every M (decode tiles of 16 tokens with
  split K, prefill tiles of 64-128 tokens).

Tile configurations come from ``candidate_configs`` (listed in the open below). On CUDA the
first call for a (kernel, format, N, K, M bucket, dtype, card) times every candidate and keeps
the fastest, in memory and in a JSON file (``$FPX_KERNEL_CACHE`` or
``~/.cache/fpx_arena/kernel-configs.json``), so later calls and later processes pay nothing.
``FPX_KERNEL_TUNE=0`` skips the timing and takes the first candidate.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
from dataclasses import asdict, dataclass

import torch

from .formats import REGISTRY, QuantizationError, QuantizedWeight, quantize_fp8_tokens
from .reference import qlinear_torch

_W8A8_MIN_M = 64            # FP8 weights switch to the FP8 x FP8 kernel from this many tokens
_lock = threading.RLock()  # a kernel module loads _triton.py of its flavour while loading


# ----------------------------------------------------------------------------- loading kernels

_modules: dict = {}


def kernel_module(interpret: bool, source: str = "_triton"):
    """A kernel module (``_triton``, ``_gemv``, ``_gemm``, ``_fused_triton``), compiled for CUDA or run by the Triton
    interpreter. TRITON_INTERPRET is read when ``@triton.jit`` runs, so each flavour is its own
    module object."""
    with _lock:
        if (source, interpret) in _modules:
            return _modules[(source, interpret)]
        import triton  # noqa: F401  (raises ImportError if Triton is missing)

        name = f"{__package__}.{source}_{'interp' if interpret else 'cuda'}"
        path = os.path.join(os.path.dirname(__file__), source + ".py")
        old = os.environ.get("TRITON_INTERPRET")
        knobs = getattr(sys.modules["triton"], "knobs", None)
        old_knob = knobs.runtime.__dict__.get("interpret", None) if knobs else None
        try:
            os.environ["TRITON_INTERPRET"] = "1" if interpret else "0"
            if knobs is not None:
                knobs.runtime.interpret = interpret
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
        finally:
            if old is None:
                os.environ.pop("TRITON_INTERPRET", None)
            else:
                os.environ["TRITON_INTERPRET"] = old
            if knobs is not None:
                if old_knob is None:
                    knobs.runtime.__dict__.pop("interpret", None)
                else:
                    knobs.runtime.interpret = old_knob
        _modules[(source, interpret)] = mod
        return mod


def triton_available() -> bool:
    try:
        import triton  # noqa: F401
        return True
    except ImportError:
        return False


# ----------------------------------------------------------------------------- configs

@dataclass(frozen=True)
class WQConfig:
    """Weight-only kernel tile: BN weight rows x BM tokens, G groups of 64 K per step; ``xperm``
    (FP4) puts the tokens in the kernel's K order with one small kernel first (prefill)."""
    BN: int
    BM: int
    G: int
    SPLIT_K: int
    num_warps: int
    num_stages: int
    xperm: bool = False


@dataclass(frozen=True)
class GemvConfig:
    """CUDA-core GEMV tile (``_gemv.py``): BN weight rows x BW 32-bit words of K per step (four
    words, 16 bytes, per thread along K), K split over SPLIT_K programs."""
    BN: int
    BW: int
    SPLIT_K: int
    num_warps: int
    num_stages: int


@dataclass(frozen=True)
class W8A8Config:
    """FP8 x FP8 tile. ``fused``: one persistent launch that quantizes the tokens first (grid
    barrier, ``_gemm.py``); otherwise ``act_quant_fp8_kernel`` runs as its own launch first."""
    BM: int
    BN: int
    BK: int
    GROUP_M: int
    num_warps: int
    num_stages: int
    fused: bool = False


def m_bucket(m: int) -> int:
    """Tokens -> the bucket a tuned configuration is shared by (powers of two)."""
    return 1 if m <= 1 else 1 << (m - 1).bit_length()


def _split_k(n: int, k: int, m: int, bn: int, bm: int, g: int, sms: int) -> int:
    """Splits of K that bring the programs to about two per SM, each keeping >= 2 steps;
    a divisor of the step count when there is one near, so that no split runs empty."""
    tiles = -(-n // bn) * -(-m // bm)
    steps = max(1, -(-k // 64) // g)
    want = max(1, min(-(-2 * sms // tiles), steps // 2, 16))
    for s in range(want, max(1, want // 2) - 1, -1):
        if steps % s == 0:
            return s
    return want


def candidate_configs(fmt: str, m: int, n: int, k: int, sms: int = 132, interpret: bool = False):
    """The tile configurations tried for one shape (the first is the untuned default)."""
    fp4 = fmt != "fp8"
    if interpret:                                     # small tiles keep the interpreter quick
        if m <= 16:
            return [WQConfig(32, 16, 1, 2 if k >= 128 else 1, 4, 1)]
        return [WQConfig(32, 64, 1, 1, 4, 1, xperm=fp4)]
    out = []
    if m <= 16:
        # decode: bytes in flight per program (BN x 64G) and programs per SM are what count
        tiles = (((128, 1, 4, 4), (128, 2, 4, 4), (128, 4, 4, 3), (128, 2, 4, 6), (256, 2, 8, 4),
                  (64, 4, 4, 4)) if fp4 else
                 ((64, 4, 4, 3), (128, 2, 4, 3), (64, 2, 4, 4), (128, 4, 4, 3), (64, 4, 4, 4)))
        for bn, g, warps, stages in tiles:
            s0 = _split_k(n, k, m, bn, 16, g, sms)
            for split in sorted({s0, min(2 * s0, max(1, (k // 64) // (2 * g)))}):
                out.append(WQConfig(bn, 16, g, split, warps, stages))
        if fp4:     # tokens pre-permuted by a small kernel: one more launch, no shuffles
            out.append(WQConfig(128, 16, 2, _split_k(n, k, m, 128, 16, 2, sms), 4, 4, xperm=True))
    elif m <= 64:
        for bn, bm, warps, stages in ((128, 32, 4, 4), (128, 64, 4, 3), (64, 64, 4, 4)):
            out.append(WQConfig(bn, bm, 1, _split_k(n, k, m, bn, bm, 1, sms), warps, stages,
                                xperm=fp4))
    else:
        for bn, bm, g, warps, stages in ((128, 128, 1, 8, 3), (128, 128, 2, 8, 3),
                                         (128, 64, 1, 4, 4), (256, 128, 1, 8, 3)):
            out.append(WQConfig(bn, bm, g, 1, warps, stages, xperm=fp4))
    return out


GEMV_MAX_M = 4             # tokens up to which the CUDA-core GEMV is a candidate


def gemv_eligible(qw: QuantizedWeight, x2: torch.Tensor) -> bool:
    """FP8 weights need K % 4 == 0 (32-bit words of codes); FP4 reads the tokens in bf16/fp16
    pairs (an fp32 x goes to the tensor-core kernel)."""
    if x2.shape[0] > GEMV_MAX_M:
        return False
    if qw.fmt == "fp8":
        return qw.shape[1] % 4 == 0
    return x2.dtype in (torch.bfloat16, torch.float16) and x2.stride(0) % 2 == 0


def gemv_candidates(fmt: str, m: int, n: int, k: int, sms: int = 132, interpret: bool = False):
    """GEMV tiles tried for one shape: rows per program, words per step, and a split of K that
    brings the programs to about 2-4 per SM (the first is the untuned default)."""
    n_w = k // 4 if fmt == "fp8" else -(-k // 64) * 8
    if interpret:
        bw = 16
        return [GemvConfig(32, bw, 2 if n_w >= 4 * bw else 1, 4, 1)]
    out = []
    # (rows, words per step, warps): 4 to 8 rows per thread; a few programs per SM
    # FP8 words hold 4 codes (FP4: 8): longer rows of words keep as many bytes in flight
    tiles = (((64, 128, 8), (128, 64, 4), (64, 64, 4), (128, 128, 8)) if fmt == "fp8" else
             ((128, 64, 4), (64, 64, 4), (128, 32, 4), (256, 64, 8)))
    for bn, bw, warps in tiles:
        tiles = -(-n // bn) * m
        steps = max(1, -(-n_w // bw))
        for per_sm in (3, 6):
            split = max(1, min(-(-per_sm * sms // tiles), steps, 32))
            for s in range(split, max(1, split // 2) - 1, -1):     # prefer an even division
                if steps % s == 0:
                    split = s
                    break
            cfg = GemvConfig(bn, bw, split, warps, 1)
            if cfg not in out:
                out.append(cfg)
    return out


# The fused FP8 x FP8 launch (grid barrier) passed the interpreter (one program) but has not
# yet run on a GPU with many programs: the tuner races it only when FPX_W8A8_FUSED=1
# (tests/test_kernels_gemm.py runs it either way).
W8A8_FUSED = os.environ.get("FPX_W8A8_FUSED", "0") == "1"


def w8a8_candidates(m: int, interpret: bool = False, fused: bool | None = None):
    """FP8 x FP8 tiles: fused (one launch; first, when enabled) and as two launches."""
    fused = W8A8_FUSED if fused is None else fused
    if interpret:
        return ([W8A8Config(32, 32, 32, 4, 4, 1, fused=True)] if fused else []) + \
            [W8A8Config(32, 32, 32, 4, 4, 1)]
    if m <= 128:
        tiles = [(64, 128, 128, 8, 4, 4), (64, 256, 128, 8, 8, 3), (128, 128, 128, 8, 8, 3)]
    else:
        tiles = [(128, 256, 128, 8, 8, 3), (128, 128, 128, 8, 4, 4), (128, 256, 64, 8, 8, 4),
                 (256, 128, 128, 8, 8, 3)]
    return ([W8A8Config(*t, fused=True) for t in tiles] if fused else []) + [W8A8Config(*t) for t in tiles]


# ----------------------------------------------------------------------------- tuner cache

_tuned: dict = {}
_cache_loaded = False
tune_log: list = []         # (key, config, median ms or error) of every timing the tuner made
last_choice: dict = {}      # the kernel kind and config of the latest qlinear call (for bench/)


def _cache_path() -> str:
    return os.environ.get("FPX_KERNEL_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "fpx_arena", "kernel-configs.json")


def _load_cache() -> None:
    global _cache_loaded
    if _cache_loaded:
        return
    _cache_loaded = True
    try:
        with open(_cache_path()) as f:
            for key, val in json.load(f).items():
                kind = val.pop("type", None) or ("W8A8Config" if key.startswith("w8a8") else "WQConfig")
                _tuned[key] = _CONFIG_TYPES[kind](**val)
    except (OSError, ValueError, TypeError):
        pass


def _save_cache() -> None:
    try:
        path = _cache_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump({k: {"type": type(v).__name__, **asdict(v)} for k, v in _tuned.items()}, f,
                      indent=1, sort_keys=True)
        os.replace(path + ".tmp", path)
    except OSError:
        pass


def _card_key(device: torch.device) -> str:
    import triton
    return f"{torch.cuda.get_device_name(device)}|triton-{triton.__version__}"


def _pick(key: str, candidates, run) -> object:
    """The cached choice for ``key``, or the fastest candidate (median of timed runs)."""
    _load_cache()
    if key in _tuned:
        return _tuned[key]
    if os.environ.get("FPX_KERNEL_TUNE", "1") == "0" or len(candidates) == 1:
        return candidates[0]
    from triton.testing import do_bench

    best, best_t = candidates[0], float("inf")
    for cfg in candidates:
        try:
            t = do_bench(lambda: run(cfg), warmup=10, rep=40, return_mode="median")
        except Exception as e:     # a tile that does not compile or fit is simply skipped
            tune_log.append((key, str(cfg), repr(e)[:200]))
            continue
        tune_log.append((key, str(cfg), t))
        if t < best_t:
            best, best_t = cfg, t
    _tuned[key] = best
    _save_cache()
    return best


def chosen_config(key: str):
    """The configuration the tuner picked for a key (None if not tuned yet); for the benchmark."""
    return _tuned.get(key)


# ----------------------------------------------------------------------------- workspaces

_work: dict = {}
_retired: list = []  # outgrown workspaces: CUDA graphs captured with them still write there


def _workspace(device, name: str, numel: int, dtype) -> torch.Tensor:
    """A zeroed scratch buffer of at least ``numel`` shared by a device's launches (split-K
    partials; arrival counters that the last program resets). One that is outgrown is kept
    alive, never freed: a graph captured earlier still holds its address."""
    buf = _work.get((device, name))
    if buf is None or buf.numel() < numel:
        if buf is not None:
            _retired.append(buf)
        buf = torch.zeros(max(numel, 1024), dtype=dtype, device=device)
        _work[(device, name)] = buf
    return buf


# ----------------------------------------------------------------------------- launches

def _launch_wq(mod, x2, qw: QuantizedWeight, bias, y, cfg: WQConfig, use_asm: bool) -> None:
    m, k = x2.shape
    n = qw.shape[0]
    grid = (-(-n // cfg.BN), -(-m // cfg.BM), cfg.SPLIT_K)
    if cfg.SPLIT_K > 1:
        part = _workspace(x2.device, "part", cfg.SPLIT_K * m * n, torch.float32)
        lock = _workspace(x2.device, "lock", grid[0] * grid[1], torch.int32)
    else:
        part = lock = y
    if qw.fmt == "fp8":
        ks, wscale = qw.codes, qw.scales
    else:
        ks, wscale = qw.kernel_scales, y
    xperm = cfg.xperm and qw.fmt != "fp8"
    if xperm:
        kp = -(-k // 64) * 64
        xp = torch.empty(m, kp, dtype=torch.float16, device=x2.device)
        mod.permute_x_kernel[(m, -(-kp // 1024))](x2, xp, k, kp, x2.stride(0), BLOCK=1024,
                                                  num_warps=4)
        x2 = xp
    mod.wq_matmul_kernel[grid](
        qw.codes, ks, wscale, x2, y, bias if bias is not None else y, part, lock,
        m, n, k, x2.stride(0), y.stride(0), float(qw.out_multiplier), cfg.SPLIT_K,
        FMT=REGISTRY[qw.fmt].kernel_id, BN=cfg.BN, BM=cfg.BM, G=cfg.G, SPLIT=cfg.SPLIT_K > 1,
        HAS_BIAS=bias is not None, USE_ASM=use_asm, EVEN=_even(n, k, cfg), XPERM=xperm,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages)


def _launch_gemv(mod, x2, qw: QuantizedWeight, bias, y, cfg: GemvConfig, use_asm: bool) -> None:
    m, k = x2.shape
    n = qw.shape[0]
    grid = (-(-n // cfg.BN), m, cfg.SPLIT_K)
    if cfg.SPLIT_K > 1:
        part = _workspace(x2.device, "part", cfg.SPLIT_K * m * n, torch.float32)
        lock = _workspace(x2.device, "lock", grid[0] * grid[1], torch.int32)
    else:
        part = lock = y
    codes = qw.codes.view(torch.int32)
    n_w = codes.shape[1]
    ks = qw.kernel_scales if qw.fmt != "fp8" else codes
    wscale = qw.scales if qw.fmt == "fp8" else y
    xk = 1 if x2.dtype == torch.float16 else 0
    xp = x2.view(torch.int32) if qw.fmt != "fp8" else x2
    mod.gemv_kernel[grid](
        codes, ks, wscale, x2, xp, y, bias if bias is not None else y, part, lock,
        m, n, k, x2.stride(0), y.stride(0), float(qw.out_multiplier), cfg.SPLIT_K,
        FMT=REGISTRY[qw.fmt].kernel_id, BN=cfg.BN, BW=cfg.BW, SPLIT=cfg.SPLIT_K > 1,
        HAS_BIAS=bias is not None, USE_ASM=use_asm,
        EVEN=n % cfg.BN == 0 and n_w % (cfg.BW * cfg.SPLIT_K) == 0, XK=xk,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages)


def _even(n: int, k: int, cfg: WQConfig) -> bool:
    groups = k // 64
    return n % cfg.BN == 0 and k % 64 == 0 and groups % (cfg.G * cfg.SPLIT_K) == 0


def quantize_act_fp8(x: torch.Tensor, backend: str | None = None):
    """Per-token FP8 activations: x [M, K] -> (e4m3 codes uint8 [M, K], fp32 scales [M]).
    A Triton kernel on CUDA (or in the interpreter), the torch reference otherwise."""
    backend = _backend(x, backend)
    if backend == "torch":
        return quantize_fp8_tokens(x)
    mod = kernel_module(interpret=not x.is_cuda)
    x2 = x.reshape(-1, x.shape[-1]).contiguous()
    if not x.is_cuda and not torch.isfinite(x2).all():
        quantize_fp8_tokens(x2)                      # raises the clear error
    m, k = x2.shape
    xq = torch.empty(m, k, dtype=torch.uint8, device=x.device)
    xs = torch.empty(m, dtype=torch.float32, device=x.device)
    if m:
        bk = min(16384, max(16, 1 << (k - 1).bit_length()))
        mod.act_quant_fp8_kernel[(m,)](x2, xq, xs, k, x2.stride(0), BK=bk, USE_ASM=x.is_cuda,
                                       num_warps=8 if bk >= 4096 else 4)
    return xq.reshape(x.shape), xs.reshape(x.shape[:-1])


# Hopper's FP8 tensor-core instructions add their products with less than fp32 precision, and
# on sm_90 Triton lets them accumulate so over the whole of K. W8A8_PROMOTE_K = k moves the sum
# to fp32 registers every k elements of K (at most one K tile). Measured on an H100 (bench/
# results/kernels-w8a8-promote-*.json, precision-h100.json): promoting every 128 cuts the
# per-layer error against the exact sum from 7.9e-3 to 1.0e-3 rel L2 but costs 29% at M=1024,
# and SmolLM2's logits move the same either way (bf16 rounding of the activations dominates),
# so the default is the hardware's accumulation. $FPX_W8A8_PROMOTE_K sets it (e.g. 128).
def _promote_k_from_env() -> int | None:
    value = os.environ.get("FPX_W8A8_PROMOTE_K", "none").strip().lower()
    if value == "none":
        return None
    if not value.isdigit() or int(value) < 32 or int(value) % 32:
        raise QuantizationError(f"FPX_W8A8_PROMOTE_K={value!r}: expected 'none' or a multiple of 32 (e.g. 128)")
    return int(value)


W8A8_PROMOTE_K: int | None = _promote_k_from_env()


def _launch_w8a8_fused(mod, x2, qw, bias, y, cfg: W8A8Config) -> None:
    m, k = x2.shape
    n = qw.shape[0]
    tiles = -(-m // cfg.BM) * -(-n // cfg.BN)
    # all programs must be resident at once (grid barrier): at most one per SM; the
    # interpreter runs programs in turn, so it gets exactly one
    progs = 1 if not x2.is_cuda else min(tiles, torch.cuda.get_device_properties(x2.device).multi_processor_count)
    xq = _workspace(x2.device, "xq8", m * k, torch.uint8)[:m * k].view(torch.float8_e4m3fn)
    xs = _workspace(x2.device, "xs8", m, torch.float32)
    bar = _workspace(x2.device, "bar", 3, torch.int32)
    qb = min(4096, max(16, 1 << (k - 1).bit_length()))
    mod.w8a8_fused_kernel[(progs,)](
        x2, xq, xs, qw.codes.view(torch.float8_e4m3fn), qw.scales, y,
        bias if bias is not None else y, bar, m, n, k, x2.stride(0), y.stride(0),
        BM=cfg.BM, BN=cfg.BN, BK=cfg.BK, GROUP_M=cfg.GROUP_M, QB=qb,
        HAS_BIAS=bias is not None, USE_ASM=x2.is_cuda,
        PROMOTE_K=None if W8A8_PROMOTE_K is None else min(W8A8_PROMOTE_K, cfg.BK),
        num_warps=cfg.num_warps, num_stages=cfg.num_stages)


def w8a8_barrier_failures(device) -> int:
    """1 if a fused FP8 launch on ``device`` ever gave up waiting at its grid barrier (its output
    was then wrong), else 0. Reads the device (a sync): for tests and benchmarks."""
    bar = _work.get((torch.device(device), "bar"))
    return 0 if bar is None else int(bar[2].item())


def _launch_w8a8(mod, xq, xs, qw, bias, y, cfg: W8A8Config) -> None:
    m, k = xq.shape
    n = qw.shape[0]
    grid = (-(-m // cfg.BM) * -(-n // cfg.BN),)
    f8 = torch.float8_e4m3fn
    mod.w8a8_matmul_kernel[grid](
        xq.view(f8), xs, qw.codes.view(f8), qw.scales, y, bias if bias is not None else y, m, n, k,
        xq.stride(0), y.stride(0), BM=cfg.BM, BN=cfg.BN, BK=cfg.BK, GROUP_M=cfg.GROUP_M,
        HAS_BIAS=bias is not None, USE_ASM=xq.is_cuda,
        PROMOTE_K=None if W8A8_PROMOTE_K is None else min(W8A8_PROMOTE_K, cfg.BK),
        num_warps=cfg.num_warps, num_stages=cfg.num_stages)


# ----------------------------------------------------------------------------- qlinear

def _backend(x: torch.Tensor, backend: str | None) -> str:
    if backend is None:
        if x.is_cuda:
            return "triton" if triton_available() else "torch"
        return "triton" if os.environ.get("TRITON_INTERPRET") == "1" and triton_available() \
            else "torch"
    if backend not in ("triton", "torch"):
        raise QuantizationError(f"unknown backend {backend!r}; expected 'triton' or 'torch'")
    return backend


def uses_fp8_activations(qw: QuantizedWeight, m: int, act_quant: str | None) -> bool:
    """Whether qlinear quantizes the tokens to FP8 for this call (FP8 weights, prefill)."""
    if act_quant not in (None, "none", "fp8"):
        raise QuantizationError(f"act_quant must be None, 'none' or 'fp8', not {act_quant!r}")
    if act_quant == "fp8" and qw.fmt != "fp8":
        raise QuantizationError("act_quant='fp8' needs fp8 weights")
    if act_quant is None:
        return qw.fmt == "fp8" and m >= _W8A8_MIN_M
    return act_quant == "fp8"


def qlinear(x: torch.Tensor, qw: QuantizedWeight, bias: torch.Tensor | None = None, *,
            backend: str | None = None, act_quant: str | None = None,
            config: WQConfig | W8A8Config | None = None,
            out: torch.Tensor | None = None) -> torch.Tensor:
    """y = x @ W^T (+ bias) for x [..., K] in bf16, fp16 or fp32; y has x's dtype.

    ``backend``: None (Triton on CUDA or under TRITON_INTERPRET=1, torch otherwise), "triton"
    or "torch". ``act_quant``: see ``uses_fp8_activations``. ``config`` forces a tile.
    ``out``: a contiguous [M, N] tensor of x's dtype to write into (Triton backend).
    """
    if not isinstance(qw, QuantizedWeight):
        raise QuantizationError(f"qw must be a QuantizedWeight, got {type(qw).__name__}")
    n, k = qw.shape
    if x.dim() == 0 or x.shape[-1] != k:
        raise QuantizationError(f"x has {x.shape[-1] if x.dim() else 0} features, the weight "
                                f"expects K = {k} (x shape {tuple(x.shape)})")
    if x.dtype not in (torch.bfloat16, torch.float16, torch.float32):
        raise QuantizationError(f"x must be bf16, fp16 or fp32, not {x.dtype}")
    if bias is not None and tuple(bias.shape) != (n,):
        raise QuantizationError(f"bias must have shape ({n},), got {tuple(bias.shape)}")
    if x.device != qw.device:
        raise QuantizationError(f"x is on {x.device} but the weight is on {qw.device}; "
                                f"use qw.to(device)")
    x2 = x.reshape(-1, k)
    m = x2.shape[0]
    act_fp8 = uses_fp8_activations(qw, m, act_quant)
    backend = _backend(x, backend)
    if backend == "torch" or m == 0:
        return qlinear_torch(x, qw, bias, act_fp8=act_fp8)

    interpret = not x.is_cuda
    mod = kernel_module(interpret)
    if x2.stride(-1) != 1 or (x2.stride(0) % 8 and m > 1):
        x2 = x2.contiguous()
    if out is not None:
        if out.shape != (m, n) or out.dtype != x.dtype or not out.is_contiguous():
            raise QuantizationError(f"out must be a contiguous [{m}, {n}] {x.dtype} tensor")
        y = out
    else:
        y = torch.empty(m, n, dtype=x.dtype, device=x.device)
    if bias is not None:
        bias = bias.contiguous()

    if act_fp8:
        cands = w8a8_candidates(m, interpret)
        kind = f"w8a8f-promote{W8A8_PROMOTE_K}"
        gemm_mod = kernel_module(interpret, "_gemm")

        def run(c):
            if c.fused:
                _launch_w8a8_fused(gemm_mod, x2, qw, bias, y, c)
            else:
                xq, xs = quantize_act_fp8(x2, backend="triton")
                _launch_w8a8(mod, xq, xs, qw, bias, y, c)
    else:
        sms = 132 if interpret else torch.cuda.get_device_properties(x.device).multi_processor_count
        cands = candidate_configs(qw.fmt, m, n, k, sms, interpret)
        kind = "wq"
        if gemv_eligible(qw, x2):       # decode: the GEMV and the tensor-core tiles compete
            cands = gemv_candidates(qw.fmt, m, n, k, sms, interpret) + cands[:2 if m <= 2 else 4]
            kind = "dec"
        gemv_mod = kernel_module(interpret, "_gemv") if kind == "dec" else None

        def run(c):
            if isinstance(c, GemvConfig):
                _launch_gemv(gemv_mod, x2, qw, bias, y, c, use_asm=not interpret)
            else:
                _launch_wq(mod, x2, qw, bias, y, c, use_asm=not interpret)
    if config is not None:
        cfg = config
    elif interpret:
        cfg = cands[0]
    else:
        key = f"{kind}|{qw.fmt}|{n}|{k}|{m_bucket(m)}|{x.dtype}|{_card_key(x.device)}"
        cfg = _pick(key, cands, run)
    last_choice.update(kind=kind, config=cfg)
    run(cfg)
    return y.reshape(*x.shape[:-1], n)


_CONFIG_TYPES = {c.__name__: c for c in (WQConfig, GemvConfig, W8A8Config)}
