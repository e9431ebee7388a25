"""Precision plans: which number format each linear layer of a model gets.

A plan is a dict {layer name -> format} over ``Transformer.linear_layers()`` plus the dtype in
which activations, norms, embeddings and attention run. ``Linear.set_weight`` applies a layer's
format when the weights are loaded. Today the formats are the dense ones (fp32, bf16); the
precision issue adds fp8/nvfp4/mxfp4 and FPX plans by extending ``make_plan`` alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UserError

DENSE = {"fp32": torch.float32, "bf16": torch.bfloat16}
PLANNED = ("fp8", "fp4", "nvfp4", "mxfp4", "fpx:<gamma>", "adaptive", "a plan file")


@dataclass
class Plan:
    precision: str  # what the user asked for, e.g. "bf16"
    compute_dtype: torch.dtype
    formats: dict[str, str]  # Linear name -> format

    def format_of(self, layer: str) -> str:
        return self.formats[layer]


def make_plan(precision: str, layer_names: list[str]) -> Plan:
    """The plan for a precision string, over the model's linear layers."""
    p = (precision or "bf16").strip().lower()
    if p in DENSE:
        return Plan(p, DENSE[p], {name: p for name in layer_names})
    if p in ("fp8", "fp4", "nvfp4", "mxfp4", "adaptive") or p.startswith("fpx:") or p.endswith(".json"):
        raise UserError(f"precision {precision!r} is not available yet (it comes with the FP8/FP4 "
                        "precision plans); use fp32 or bf16")
    raise UserError(f"unknown precision {precision!r}; expected fp32, bf16 (later also "
                    f"{', '.join(PLANNED)})")
