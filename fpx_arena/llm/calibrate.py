"""FPX calibration: how much each linear layer's output suffers in FP4, and the plans built on it.

For each linear layer l of the transformer blocks (the lm_head has its own option),

    eps_l = ||A_l(bf16) - A_l(fp4)||^2 / ||A_l(bf16)||^2

over every token of the calibration text, where A_l is the layer's output for the input it
receives in a bf16 forward of the whole model (so the rest of the model is bf16: errors do not
compound). A_l(bf16) uses the layer's bf16 weight, A_l(fp4) the same weight quantized to nvfp4
by ``fpx_arena.kernels.quantize_weight``; both products are computed in fp32. An FPX plan puts
the round(gamma * L) layers with the lowest eps_l in FP4 and the rest in FP8.

Default calibration text (``DEFAULT_DATA``): chat conversations shipped in
``data/calibration-games-v1.json`` -- the prompts the LLM agent built while scripted bots played
every game (recorded by ``fpx_arena.precision_apps.calibration``), rendered here in the model's
own chat template. The engine itself plays nothing. Any text file works instead. Rankings are
cached on disk by checkpoint content hash (see ``qcache``).
"""
from __future__ import annotations

import hashlib
import json
import math
import os

import torch
from tqdm import tqdm

from ..errors import UserError
from ..kernels import quantize_weight
from . import qcache
from .checkpoint import GGUFSource, HFSource, expected_tensors
from .precision import is_block_linear, is_plan_file, make_plan, split_precision
from .registry import resolve

DEFAULT_DATA = "games-v1"   # cache key of the default calibration text (bump if it changes)
DEFAULT_TEXT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                                 f"calibration-{DEFAULT_DATA}.json")


# --- calibration text --------------------------------------------------------------------------
def render_conversation(tokenizer, messages: list[dict]) -> str:
    """A conversation as the model reads it: its chat template, ready for the reply."""
    return tokenizer.render_chat(messages, add_generation_prompt=True)


def default_texts(tokenizer) -> list[str]:
    """The shipped calibration conversations, each rendered in the model's chat template."""
    try:
        with open(DEFAULT_TEXT_PATH, encoding="utf-8") as f:
            conversations = json.load(f)["conversations"]
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"the default calibration text {DEFAULT_TEXT_PATH} is missing or broken ({e}); "
                        "pass a text file instead (--data)") from None
    return [render_conversation(tokenizer, c) for c in conversations]


def read_text_file(path: str, max_chars: int = 20000, chunk_chars: int = 1500) -> list[str]:
    """A text file as chunks of about chunk_chars characters (cut at line ends)."""
    if not os.path.isfile(path):
        raise UserError(f"calibration data {path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(max_chars)
    except UnicodeDecodeError:
        raise UserError(f"calibration data {path}: not UTF-8 text") from None
    if not text.strip():
        raise UserError(f"calibration data {path}: the file is empty")
    chunks, cur = [], ""
    for line in text.splitlines(keepends=True):
        cur += line
        if len(cur) >= chunk_chars:
            chunks.append(cur)
            cur = ""
    if cur.strip():
        chunks.append(cur)
    return chunks


def data_key(data: str | None) -> str:
    if data is None:
        return DEFAULT_DATA
    with open(data, "rb") as f:
        return "file-" + hashlib.sha256(f.read()).hexdigest()[:16]


def calibration_ids(tokenizer, data: str | None, max_tokens: int = 512) -> list[list[int]]:
    """Token ids of the calibration text: the shipped default (data None) or a text file."""
    texts = default_texts(tokenizer) if data is None else read_text_file(data)
    seqs = [tokenizer.encode(t)[:max_tokens] for t in texts]
    return [s for s in seqs if len(s) >= 2]


# --- the measurement ---------------------------------------------------------------------------
@torch.inference_mode()
def measure_eps(model, sequences: list[list[int]], fmts=("nvfp4",), layers=None, progress: bool = False) -> dict:
    """{fmt: {layer: eps}}: each layer's relative squared output error in each weight format,
    on the inputs it receives in this (dense) model's forward over ``sequences``."""
    linears = {n: m for n, m in model.linear_layers().items() if layers is None or n in layers}
    linears = {n: m for n, m in linears.items() if (layers is not None or is_block_linear(n))}
    if any(m.qweight is not None for m in linears.values()):
        raise UserError("calibration needs a dense model (load it with precision bf16 or fp32)")
    # [W; W_fmt1 - W; W_fmt2 - W; ...] in fp32, built once per layer: one product per call
    # gives A(dense) and each format's error A(fmt) - A(dense) = x @ (W_fmt - W)^T
    stacked = {}
    for name, m in linears.items():
        w = m.weight.float()
        stacked[name] = torch.cat([w] + [quantize_weight(w, f).dequantize(torch.float32) - w for f in fmts])
    err = {f: dict.fromkeys(linears, 0.0) for f in fmts}
    ref = dict.fromkeys(linears, 0.0)

    def hook(name):
        def fn(module, inputs, output):
            x = inputs[0].reshape(-1, module.in_features).float()
            sq = (x @ stacked[name].t()).pow(2).sum(0).reshape(1 + len(fmts), -1).sum(1).tolist()
            ref[name] += sq[0]
            for f, e in zip(fmts, sq[1:]):
                err[f][name] += e
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in linears.items()]
    try:
        for ids in tqdm(sequences, desc="calibrating", unit="seq", leave=False, disable=not progress):
            model.logits(ids)
    finally:
        for h in handles:
            h.remove()
    return {f: {n: err[f][n] / max(ref[n], 1e-30) for n in linears} for f in fmts}


def layer_kind(name: str) -> str:
    """'layers.3.attn.q_proj' -> 'q_proj'."""
    return name.rsplit(".", 1)[-1]


def eps_by_kind(eps: dict[str, float]) -> dict[str, float]:
    """Geometric mean of eps per layer type (q/k/v/o/gate/up/down)."""
    groups: dict[str, list[float]] = {}
    for n, e in eps.items():
        groups.setdefault(layer_kind(n), []).append(math.log(max(e, 1e-30)))
    return {k: math.exp(sum(v) / len(v)) for k, v in sorted(groups.items())}


# --- rankings for fpx:<gamma> ------------------------------------------------------------------
def ranking(source: str, data: str | None = None, device=None, model=None, progress: bool = False,
            load_dense=None) -> dict:
    """The FP4 ranking record of a checkpoint ({"eps": {layer: eps}, "tokens", "data", ...}):
    from the disk cache, or measured on a dense (bf16) copy of the model and cached: ``model``
    if given, else ``load_dense(path, device)`` (the loader's ``load_model`` at bf16: passed in,
    because the loader imports this module)."""
    path, kind = resolve(source)
    sha = qcache.checkpoint_sha256(path)
    key = data_key(data)
    if model is None:
        cfg = (GGUFSource(path) if kind == "gguf" else HFSource(path)).config
        names = [n[: -len(".weight")] for n, s in expected_tensors(cfg).items()
                 if len(s) == 2 and n.endswith("_proj.weight")]
    else:
        names = [n for n in model.linear_layers() if is_block_linear(n)]
    hit = qcache.load_ranking(sha, key, names)
    if hit is not None:
        return hit
    if model is None:
        if load_dense is None:
            raise ValueError("ranking: no cached ranking, and neither model nor load_dense to measure one")
        model = load_dense(path, device)
    ids = calibration_ids(model.tokenizer, data)
    if not ids:
        raise UserError(f"calibration data {data or DEFAULT_DATA}: no text of two tokens or more")
    eps = measure_eps(model, ids, ("nvfp4",), progress=progress)["nvfp4"]
    record = {"eps": eps, "fmt": "nvfp4", "data": data or DEFAULT_DATA, "data_key": key,
              "sequences": len(ids), "tokens": sum(len(s) for s in ids)}
    qcache.save_ranking(sha, key, record)
    return dict(record, checkpoint_sha256=sha)


def plan_for_model(precision: str, src, shapes: dict[str, tuple[int, int]], device=None,
                   lm_head: str | None = None, load_dense=None):
    """The Plan of ``precision`` for the checkpoint ``src`` whose linear layers have ``shapes``:
    fpx:<gamma> takes its ranking from the cache or calibrates (on ``load_dense(path, device)``,
    see ``ranking``); plan files are checked against this model's identity."""
    base, _ = split_precision(precision)
    names = list(shapes)
    p = base.strip().lower()
    if p.startswith("fpx:"):
        make_plan(precision, [], lm_head=lm_head)  # the string first, before any calibration
        rec = ranking(src.path, device=device, load_dense=load_dense)
        plan = make_plan(precision, names, lm_head=lm_head, eps=rec["eps"])
        plan.calibration = {k: rec[k] for k in ("data", "sequences", "tokens") if k in rec}
        plan.model_id = qcache.model_identity(src, shapes)
        return plan
    if p.endswith(".json") or (is_plan_file(base) and p not in ("fp32", "bf16")):
        return make_plan(precision, names, lm_head=lm_head, model_id=qcache.model_identity(src, shapes))
    return make_plan(precision, names, lm_head=lm_head)
