"""load_model(source, precision, device): a checkpoint (HF folder, .gguf file or model name)
into a ready ``Transformer`` with its tokenizer, each linear layer in the format its precision
plan gives it."""
from __future__ import annotations

import os

import torch

from ..errors import CheckpointError
from .checkpoint import GGUFSource, HFSource, expected_tensors
from .linear import Linear
from .model import Transformer, rope_inv_freq
from .calibrate import plan_for_model
from .registry import resolve


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def open_checkpoint(source: str):
    """The TensorSource of a model name, HF folder or .gguf file (config checked against weights)."""
    path, kind = resolve(source)
    src = GGUFSource(path) if kind == "gguf" else HFSource(path)
    src.check()
    return src


def load_model(source, precision: str = "bf16", device=None, *, tokenizer: bool = True,
               lm_head: str | None = None, qcache: bool | None = None) -> Transformer:
    """Load a checkpoint. `precision` picks the plan (see precision.py: fp32, bf16, fp8, fp4,
    nvfp4, mxfp4, fpx:<gamma>, a plan file); `lm_head` the lm_head's format (default bf16);
    `device` defaults to CUDA when there is one. Quantized weights are read from the
    quantized-weight cache when it holds them, else quantized and written there (`qcache`:
    None follows $FPX_ARENA_QCACHE, default on). The model carries .tokenizer, .config, .plan,
    .source and .load_info (cache hit or miss, seconds)."""
    import time

    from . import qcache as qc

    t_start = time.perf_counter()
    device = torch.device(device or default_device())
    src = open_checkpoint(os.fspath(source))
    config = src.config
    with torch.device("meta"):
        model = Transformer(config, dtype=torch.float32)
    linears = model.linear_layers()
    shapes = {n: (m.out_features, m.in_features) for n, m in linears.items()}
    plan = plan_for_model(precision, src, shapes, device, lm_head)
    dtype = plan.compute_dtype
    entry, cached = None, None
    if plan.quantized and (qc.enabled() if qcache is None else qcache):
        entry = qc.QuantCache(qc.checkpoint_sha256(src.path), plan.formats)
        cached = entry.load(device)

    def read(name: str) -> torch.Tensor:
        w = src.get(name)
        w = w.to(device=device, dtype=torch.float32 if w.dtype == torch.float32 else w.dtype)
        # one reduction is much cheaper than isfinite(); a non-finite sum is then confirmed
        if not torch.isfinite(w.sum(dtype=torch.float32)) and not torch.isfinite(w).all():
            raise CheckpointError(f"{src.path}: tensor {src.ckpt_name(name)} contains NaN or Inf")
        return w

    for name in expected_tensors(config):
        module_name, _, kind = name.rpartition(".")
        module = model.get_submodule(module_name)
        if isinstance(module, Linear):
            if kind == "bias":
                continue  # installed with its weight
            bias_name = module_name + ".bias"
            bias = read(bias_name) if module.bias is not None else None
            if cached is not None and module_name in cached:
                module.set_quantized(cached[module_name], bias, dtype, device)
            else:
                module.set_weight(read(name), bias, plan.format_of(module_name), dtype, device)
        else:  # embedding, norms: always the compute dtype (norm weights are tiny)
            setattr(module, kind, torch.nn.Parameter(read(name).to(dtype), requires_grad=False))
    if config.tie_embeddings:
        if cached is not None and "lm_head" in cached:
            model.lm_head.set_quantized(cached["lm_head"], None, dtype, device)
        else:
            model.lm_head.set_weight(model.embed.weight, None, plan.format_of("lm_head"), dtype, device)
    if entry is not None and cached is None:
        entry.save({n: m.qweight for n, m in linears.items() if m.qweight is not None})
    model.inv_freq = rope_inv_freq(config).to(device)
    model.dtype = dtype
    model.precision = plan.precision
    model.plan = plan
    model.source = src.path
    model.load_info = {"seconds": time.perf_counter() - t_start,
                       "qcache": None if entry is None else ("hit" if cached is not None else "miss"),
                       "qcache_path": entry.tensors_path if entry is not None else None}
    model.eval()
    if tokenizer:
        tok = src.tokenizer()
        if tok.vocab_size > config.vocab_size:
            raise CheckpointError(f"{src.path}: config contradicts the weights: the tokenizer has "
                                  f"{tok.vocab_size} tokens but the embedding only {config.vocab_size} rows")
        model.tokenizer = tok
    return model
