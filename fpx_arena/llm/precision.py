"""Precision plans: which number format each linear layer of a model gets.

A plan is a dict {layer name -> format} over ``Transformer.linear_layers()`` plus the dtype in
which activations, norms, embeddings and attention run. ``Linear.set_weight`` applies a layer's
format when the weights are loaded.

Precision strings (``load_model(..., precision=)`` and ``llm:<model>@<precision>``):

- ``fp32`` (reference runs: everything fp32), ``bf16``: dense.
- ``fp8``, ``nvfp4`` (alias ``fp4``), ``mxfp4``: every linear layer of the transformer blocks in
  that format; embeddings, norms and attention math stay in bf16.
- ``fpx:<gamma>``: FPX. The fraction gamma of the block linear layers with the lowest FP4 output
  error eps_l (see ``calibrate.py``) in nvfp4, the rest in fp8; exactly round(gamma * L) layers.
- a path to a plan file (``*.json``, written by ``fpx-arena calibrate`` or ``Plan.save``): layer
  -> format, checked against the model's identity (checkpoint content hash and layer list).
- ``adaptive``: chosen per decision by an agent (``llm:<model>@adaptive``, docs/adaptive.md),
  never by a loaded model: one clear error here.

The lm_head stays bf16 unless asked otherwise: append ``,head=<fmt>`` (``fpx:0.3,head=fp8``)
or pass ``lm_head=`` to ``load_model``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import torch

from ..errors import UserError
from ..kernels import REGISTRY, aliases, quantized_formats

DENSE = {"fp32": torch.float32, "bf16": torch.bfloat16}
QUANTIZED = quantized_formats()          # the number-format registry (fpx_arena.kernels.formats)
ALIASES = aliases()
LAYER_FORMATS = ("bf16", "fp32") + QUANTIZED
PLAN_FILE_FORMAT = "fpx-arena-plan"
PLAN_FILE_VERSION = 1
NOMINAL_BITS = {name: f.bits for name, f in REGISTRY.items()}


def bits_with_scales(fmt: str, n: int, k: int) -> float:
    """Exact stored bits per weight of an [n, k] weight in ``fmt``, scales included."""
    return REGISTRY[fmt].bits_with_scales(n, k)


def is_block_linear(name: str) -> bool:
    """The layers a plan's recipe (fp8, fpx:...) quantizes: all but the lm_head."""
    return name != "lm_head"


@dataclass
class Plan:
    precision: str  # what the user asked for, e.g. "fpx:0.3"
    compute_dtype: torch.dtype
    formats: dict[str, str]  # Linear name -> format
    model_id: dict | None = None  # identity of the model a file plan was made for
    eps: dict[str, float] = field(default_factory=dict)  # calibration: FP4 error of each layer
    gamma: float | None = None
    calibration: dict = field(default_factory=dict)  # what the ranking was measured on

    def format_of(self, layer: str) -> str:
        try:
            return self.formats[layer]
        except KeyError:
            raise UserError(f"precision plan {self.precision!r} has no format for layer {layer!r}") from None

    @property
    def quantized(self) -> bool:
        return any(f in QUANTIZED for f in self.formats.values())

    def count(self, fmt: str) -> int:
        return sum(1 for f in self.formats.values() if f == fmt)

    def bits(self, shapes: dict[str, tuple[int, int]] | None = None) -> dict:
        """Average bits per weight of the block linear layers: by layer count (8 - 4 gamma for an
        FPX plan) and, given each layer's [N, K], weighted by parameters, with and without scales."""
        names = [n for n in self.formats if is_block_linear(n)]
        out = {"by_layer_count": sum(NOMINAL_BITS[self.formats[n]] for n in names) / max(1, len(names))}
        if shapes:
            params = sum(shapes[n][0] * shapes[n][1] for n in names)
            out["per_weight_nominal"] = sum(NOMINAL_BITS[self.formats[n]] * shapes[n][0] * shapes[n][1]
                                            for n in names) / params
            out["per_weight_with_scales"] = sum(bits_with_scales(self.formats[n], *shapes[n]) * shapes[n][0]
                                                * shapes[n][1] for n in names) / params
        return out

    # --- files ------------------------------------------------------------------------------
    def to_json(self, shapes=None) -> dict:
        d = {"format": PLAN_FILE_FORMAT, "version": PLAN_FILE_VERSION, "precision": self.precision,
             "compute_dtype": dtype_name(self.compute_dtype), "model": self.model_id,
             "formats": dict(self.formats)}
        if self.gamma is not None:
            d["gamma"] = self.gamma
        d["counts"] = {f: self.count(f) for f in LAYER_FORMATS if self.count(f)}
        d["bits"] = self.bits(shapes)
        if self.eps:
            d["eps"] = dict(self.eps)
        if self.calibration:
            d["calibration"] = dict(self.calibration)
        return d

    def save(self, path: str, shapes=None) -> None:
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_json(shapes), f, indent=1)
            f.write("\n")
        os.replace(tmp, path)


def dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.bfloat16: "bf16"}[dtype]


def split_precision(precision: str) -> tuple[str, str | None]:
    """'fpx:0.3,head=fp8' -> ('fpx:0.3', 'fp8')."""
    p = (precision or "bf16").strip()
    base, sep, rest = p.partition(",")
    head = None
    if sep:
        key, eq, value = rest.partition("=")
        if key.strip().lower() not in ("head", "lm_head") or not eq:
            raise UserError(f"precision {precision!r}: after the comma expected head=<format>")
        head = canonical_format(value, f"precision {precision!r}: lm_head")
    return base, head


def canonical_format(fmt: str, what: str = "format") -> str:
    f = ALIASES.get(str(fmt).strip().lower(), str(fmt).strip().lower())
    if f not in LAYER_FORMATS:
        raise UserError(f"{what} {fmt!r} is unknown; expected one of {', '.join(LAYER_FORMATS)} (or fp4)")
    return f


def parse_gamma(text: str, precision: str) -> float:
    try:
        gamma = float(text)
    except ValueError:
        raise UserError(f"precision {precision!r}: gamma must be a number in [0, 1]") from None
    if not 0.0 <= gamma <= 1.0:
        raise UserError(f"precision {precision!r}: gamma must be in [0, 1], got {gamma}")
    return gamma


def is_plan_file(base: str) -> bool:
    return base.lower().endswith(".json") or os.sep in base or (os.altsep or "\0") in base


def fpx_formats(eps: dict[str, float], gamma: float) -> dict[str, str]:
    """FPX: exactly round(gamma * L) layers with the lowest eps in nvfp4, the rest fp8 (ties
    broken by layer name, so the plan is deterministic)."""
    order = sorted(eps, key=lambda n: (eps[n], n))
    n_fp4 = int(round(gamma * len(order) + 1e-9))  # round half up: 0.5 * 7 -> 4
    return {n: ("nvfp4" if i < n_fp4 else "fp8") for i, n in enumerate(order)}


def make_plan(precision: str, layer_names: list[str], *, lm_head: str | None = None,
              eps: dict[str, float] | None = None, model_id: dict | None = None) -> Plan:
    """The plan for a precision string over the model's linear layers.

    With no layer names only the string is checked (agents do this before loading). ``eps``
    (layer -> FP4 error, from calibration) is needed for ``fpx:<gamma>`` over real layers;
    ``model_id`` (see ``qcache.model_identity``) is checked against a plan file's."""
    base, head = split_precision(precision)
    head = head or (canonical_format(lm_head, "lm_head format") if lm_head else None)
    p = base.lower()
    p = ALIASES.get(p, p)
    if p in DENSE:
        plan = Plan(p, DENSE[p], {name: p for name in layer_names})
    elif p in QUANTIZED:
        plan = Plan(p, torch.bfloat16, {n: (p if is_block_linear(n) else "bf16") for n in layer_names})
    elif p.startswith("fpx:"):
        gamma = parse_gamma(p[4:], precision)
        plan = Plan(p, torch.bfloat16, {}, gamma=gamma)
        if layer_names:
            blocks = [n for n in layer_names if is_block_linear(n)]
            if eps is None or set(eps) != set(blocks):
                raise UserError(f"precision {precision!r} needs a calibration of this model's "
                                f"{len(blocks)} linear layers (load_model calibrates on first use)")
            plan.formats = {n: "bf16" for n in layer_names}
            plan.formats.update(fpx_formats(eps, gamma))
            plan.eps = {n: float(eps[n]) for n in blocks}
    elif p == "adaptive":
        raise UserError("precision 'adaptive' is chosen per decision by an agent (llm:<model>@adaptive), "
                        "not by a loaded model: load fp32, bf16, fp8, fp4/nvfp4, mxfp4, fpx:<gamma> or a plan file")
    elif is_plan_file(base):
        return load_plan(base, layer_names, model_id=model_id, lm_head=head)
    else:
        raise UserError(f"unknown precision {precision!r}; expected fp32, bf16, fp8, fp4 (= nvfp4), nvfp4, "
                        "mxfp4, fpx:<gamma> (0 <= gamma <= 1) or the path of a plan file (.json)")
    if head and "lm_head" in plan.formats:
        plan.formats["lm_head"] = head
    if head:
        plan.precision = f"{plan.precision},head={head}"
    return plan


def read_plan_file(path: str) -> dict:
    """A plan file's JSON, or one UserError line saying why it cannot be used."""
    if not os.path.isfile(path):
        raise UserError(f"plan file {path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"plan file {path}: not valid JSON ({e})") from None
    if not isinstance(d, dict) or d.get("format") != PLAN_FILE_FORMAT or not isinstance(d.get("formats"), dict):
        raise UserError(f"plan file {path}: not an fpx-arena precision plan (no \"format\": "
                        f"\"{PLAN_FILE_FORMAT}\" with a \"formats\" table)")
    if d.get("version") != PLAN_FILE_VERSION:
        raise UserError(f"plan file {path}: version {d.get('version')!r} is not supported (expected {PLAN_FILE_VERSION})")
    for key in ("model", "eps", "calibration"):  # plan files are shared: every field is typed
        if d.get(key) is not None and not isinstance(d[key], dict):
            raise UserError(f"plan file {path}: {key!r} must be a JSON object, got {type(d[key]).__name__}")
    if not isinstance(d.get("compute_dtype", "bf16"), str):
        raise UserError(f"plan file {path}: compute_dtype must be a string, got {d['compute_dtype']!r:.40}")
    return d


def load_plan(path: str, layer_names: list[str], *, model_id: dict | None = None, lm_head: str | None = None) -> Plan:
    """A plan file as a Plan for a model with ``layer_names`` and identity ``model_id``."""
    d = read_plan_file(path)
    formats = {str(k): canonical_format(v, f"plan file {path}: layer {k!r} has format") for k, v in d["formats"].items()}
    compute = d.get("compute_dtype", "bf16")
    if compute not in DENSE:
        raise UserError(f"plan file {path}: compute_dtype {compute!r} is not fp32 or bf16")
    plan = Plan(path, DENSE[compute], formats, model_id=d.get("model"), eps=d.get("eps") or {},
                gamma=d.get("gamma"), calibration=d.get("calibration") or {})
    if model_id is not None:
        check_identity(path, plan.model_id, model_id)
    if layer_names:
        missing = [n for n in layer_names if n not in formats]
        extra = [n for n in formats if n not in set(layer_names)]
        if missing or extra:
            which = f"lacks {missing[0]!r}" if missing else f"names {extra[0]!r}, which the model does not have"
            raise UserError(f"plan file {path} is for another model: it {which} "
                            f"({len(formats)} layers in the plan, {len(layer_names)} in the model)")
    if lm_head and "lm_head" in plan.formats:
        plan.formats["lm_head"] = lm_head
        plan.precision = f"{path},head={lm_head}"
    return plan


def check_identity(path: str, planned: dict | None, actual: dict) -> None:
    """One line if a plan file was made for another model than the one being loaded."""
    if not planned:
        raise UserError(f"plan file {path} does not say which model it is for (no \"model\" identity)")
    for key, what in (("layers_sha256", "layer list"), ("checkpoint_sha256", "checkpoint")):
        want, got = planned.get(key), actual.get(key)
        if want is not None and got is not None and want != got:
            raise UserError(f"plan file {path} is for another model: its {what} hash {str(want)[:12]} "
                            f"(model {planned.get('name', '?')}) != {str(got)[:12]} of {actual.get('name', '?')}")
