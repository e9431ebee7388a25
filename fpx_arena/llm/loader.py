"""load_model(source, precision, device): a checkpoint (HF folder, .gguf file or model name)
into a ready ``Transformer`` with its tokenizer, each linear layer in the format its precision
plan gives it.

A checkpoint is read at most once per process: its tensors are kept in a ``CheckpointState``
(a process-wide cache keyed by the checkpoint's path, size and modification time), so a second
``load_model`` of the same checkpoint at another precision, and ``model.add_plan(...)``, read
nothing from disk again. Each ``load_model`` call still returns its own model object (own
default cache, own active plan); ``shared_model`` returns one model per (checkpoint, device)
that holds several plans, for agents that share weights and switch plans per decision.
"""
from __future__ import annotations

import os
import threading
import time
import weakref

import torch

from ..errors import CheckpointError
from . import plans as plans_mod
from . import qcache as qc
from .calibrate import plan_for_model
from .checkpoint import GGUFSource, HFSource
from .linear import own_copy
from .model import Transformer, rope_inv_freq
from .registry import resolve


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def open_checkpoint(source: str):
    """The TensorSource of a model name, HF folder or .gguf file (config checked against weights)."""
    path, kind = resolve(source)
    src = GGUFSource(path) if kind == "gguf" else HFSource(path)
    src.check()
    return src


class CheckpointState:
    """A checkpoint's tensors, each read (and checked for NaN/Inf) at most once, kept on the
    CPU as read; ``reads`` counts the tensors actually read from the files."""

    def __init__(self, src):
        self.src = src
        self.tensors: dict[str, torch.Tensor] = {}
        self.reads = 0
        self._lock = threading.Lock()
        self._tokenizer = None

    def __call__(self, name: str) -> torch.Tensor:
        with self._lock:
            t = self.tensors.get(name)
            if t is None:
                t = self.src.get(name)
                # one reduction is much cheaper than isfinite(); a non-finite sum is then confirmed
                if not torch.isfinite(t.sum(dtype=torch.float32)) and not torch.isfinite(t).all():
                    raise CheckpointError(f"{self.src.path}: tensor {self.src.ckpt_name(name)} contains NaN or Inf")
                self.tensors[name] = t
                self.reads += 1
            return t

    def tokenizer(self):
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = self.src.tokenizer()
            return self._tokenizer


_STATES: dict[tuple, "weakref.ref[CheckpointState]"] = {}
_STATES_LOCK = threading.Lock()


def _state_key(path: str) -> tuple:
    path = os.path.realpath(path)
    files = qc.checkpoint_files(path) if os.path.isdir(path) else [path]
    # ctime and inode too: a file rewritten in place keeping its size and mtime still changes them
    stats = [(f, os.stat(f)) for f in files]
    return (path,) + tuple((f, s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino) for f, s in stats)


def checkpoint_state(source: str) -> CheckpointState:
    """The process's CheckpointState of a model name, folder or file (opened on first use; kept
    while a model loaded from it lives)."""
    path, _ = resolve(source)
    key = _state_key(path)
    with _STATES_LOCK:
        ref = _STATES.get(key)
        state = ref() if ref is not None else None
        if state is None:
            state = CheckpointState(open_checkpoint(path))
            _STATES[key] = weakref.ref(state)
        return state


class CheckpointWeights:
    """A model's weight source (``Transformer.weight_source``): plans from precision strings
    over a checkpoint, built from its CheckpointState and the quantized-weight cache."""

    def __init__(self, state: CheckpointState, device, qcache: bool | None):
        self.state, self.device = state, torch.device(device)
        self.qcache = qc.enabled() if qcache is None else qcache
        self.last_build: dict = {}

    def plan(self, precision: str, model, lm_head: str | None = None, eps: dict | None = None):
        shapes = {n: (m.out_features, m.in_features) for n, m in model.linear_layers().items()}
        return plan_for_model(precision, self.state.src, shapes, self.device, lm_head, load_dense=_load_dense)

    def build(self, model, plan, pool: dict) -> plans_mod.PlanWeights:
        t0 = time.perf_counter()
        entry, cached = None, None
        if plan.quantized and self.qcache:
            entry = qc.QuantCache(qc.checkpoint_sha256(self.state.src.path), plan.formats)
            cached = entry.load(self.device)
        pw = plans_mod.build(model, plan, self.state, self.device, cached, pool)
        if entry is not None and cached is None:
            entry.save({n: own_copy(q) for n, (_, q, _, _) in pw.linears.items() if q is not None})
        self.last_build = {"seconds": time.perf_counter() - t0,
                           "qcache": None if entry is None else ("hit" if cached is not None else "miss"),
                           "qcache_path": entry.tensors_path if entry is not None else None}
        return pw


def _load_dense(path: str, device):
    """A bf16 model for FPX calibration (calibrate.py cannot import this module: it is imported here)."""
    return load_model(path, "bf16", device)


def load_model(source, precision: str = "bf16", device=None, *, tokenizer: bool = True,
               lm_head: str | None = None, qcache: bool | None = None) -> Transformer:
    """Load a checkpoint. `precision` picks the plan (see precision.py: fp32, bf16, fp8, fp4,
    nvfp4, mxfp4, fpx:<gamma>, a plan file); `lm_head` the lm_head's format (default bf16);
    `device` defaults to CUDA when there is one. Quantized weights are read from the
    quantized-weight cache when it holds them, else quantized and written there (`qcache`:
    None follows $FPX_ARENA_QCACHE, default on). The model carries .tokenizer, .config, .plan,
    .source and .load_info (cache hit or miss, seconds); ``model.add_plan(precision)`` makes
    more plans resident without reading the checkpoint again."""
    t_start = time.perf_counter()
    device = torch.device(device or default_device())
    state = checkpoint_state(os.fspath(source))
    src = state.src
    config = src.config
    with torch.device("meta"):
        model = Transformer(config, dtype=torch.float32)
    model.weight_source = CheckpointWeights(state, device, qcache)
    model.add_plan(precision, lm_head=lm_head)
    model.inv_freq = rope_inv_freq(config).to(device)
    model.source = src.path
    model.load_info = {"seconds": time.perf_counter() - t_start,
                       "qcache": model.weight_source.last_build.get("qcache"),
                       "qcache_path": model.weight_source.last_build.get("qcache_path")}
    model.eval()
    if tokenizer:
        tok = state.tokenizer()
        if tok.vocab_size > config.vocab_size:
            raise CheckpointError(f"{src.path}: config contradicts the weights: the tokenizer has "
                                  f"{tok.vocab_size} tokens but the embedding only {config.vocab_size} rows")
        model.tokenizer = tok
    return model


_SHARED: dict[tuple, Transformer] = {}
_SHARED_LOCK = threading.Lock()


def shared_model(source, precision: str = "bf16", device=None) -> tuple[Transformer, str]:
    """(model, plan name): one model per (checkpoint, device) in this process, holding every
    plan asked of it; agents that share it keep their own KV caches and switch to their plan
    under ``model.using(name)``."""
    device = str(torch.device(device or default_device()))
    path, _ = resolve(os.fspath(source))
    key = (_state_key(path), device)
    with _SHARED_LOCK:
        model = _SHARED.get(key)
        if model is None:
            model = load_model(path, precision, device)
            _SHARED[key] = model
            return model, model.plan_name
    return model, model.add_plan(precision)
