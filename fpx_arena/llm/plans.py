"""Several precision plans resident in one model, switched per call.

A plan's weights are a ``PlanWeights``: for every ``Linear`` its weight (dense) or quantized
weight, its bias and format; the embedding and norm weights; the fused projections (q/k/v and
gate/up, see ``linear.FusedLinear``); the compute dtype. ``install`` points the model's modules
at one plan's tensors (attribute assignments only: no copy, no allocation), so a switch costs
microseconds and a CUDA graph captured under a plan keeps reading that plan's tensors.

Weights come from a reader (``read(name) -> tensor``): the loader's ``CheckpointState`` (each
checkpoint tensor read from disk at most once per process) or ``RandomWeights`` (benchmarks:
tensors of a shape drawn from a seed, nothing kept). Dense tensors that several plans use in the
same dtype (embedding, norms, a bf16 lm_head, a layer that a plan leaves dense) are made once
and shared.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import torch
from torch import nn

from .linear import DENSE_FORMATS, FusedLinear, Linear, fuse
from .precision import Plan
from .tensors import expected_tensors

QKV = ("q_proj", "k_proj", "v_proj")
GATE_UP = ("gate_proj", "up_proj")


@dataclass
class PlanWeights:
    name: str
    plan: Plan
    dtype: torch.dtype
    linears: dict = field(default_factory=dict)   # name -> (weight, qweight, bias, fmt)
    dense: dict = field(default_factory=dict)     # embed / norm module name -> weight Parameter
    fused: list = field(default_factory=list)     # per layer: (qkv FusedLinear | None, gate_up | None)
    graphs: dict = field(default_factory=dict)    # runners captured under this plan (see cuda_graph)

    def tensors(self):
        """Every tensor this plan reads (shared ones included), each once."""
        seen = {}
        for w, q, b, _ in self.linears.values():
            for t in (w, b):
                if t is not None:
                    seen[id(t)] = t
            if q is not None:
                parent = getattr(q, "_fpx_rows_of", None)
                for t in _qtensors(parent[0] if parent else q):
                    seen.setdefault(id(t), t)
        for p in self.dense.values():
            seen[id(p)] = p
        # row views of one fused weight share its storage: count each storage once
        by_storage = {}
        for t in seen.values():
            key = (t.untyped_storage().data_ptr(), t.device)
            by_storage[key] = max(by_storage.get(key, 0), t.untyped_storage().nbytes())
        return by_storage

    def nbytes(self) -> int:
        return sum(self.tensors().values())


def _qtensors(qw):
    return [v for v in vars(qw).values() if isinstance(v, torch.Tensor)]


def snapshot(model, name: str, plan: Plan) -> PlanWeights:
    pw = PlanWeights(name, plan, model.dtype)
    for n, m in model.linear_layers().items():
        pw.linears[n] = (m.weight, m.qweight, m.bias, m.fmt)
    for n, m in model.named_modules():
        if isinstance(m, nn.Embedding) or n.endswith("norm"):
            pw.dense[n] = m.weight
    pw.fused = [(blk.attn.fused_qkv, blk.mlp.fused_gate_up) for blk in model.layers]
    return pw


def install(model, pw: PlanWeights) -> None:
    """Point the model's modules at this plan's tensors (dictionary writes, no copies)."""
    for n, (w, q, b, fmt) in pw.linears.items():
        m = model.get_submodule(n)
        m._parameters["weight"], m._parameters["bias"] = w, b
        d = m.__dict__
        d["qweight"], d["fmt"] = q, fmt
    for n, p in pw.dense.items():
        model.get_submodule(n)._parameters["weight"] = p
    for blk, (qkv, gate_up) in zip(model.layers, pw.fused):
        blk.attn.__dict__["fused_qkv"] = qkv
        blk.mlp.__dict__["fused_gate_up"] = gate_up
    model.__dict__["dtype"] = pw.dtype
    model.__dict__["plan"] = pw.plan
    model.__dict__["precision"] = pw.plan.precision
    model.__dict__["plan_name"] = pw.name


def build(model, plan: Plan, read, device, cached: dict | None = None, pool: dict | None = None,
          fuse_groups: bool = True) -> PlanWeights:
    """Install ``plan``'s weights in the model's modules (reading them with ``read``) and return
    them as a PlanWeights. ``cached``: quantized weights by layer (the quantized-weight cache);
    ``pool``: dense tensors by (name, dtype) shared with the model's other plans."""
    pool = {} if pool is None else pool
    dtype = plan.compute_dtype
    config = model.config

    def dense(name: str, dt: torch.dtype) -> nn.Parameter:
        key = (name, dt)
        if key not in pool:
            pool[key] = nn.Parameter(read(name).to(device=device, dtype=dt), requires_grad=False)
        return pool[key]

    model.embed._parameters["weight"] = dense("embed.weight", dtype)
    for n, m in model.named_modules():
        if n.endswith("norm") and not isinstance(m, Linear):
            m._parameters["weight"] = dense(n + ".weight", dtype)

    def bias_of(n: str, m: Linear):
        return read(n + ".bias") if m.bias is not None else None

    def single(n: str, m: Linear, weight_name: str) -> None:
        fmt = plan.format_of(n)
        if fmt in DENSE_FORMATS:
            # a dense layer is rounded to its format and held in the compute dtype
            key = (weight_name, dtype) if DENSE_FORMATS[fmt] == dtype else (weight_name, DENSE_FORMATS[fmt], dtype)
            if key not in pool:
                w = read(weight_name).to(device=device, dtype=DENSE_FORMATS[fmt])
                pool[key] = nn.Parameter(w.to(dtype) if dtype in DENSE_FORMATS.values() else w,
                                         requires_grad=False)
            m.weight, m.qweight, m.fmt, m.dense_copy = pool[key], None, fmt, None
            b = bias_of(n, m)
            m.bias = None if b is None else nn.Parameter(b.to(device=device, dtype=dtype), requires_grad=False)
        elif cached is not None and n in cached:
            m.set_quantized(cached[n], bias_of(n, m), dtype, device)
        else:
            m.set_weight(read(weight_name), bias_of(n, m), fmt, dtype, device)

    fused = []
    for i, blk in enumerate(model.layers):
        groups = []
        for parent, names in ((blk.attn, QKV), (blk.mlp, GATE_UP)):
            prefix = f"layers.{i}.{'attn' if parent is blk.attn else 'mlp'}."
            members = [getattr(parent, n) for n in names]
            full = [prefix + n for n in names]
            f = fuse(members, plan.format_of, read, dtype, device, cached, full) if fuse_groups else None
            if f is None:
                for n, m in zip(full, members):
                    single(n, m, n + ".weight")
            groups.append(f)
        single(f"layers.{i}.attn.o_proj", blk.attn.o_proj, f"layers.{i}.attn.o_proj.weight")
        single(f"layers.{i}.mlp.down_proj", blk.mlp.down_proj, f"layers.{i}.mlp.down_proj.weight")
        fused.append(tuple(groups))
    single("lm_head", model.lm_head, "embed.weight" if config.tie_embeddings else "lm_head.weight")
    for blk, (qkv, gate_up) in zip(model.layers, fused):
        blk.attn.__dict__["fused_qkv"] = qkv
        blk.mlp.__dict__["fused_gate_up"] = gate_up
    model.__dict__["dtype"] = dtype
    return snapshot(model, plan.precision, plan)


class RandomWeights:
    """read(name) for benchmarks: the tensors of a model's shape drawn from a seed, on the
    device, each drawn again when asked again (nothing kept). Norm weights are ones."""

    def __init__(self, config, seed: int = 0, std: float = 0.02, device="cpu", dtype=torch.bfloat16):
        self.shapes = expected_tensors(config)
        self.seed, self.std, self.device, self.dtype = seed, std, torch.device(device), dtype

    def __call__(self, name: str) -> torch.Tensor:
        shape = self.shapes[name]
        if name.endswith("norm.weight"):
            return torch.ones(shape, device=self.device, dtype=self.dtype)
        g = torch.Generator(device=self.device).manual_seed(self.seed * 1000003 + zlib.crc32(name.encode()))
        out = torch.empty(shape, device=self.device, dtype=self.dtype)
        return out.normal_(0.0, self.std, generator=g)


class DenseSource:
    """read(name) over a model's own dense weights, taken when its first plan is added (a model
    built in memory, e.g. by ``init_random``): later plans quantize from them."""

    def __init__(self, model):
        self.tensors = {}
        for n, p in model.named_parameters(remove_duplicate=False):
            self.tensors[n] = p.detach()
        for n, m in model.linear_layers().items():
            if m.qweight is not None:
                raise ValueError(f"layer {n} is already quantized: no dense weights to build plans from")
        if model.config.tie_embeddings:
            self.tensors.pop("lm_head.weight", None)

    def __call__(self, name: str) -> torch.Tensor:
        return self.tensors[name]

    def plan(self, precision: str, model, lm_head: str | None = None, eps: dict | None = None) -> Plan:
        from .precision import make_plan

        return make_plan(precision, list(model.linear_layers()), lm_head=lm_head, eps=eps)

    def build(self, model, plan: Plan, pool: dict) -> PlanWeights:
        return build(model, plan, self, model.device, None, pool)


class RandomSource(RandomWeights):
    """A weight source of random weights (benchmarks of a model's shape, no checkpoint). An
    FPX plan ranks layers by their weights' own NVFP4 error ||W - Q(W)||^2 / ||W||^2 (no
    calibration text exists for random weights)."""

    def plan(self, precision: str, model, lm_head: str | None = None, eps: dict | None = None) -> Plan:
        from ..kernels import quantize_weight
        from .precision import is_block_linear, make_plan

        names = list(model.linear_layers())
        if eps is None and precision.strip().lower().startswith("fpx:"):
            eps = {}
            for n in names:
                if is_block_linear(n):
                    w = self(n + ".weight").float()
                    err = quantize_weight(w, "nvfp4").dequantize(torch.float32) - w
                    eps[n] = float(err.pow(2).sum() / w.pow(2).sum())
        return make_plan(precision, names, lm_head=lm_head, eps=eps)

    def build(self, model, plan: Plan, pool: dict) -> PlanWeights:
        return build(model, plan, self, self.device, None, pool)


def fused_groups(model) -> list[FusedLinear]:
    return [f for blk in model.layers for f in (blk.attn.fused_qkv, blk.mlp.fused_gate_up) if f is not None]
