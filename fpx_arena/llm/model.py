"""A decoder-only transformer for the Llama family (Llama 2/3/3.1/3.2, Mistral, SmolLM) and
Qwen2/2.5/3, in the style of gpt-fast: one file, a dataclass config, a static KV cache and a
prefill/decode split.

The variants differ only in small switches on ``ModelConfig``: grouped-query attention
(``n_kv_heads``), a bias on q/k/v (Qwen2), an RMSNorm on each head's q and k (Qwen3), tied
input/output embeddings, and the rope frequency scaling (``rope_scaling``: linear or llama3).
Weights are in the Hugging Face layout (rope rotates the two halves of each head).

Entry points on ``Transformer``:
- ``logits(input_ids)``: full causal forward, no cache: [batch, seq] -> [batch, seq, vocab]
  (``forward``/``model(ids)`` is the same with autograd, for training).
- ``prefill(ids, cache=None)`` / ``decode(token, cache=None)``: append to a ``KVCache`` and
  return the next-token logits of the last position. A model has a default cache; agents that
  share one model's weights each make their own with ``new_cache()``.
- ``score_continuations(candidates, cache=None)``: the total log-probability of each candidate
  token sequence after what the cache holds, in one forward (candidates packed, block mask).
"""
from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from . import fastpath
from . import plans as plans_mod
from .linear import Linear


@dataclass
class ModelConfig:
    arch: str = "llama"  # llama | mistral | qwen2 | qwen3 (llama covers SmolLM)
    vocab_size: int = 32000
    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: int = 32
    head_dim: int = 128
    intermediate_size: int = 11008
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None  # {"rope_type": "linear"|"llama3", "factor": ..., ...}
    max_position: int = 4096
    tie_embeddings: bool = False
    qkv_bias: bool = False  # Qwen2 (and Llama's attention_bias, which also biases o_proj)
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False  # Qwen3
    sliding_window: int | None = None  # Mistral v0.1: the context is capped at the window
    name: str = ""
    extra: dict = field(default_factory=dict)  # e.g. GGUF rope_freqs, kept for reference

    @property
    def max_context(self) -> int:
        return min(self.max_position, self.sliding_window or self.max_position)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra", None)
        return d

    def n_params(self) -> int:
        attn = self.dim * self.head_dim * (2 * self.n_heads + 2 * self.n_kv_heads)
        mlp = 3 * self.dim * self.intermediate_size
        emb = self.vocab_size * self.dim * (1 if self.tie_embeddings else 2)
        return self.n_layers * (attn + mlp + 2 * self.dim) + emb + self.dim

    # Shapes of well-known models, for benchmarks with random weights.
    @classmethod
    def preset(cls, name: str) -> ModelConfig:
        presets = {
            "smollm2-135m": dict(arch="llama", vocab_size=49152, dim=576, n_layers=30, n_heads=9,
                                 n_kv_heads=3, head_dim=64, intermediate_size=1536,
                                 rope_theta=100000.0, max_position=8192, tie_embeddings=True),
            "llama-3.2-1b": dict(arch="llama", vocab_size=128256, dim=2048, n_layers=16, n_heads=32,
                                 n_kv_heads=8, head_dim=64, intermediate_size=8192,
                                 rope_theta=500000.0, max_position=131072, tie_embeddings=True,
                                 rope_scaling={"rope_type": "llama3", "factor": 32.0,
                                               "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                               "original_max_position_embeddings": 8192}),
            "llama-3-8b": dict(arch="llama", vocab_size=128256, dim=4096, n_layers=32, n_heads=32,
                               n_kv_heads=8, head_dim=128, intermediate_size=14336,
                               rope_theta=500000.0, max_position=8192),
        }
        if name not in presets:
            raise KeyError(f"no preset {name!r}; known: {', '.join(presets)}")
        return cls(name=name, **presets[name])


def rope_inv_freq(config: ModelConfig) -> torch.Tensor:
    """Per-pair rotation frequencies (fp32, [head_dim // 2]) including frequency scaling."""
    hd = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    scaling = config.rope_scaling or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "linear":
        inv_freq = inv_freq / scaling["factor"]
    elif kind == "llama3":
        # Llama 3.1: long wavelengths slowed by `factor`, short ones kept, a smooth ramp between.
        factor = scaling["factor"]
        low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
        old_len = scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < old_len / high) & ~(wavelen > old_len / low)
        inv_freq = torch.where(medium, smoothed, scaled)
    elif kind not in ("default", None):
        raise ValueError(f"rope scaling type {kind!r} is not supported (supported: linear, llama3)")
    if "rope_freqs" in config.extra:  # GGUF stores llama3 scaling as per-pair divisors
        inv_freq = inv_freq / config.extra["rope_freqs"].float()
    return inv_freq


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [B, T, H, hd]; cos/sin: [T, hd] (fp32). Rotates the two halves of each head."""
    half = x.shape[-1] // 2
    xf = x.float()
    rotated = torch.cat((-xf[..., half:], xf[..., :half]), dim=-1)
    out = xf * cos[:, None, :] + rotated * sin[:, None, :]
    return out.to(x.dtype)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float, device=None, dtype=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


class KVCache:
    """Preallocated keys and values for every layer: [layers, batch, kv_heads, capacity, hd].
    ``length`` is how many positions hold valid entries; lowering it (``truncate``) forgets the
    tail, which is how a prompt's fixed prefix is kept while the rest is replaced."""

    def __init__(self, config: ModelConfig, batch: int, capacity: int, dtype, device):
        shape = (config.n_layers, batch, config.n_kv_heads, capacity, config.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.length = 0
        self.limit = config.max_context
        self.last_logits: torch.Tensor | None = None  # next-token logits after `length` tokens

    @property
    def capacity(self) -> int:
        return self.k.shape[3]

    def reserve(self, needed: int) -> None:
        """Grow (rarely: doubling, copying the valid part) so that `needed` positions fit."""
        if needed > self.limit:
            raise ValueError(f"sequence of {needed} tokens exceeds the model's context of {self.limit}")
        if needed <= self.capacity:
            return
        new_cap = min(self.limit, max(needed, 2 * self.capacity))
        for name in ("k", "v"):
            old = getattr(self, name)
            new = old.new_zeros(old.shape[:3] + (new_cap, old.shape[4]))
            new[:, :, :, : self.length] = old[:, :, :, : self.length]
            setattr(self, name, new)

    def truncate(self, length: int) -> None:
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot truncate a cache of {self.length} tokens to {length}")
        if length != self.length:
            self.last_logits = None
        self.length = length


class Attention(nn.Module):
    def __init__(self, c: ModelConfig, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.n_heads, self.n_kv_heads, self.head_dim = c.n_heads, c.n_kv_heads, c.head_dim
        self.q_proj = Linear(c.dim, c.n_heads * c.head_dim, c.qkv_bias, **kw)
        self.k_proj = Linear(c.dim, c.n_kv_heads * c.head_dim, c.qkv_bias, **kw)
        self.v_proj = Linear(c.dim, c.n_kv_heads * c.head_dim, c.qkv_bias, **kw)
        self.o_proj = Linear(c.n_heads * c.head_dim, c.dim, c.o_bias, **kw)
        self.q_norm = RMSNorm(c.head_dim, c.norm_eps, **kw) if c.qk_norm else None
        self.k_norm = RMSNorm(c.head_dim, c.norm_eps, **kw) if c.qk_norm else None
        self.fused_qkv = None  # q, k, v as one projection (set by the plan; see plans.py)

    def forward(self, x, cos, sin, kv: tuple | None, start: int, mask: torch.Tensor | None):
        B, T, _ = x.shape
        fused = self.fused_qkv
        if kv is not None and fused is not None and fused.current():
            # the cached path (prefill, decode, scoring) streams q, k, v in one product; the
            # full forward keeps one call per layer for calibration hooks and training
            q, k, v = fused(x).split(fused.splits, dim=-1)
        else:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        q = q.reshape(B, T, self.n_heads, self.head_dim)
        k = k.reshape(B, T, self.n_kv_heads, self.head_dim)
        v = v.reshape(B, T, self.n_kv_heads, self.head_dim)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q = apply_rope(q, cos, sin).transpose(1, 2)
        k = apply_rope(k, cos, sin).transpose(1, 2)
        v = v.transpose(1, 2)
        if kv is not None and isinstance(start, torch.Tensor):
            # static shapes (CUDA graphs): the slots are a tensor, attention spans the cache's
            # first mask.shape[-1] slots and the caller's mask hides those not yet written
            k_cache, v_cache = kv
            k_cache.index_copy_(2, start, k)
            v_cache.index_copy_(2, start, v)
            k, v = k_cache[:, :, :mask.shape[-1]], v_cache[:, :, :mask.shape[-1]]
        elif kv is not None:  # write this step's keys/values, attend over everything so far
            k_cache, v_cache = kv
            k_cache[:B, :, start:start + T] = k
            v_cache[:B, :, start:start + T] = v
            k, v = k_cache[:B, :, :start + T], v_cache[:B, :, :start + T]
        causal = mask is None and T > 1 and start == 0
        if mask is None and T > 1 and start > 0:
            mask = _offset_causal_mask(T, start, x.device)
        gqa = self.n_heads != self.n_kv_heads
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=gqa)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))


def _offset_causal_mask(T: int, start: int, device) -> torch.Tensor:
    """[T, start+T] bool: query i (at slot start+i) sees slots 0..start+i."""
    q_slot = torch.arange(start, start + T, device=device)[:, None]
    k_slot = torch.arange(start + T, device=device)[None, :]
    return k_slot <= q_slot


class MLP(nn.Module):
    def __init__(self, c: ModelConfig, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.gate_proj = Linear(c.dim, c.intermediate_size, c.mlp_bias, **kw)
        self.up_proj = Linear(c.dim, c.intermediate_size, c.mlp_bias, **kw)
        self.down_proj = Linear(c.intermediate_size, c.dim, c.mlp_bias, **kw)
        self.fused_gate_up = None  # gate and up as one projection (set by the plan)

    def forward(self, x, cached: bool = False):
        fused = self.fused_gate_up
        if cached and fused is not None and fused.current():
            gate, up = fused(x).split(fused.splits, dim=-1)
        else:
            gate, up = self.gate_proj(x), self.up_proj(x)
        return self.down_proj(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, c: ModelConfig, device=None, dtype=None):
        super().__init__()
        self.attn_norm = RMSNorm(c.dim, c.norm_eps, device=device, dtype=dtype)
        self.attn = Attention(c, device=device, dtype=dtype)
        self.mlp_norm = RMSNorm(c.dim, c.norm_eps, device=device, dtype=dtype)
        self.mlp = MLP(c, device=device, dtype=dtype)

    def forward(self, x, cos, sin, kv, start, mask):
        x = x + self.attn(self.attn_norm(x), cos, sin, kv, start, mask)
        return x + self.mlp(self.mlp_norm(x), kv is not None)


class Transformer(nn.Module):
    def __init__(self, config: ModelConfig, device=None, dtype=torch.float32):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.dim, device=device, dtype=dtype)
        self.embed.weight.requires_grad_(False)
        self.layers = nn.ModuleList(Block(config, device, dtype) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.dim, config.norm_eps, device=device, dtype=dtype)
        self.lm_head = Linear(config.dim, config.vocab_size, False, device=device, dtype=dtype)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed.weight
        self.register_buffer("inv_freq", rope_inv_freq(config).to(device), persistent=False)
        self.dtype = dtype
        self.cache: KVCache | None = None  # the default cache of prefill()/decode()
        self.tokenizer = None  # set by load_model
        self.precision = {torch.float32: "fp32", torch.bfloat16: "bf16"}.get(dtype, str(dtype))
        self.plan = None  # the active precision plan (precision.Plan), when plans are used
        self.plan_name = None
        self.weight_source = None  # where add_plan reads weights (the loader's checkpoint state)
        self._plans: dict[str, plans_mod.PlanWeights] = {}
        self._dense_pool: dict = {}  # dense tensors shared by the plans
        self.lock = threading.RLock()  # held by callers that switch plans and run a forward

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    # --- precision plans --------------------------------------------------------------------
    @property
    def plans(self) -> tuple[str, ...]:
        """Names of the plans this model holds (``add_plan`` returns them)."""
        return tuple(self._plans)

    def add_plan(self, precision: str, lm_head: str | None = None, eps: dict | None = None) -> str:
        """Make the weights of another precision plan resident (fp32, bf16, fp8, fp4, nvfp4,
        mxfp4, fpx:<gamma>, a plan file; see precision.py) and return its name; the active
        plan does not change. Weights come from ``weight_source`` (a checkpoint is not read
        again); dense tensors that plans share are held once. Adding a plan it holds already
        returns that plan's name."""
        with self.lock:
            if self.weight_source is None:
                self.weight_source = plans_mod.DenseSource(self)
            plan = self.weight_source.plan(precision, self, lm_head, eps=eps)
            if plan.precision in self._plans:
                return plan.precision
            active = self._plans.get(self.plan_name)
            pw = self.weight_source.build(self, plan, self._dense_pool)
            self._plans[pw.name] = pw
            plans_mod.install(self, active if active is not None else pw)
            return pw.name

    def drop_plan(self, name: str) -> None:
        """Free a plan's weights (not the active one); dense tensors other plans use stay."""
        with self.lock:
            key = self.plan_key(name)
            if key == self.plan_name:
                from ..errors import UserError

                raise UserError(f"plan {key!r} is active: switch to another before dropping it")
            del self._plans[key]
            used = set()
            for pw in self._plans.values():
                used.update(id(t) for t in pw.dense.values())
                used.update(id(w) for w, _, _, _ in pw.linears.values() if w is not None)
            self._dense_pool = {k: t for k, t in self._dense_pool.items() if id(t) in used}

    def plan_key(self, name: str) -> str:
        """The name of the held plan that `name` (a plan name or a precision string) denotes."""
        if name in self._plans:
            return name
        from .precision import ALIASES, split_precision

        base, head = split_precision(name)
        alias = ALIASES.get(base.strip().lower(), base.strip().lower()) + (f",head={head}" if head else "")
        if alias in self._plans:
            return alias
        from ..errors import UserError

        raise UserError(f"the model holds no plan {name!r} (it holds {', '.join(self._plans) or 'none'}; "
                        "add_plan() makes one)")

    def use_plan(self, name: str) -> None:
        """Run the following calls with plan ``name``'s weights (a few thousand attribute
        writes at most; nothing is copied, CUDA graphs of other plans stay valid)."""
        key = self.plan_key(name)
        if key != self.plan_name:
            plans_mod.install(self, self._plans[key])

    @contextmanager
    def using(self, name: str):
        """Hold the model's lock with plan ``name`` active: agents that share the model call
        it around a decision, so one thread's plan never runs another's forward."""
        with self.lock:
            self.use_plan(name)
            yield self._plans[self.plan_name]

    def plan_weights(self, name: str | None = None) -> plans_mod.PlanWeights:
        return self._plans[self.plan_key(name or self.plan_name)]

    def plan_bytes(self, name: str | None = None) -> int:
        """Resident bytes of the tensors plan ``name`` (default: the active one) reads:
        linear weights with their scales, biases, embedding and norms (shared ones counted)."""
        return self.plan_weights(name).nbytes()

    def weight_bytes(self, name: str | None = None) -> int:
        """Bytes one decode step streams under plan ``name``: every linear weight (with its
        scales) and the norms, not the embedding table (one row is read)."""
        pw = self.plan_weights(name)
        total = 0
        for w, q, b, _ in pw.linears.values():
            if q is not None:
                total += q.nbytes
            elif w is not None:
                total += w.numel() * w.element_size()
            if b is not None:
                total += b.numel() * b.element_size()
        for n, p in pw.dense.items():
            if n != "embed":
                total += p.numel() * p.element_size()
        return total

    def linear_layers(self) -> dict[str, Linear]:
        """Every Linear by its name (the keys of a precision plan)."""
        return {n: m for n, m in self.named_modules() if isinstance(m, Linear)}

    # --- the forward pass -------------------------------------------------------------------
    def forward_tokens(self, tokens, positions, cache: KVCache | None, start: int, mask, out_rows=None):
        """The one forward: training, prefill, decode and graphs call it. tokens [B, T];
        positions [T] rope positions; the step's keys/values go to cache
        slots start..start+T-1. ``out_rows`` selects the positions whose logits are wanted."""
        freqs = positions.to(torch.float32)[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        x = self.embed(tokens)
        for i, layer in enumerate(self.layers):
            kv = (cache.k[i], cache.v[i]) if cache is not None else None
            x = layer(x, cos, sin, kv, start, mask)
        if out_rows is not None:
            x = x[:, out_rows]
        return self.lm_head(self.norm(x)).float()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Full causal forward without a cache (autograd works: training uses it):
        [batch, seq] -> [batch, seq, vocab] fp32 logits."""
        T = input_ids.shape[1]
        if T > self.config.max_context:
            raise ValueError(f"sequence of {T} tokens exceeds the model's context of {self.config.max_context}")
        return self.forward_tokens(input_ids, torch.arange(T, device=input_ids.device), None, 0, None)

    @torch.inference_mode()
    def logits(self, input_ids) -> torch.Tensor:
        """forward() for inference: ids as a list, [seq] or [batch, seq] -> [batch, seq, vocab]."""
        ids = torch.as_tensor(input_ids, device=self.device)
        return self.forward(ids[None] if ids.dim() == 1 else ids)

    # --- the cached path --------------------------------------------------------------------
    def new_cache(self, capacity: int = 512, batch: int = 1) -> KVCache:
        return KVCache(self.config, batch, min(capacity, self.config.max_context), self.dtype, self.device)

    def setup_cache(self, capacity: int = 2048, batch: int = 1) -> KVCache:
        """(Re)allocate the default cache."""
        self.cache = self.new_cache(capacity, batch)
        return self.cache

    def _cache(self, cache: KVCache | None) -> KVCache:
        if cache is not None:
            return cache
        if self.cache is None:
            self.setup_cache()
        return self.cache

    def reset(self, cache: KVCache | None = None) -> None:
        self._cache(cache).truncate(0)

    @torch.inference_mode()
    def prefill(self, ids, cache: KVCache | None = None, all_logits: bool = False) -> torch.Tensor:
        """Append tokens ([T] or [B, T]) to the cache. Returns the last position's logits
        ([B, vocab], fp32), or every position's ([B, T, vocab]) with all_logits."""
        cache = self._cache(cache)
        ids = torch.as_tensor(ids, device=self.device)
        if ids.dim() == 1:
            ids = ids[None]
        T = ids.shape[1]
        if T == 0:
            raise ValueError("prefill needs at least one token")
        start = cache.length
        cache.reserve(start + T)
        positions = torch.arange(start, start + T, device=self.device)
        rows = None if all_logits else slice(T - 1, T)
        out = self.forward_tokens(ids, positions, cache, start, None, rows)
        cache.length = start + T
        cache.last_logits = out[0, -1]
        return out if all_logits else out[:, -1]

    @torch.inference_mode()
    def decode(self, token, cache: KVCache | None = None) -> torch.Tensor:
        """Append one token per row (int, [B] or [B, 1]); returns next-token logits [B, vocab]."""
        cache = self._cache(cache)
        ids = torch.as_tensor(token, device=self.device).reshape(-1, 1)
        start = cache.length
        cache.reserve(start + 1)
        positions = torch.arange(start, start + 1, device=self.device)
        if ids.shape[0] == 1 and fastpath.usable(self, cache):  # the fused kernels (CUDA)
            out = fastpath.decode_step(self, cache, ids[0], positions).float()
        else:
            out = self.forward_tokens(ids, positions, cache, start, None)[:, -1]
        cache.length = start + 1
        cache.last_logits = out[0]
        return out

    @torch.inference_mode()
    def generate(self, ids, max_new_tokens: int, stop_ids=(), cache: KVCache | None = None,
                 append: bool = False) -> list[int]:
        """Greedy continuation of `ids`, stopping after a stop id. The cache is emptied first
        unless append=True (then `ids` continue what it holds)."""
        if not append:
            self.reset(cache)
        logits = self.prefill(ids, cache)[0]
        out: list[int] = []
        for _ in range(max_new_tokens):
            token = int(torch.argmax(logits))
            out.append(token)
            if token in stop_ids or len(out) == max_new_tokens:
                break
            logits = self.decode(token, cache)[0]
        return out

    @torch.inference_mode()
    def score_continuations(self, candidates: list[list[int]], cache: KVCache | None = None,
                            context=None, runner=None) -> torch.Tensor:
        """Total log-probability of each candidate token sequence following the cached tokens
        (row 0), in one forward: candidates are packed in one row after the cache, each seeing
        the whole cache and its own earlier tokens only (block-diagonal causal mask), with rope
        positions restarting after the cache for each. Their keys are written past the cache's
        length and forgotten.

        With `context` (token ids), those tokens go first in the same forward and stay in the
        cache: appending a prompt's tail and scoring the answers cost one pass, not two.
        Without it, the cache's next-token logits (from the prefill/decode that filled it)
        score each candidate's first token.

        `runner` (cuda_graph.GraphScorer) replaces the forward with a replayed CUDA graph; it
        returns None when the packed row does not fit one of its graphs, and the eager forward
        runs instead."""
        cache = self._cache(cache)
        ctx = [int(t) for t in (context if context is not None else [])]
        if not ctx and cache.last_logits is None:
            raise ValueError("score_continuations needs a cache filled by prefill() or decode(), or a context")
        if not candidates or any(len(c) == 0 for c in candidates):
            raise ValueError("every candidate needs at least one token")
        P, C, dev = cache.length, len(ctx), self.device
        fed = [c[:-1] for c in candidates]  # a candidate's last token is only scored, never fed
        tokens = ctx + [t for f in fed for t in f]
        T = len(tokens)
        firsts = [c[0] for c in candidates]
        if T == 0:
            return torch.log_softmax(cache.last_logits.float(), -1)[firsts]
        positions = torch.tensor(list(range(P, P + C)) + [P + C + j for f in fed for j in range(len(f))], device=dev)
        group = torch.tensor([-1] * C + [i for i, f in enumerate(fed) for _ in f], device=dev)  # -1: context
        rows = slice(max(C - 1, 0), T)  # the context's last position, then every candidate token
        logits = runner(tokens, positions, group) if runner is not None else None
        if logits is not None:
            logits = logits[rows]
        else:
            cache.reserve(P + T)
            mask = torch.ones(T, P + T, dtype=torch.bool, device=dev)
            visible = (group[None, :] == -1) | (group[None, :] == group[:, None])
            mask[:, P:] = visible & (positions[None, :] <= positions[:, None])
            logits = self.forward_tokens(torch.tensor(tokens, device=dev)[None], positions, cache, P, mask, rows)[0]
        if C:
            cache.length, cache.last_logits = P + C, logits[0]
            logits = logits[1:]
        first = torch.log_softmax(cache.last_logits.float(), -1)[firsts]
        if logits.shape[0] == 0:
            return first
        targets = torch.tensor([t for c in candidates for t in c[1:]], device=dev)
        token_logp = torch.log_softmax(logits, -1).gather(-1, targets[:, None])[:, 0]
        rest = torch.zeros(len(candidates), device=dev).index_add_(0, group[C:], token_logp)
        return first + rest


def init_random(model: Transformer, seed: int = 0, std: float = 0.02) -> Transformer:
    """Fill a model with random weights (benchmarks of well-known shapes; tests), drawn on the
    model's device."""
    g = torch.Generator(device=model.device).manual_seed(seed)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            p.data.fill_(1.0)
        else:
            p.data.normal_(0.0, std, generator=g)
    return model
