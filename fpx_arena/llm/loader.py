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
from .precision import make_plan
from .registry import resolve


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def open_checkpoint(source: str):
    """The TensorSource of a model name, HF folder or .gguf file (config checked against weights)."""
    path, kind = resolve(source)
    src = GGUFSource(path) if kind == "gguf" else HFSource(path)
    src.check()
    return src


def load_model(source, precision: str = "bf16", device=None, *, tokenizer: bool = True) -> Transformer:
    """Load a checkpoint. `precision` picks the plan (fp32, bf16 today); `device` defaults to
    CUDA when there is one. The model carries .tokenizer, .config, .plan, .source."""
    device = torch.device(device or default_device())
    src = open_checkpoint(os.fspath(source))
    config = src.config
    with torch.device("meta"):
        model = Transformer(config, dtype=torch.float32)
    linears = model.linear_layers()
    plan = make_plan(precision, list(linears))
    dtype = plan.compute_dtype

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
            module.set_weight(read(name), bias, plan.format_of(module_name), dtype, device)
        else:  # embedding, norms: always the compute dtype (norm weights are tiny)
            setattr(module, kind, torch.nn.Parameter(read(name).to(dtype), requires_grad=False))
    if config.tie_embeddings:
        model.lm_head.set_weight(model.embed.weight, None, plan.format_of("lm_head"), dtype, device)
    model.inv_freq = rope_inv_freq(config).to(device)
    model.dtype = dtype
    model.precision = plan.precision
    model.plan = plan
    model.source = src.path
    model.eval()
    if tokenizer:
        tok = src.tokenizer()
        if tok.vocab_size > config.vocab_size:
            raise CheckpointError(f"{src.path}: config contradicts the weights: the tokenizer has "
                                  f"{tok.vocab_size} tokens but the embedding only {config.vocab_size} rows")
        model.tokenizer = tok
    return model
