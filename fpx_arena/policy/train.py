"""Train a Llama-architecture policy from scratch on (prompt, action) data.

The model is our own ``fpx_arena.llm.model.Transformer`` (the file the engine runs), trained with
plain torch: next-token cross-entropy on the action tokens only, the prompt as context. The result
is a standard Hugging Face folder (config.json with LlamaForCausalLM, model.safetensors,
tokenizer.json, tokenizer_config.json) that our loader and ``transformers`` both read.

Reproducible and resumable: the batch of step s is drawn from a generator seeded by (seed, s)
alone and there is no dropout, so a run restored from a checkpoint (weights, AdamW state, step)
continues exactly as the uninterrupted run would have.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..llm.checkpoint import hf_name
from ..llm.model import ModelConfig, Transformer
from . import vocab

# Model shapes. Both are small enough that a decision is a few ms (tiny) or a few tens of ms
# (small) on a 2-core CPU; the vocabulary comes from the tokenizer trained on the data.
SIZES = {
    "tiny": dict(dim=128, n_layers=4, n_heads=4, n_kv_heads=2, head_dim=32, intermediate_size=384),
    "small": dict(dim=256, n_layers=8, n_heads=8, n_kv_heads=4, head_dim=32, intermediate_size=768),
}
VOCAB_SIZES = {"tiny": 2048, "small": 2048}
DEFAULTS = {  # per size: peak learning rate, batch size
    "tiny": dict(lr=3e-3, batch_size=64),
    "small": dict(lr=1.5e-3, batch_size=64),
}
MAX_POSITION = 1024
TOKENIZER_EXAMPLES = 200_000
CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainArgs:
    data: list
    size: str = "tiny"
    out: str = "model"
    steps: int = 1000
    seed: int = 0
    batch_size: int | None = None
    lr: float | None = None
    warmup: int | None = None
    weight_decay: float = 0.1
    checkpoint_every: int = 500
    log_every: int = 10
    eval_every: int = 0
    device: str = "auto"
    dtype: str = "bf16"  # storage dtype of model.safetensors
    resume: bool = False
    stop_after: int | None = None  # end this run early after that step (checkpointed): train in pieces
    vocab_size: int | None = None
    max_examples: int | None = None
    progress: bool = True
    command: str = ""


# --- data ---------------------------------------------------------------------------------------
class TokenData:
    """Examples as one padded [N, longest] tensor (kept on the training device, so a step's
    batch is a gather, not a Python loop), with each example's prompt and total length."""

    def __init__(self, examples: list[tuple[list[int], list[int]]], pad_id: int):
        if not examples:
            raise UserError("no training examples")
        self.length = torch.tensor([len(p) + len(t) for p, t in examples], dtype=torch.int64)
        self.prompt_len = torch.tensor([len(p) for p, _ in examples], dtype=torch.int64)
        self.tokens = torch.full((len(examples), int(self.length.max())), pad_id, dtype=torch.int32)
        for i, (p, t) in enumerate(examples):
            self.tokens[i, :len(p) + len(t)] = torch.tensor(p + t, dtype=torch.int32)

    def __len__(self):
        return len(self.length)

    def to(self, device) -> "TokenData":
        self.tokens, self.length, self.prompt_len = (x.to(device) for x in (self.tokens, self.length, self.prompt_len))
        return self

    def batch(self, idx: torch.Tensor):
        """input ids [B, L] and labels [B, L] (-100 except where the next token is an action
        token). Right padding keeps every real token's causal context unchanged."""
        idx = idx.to(self.tokens.device)
        lens, plen = self.length[idx], self.prompt_len[idx]
        L = int(lens.max()) - 1
        seq = self.tokens[idx, :L + 1].long()
        ids, targets = seq[:, :-1], seq[:, 1:]
        pos = torch.arange(L, device=seq.device)[None, :]
        # position j predicts token j+1: a target when plen-1 <= j < len-1
        is_target = (pos >= plen[:, None] - 1) & (pos < lens[:, None] - 1)
        labels = torch.where(is_target, targets, torch.full_like(targets, -100))
        return ids, labels


def step_indices(n: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """The examples of step `step`: a function of (seed, step) only, so resuming is exact."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + step) & 0x7FFF_FFFF_FFFF_FFFF)
    return torch.randint(0, n, (batch_size,), generator=g)


# --- model ----------------------------------------------------------------------------------------
def model_config(size: str, vocab_size: int) -> ModelConfig:
    if size not in SIZES:
        raise UserError(f"unknown size {size!r}; choose {', '.join(SIZES)}")
    return ModelConfig(arch="llama", vocab_size=vocab_size, norm_eps=1e-5, rope_theta=10000.0,
                       max_position=MAX_POSITION, tie_embeddings=False, name=f"arena-{size}", **SIZES[size])


def init_weights(model: Transformer, seed: int) -> None:
    """GPT-2 style: normal(0, 0.02), the projections that write into the residual stream
    scaled by 1/sqrt(2 * layers) so the stream's variance does not grow with depth."""
    g = torch.Generator().manual_seed(seed)
    out_scale = 1.0 / math.sqrt(2 * model.config.n_layers)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            p.data.fill_(1.0)
        else:
            std = 0.02 * (out_scale if name.endswith(("o_proj.weight", "down_proj.weight")) else 1.0)
            p.data.copy_(torch.randn(p.shape, generator=g) * std)
        p.requires_grad_(True)


def forward(model: Transformer, ids: torch.Tensor) -> torch.Tensor:
    """The training forward: full causal attention, no cache, logits of every position."""
    positions = torch.arange(ids.shape[1], device=ids.device)
    return model.forward_tokens(ids, positions, None, 0, None)


def hf_config(c: ModelConfig, tk, dtype: str) -> dict:
    eos = tk.token_to_id(vocab.EOS)
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": c.vocab_size, "hidden_size": c.dim, "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.n_layers, "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads, "head_dim": c.head_dim, "hidden_act": "silu",
        "max_position_embeddings": c.max_position, "rms_norm_eps": c.norm_eps, "rope_theta": c.rope_theta,
        "rope_scaling": None, "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
        "bos_token_id": eos, "eos_token_id": eos, "pad_token_id": eos,
        "torch_dtype": {"bf16": "bfloat16", "fp32": "float32"}[dtype], "initializer_range": 0.02,
        "use_cache": True,
    }


def export_hf(model: Transformer, tk, folder: str, dtype: str = "bf16", extra: dict | None = None) -> None:
    """Write the Hugging Face folder: config.json, model.safetensors, tokenizer files."""
    from safetensors.torch import save_file

    torch_dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]
    os.makedirs(folder, exist_ok=True)
    tensors = {hf_name(n): p.detach().to("cpu", torch_dtype).contiguous()
               for n, p in model.named_parameters()}
    save_file(tensors, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
        json.dump(hf_config(model.config, tk, dtype), f, indent=1)
        f.write("\n")
    vocab.save_tokenizer(tk, folder, model.config.max_position)
    if extra is not None:
        with open(os.path.join(folder, "training.json"), "w", encoding="utf-8") as f:
            json.dump(extra, f, indent=1)
            f.write("\n")


# --- the loop ---------------------------------------------------------------------------------------
def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device here")
    return torch.device(name)


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def make_optimizer(model, lr: float, weight_decay: float):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    fused = next(model.parameters()).device.type == "cuda"  # one kernel for the whole update
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95),
                             fused=fused)


def batch_loss(model, data: TokenData, idx, autocast: bool):
    ids, labels = data.batch(idx)
    with torch.autocast(ids.device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = forward(model, ids)
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
    with torch.no_grad():  # no boolean indexing: it would wait for the GPU every step
        sel = labels != -100
        correct = ((logits.argmax(-1) == labels) & sel).sum() / sel.sum()
    return loss, correct


@torch.no_grad()
def evaluate_tokens(model, data: TokenData, autocast, batch_size=256) -> dict:
    """Mean action-token loss and token accuracy over a whole split."""
    total, correct, count = 0.0, 0.0, 0
    for lo in range(0, len(data), batch_size):
        idx = torch.arange(lo, min(lo + batch_size, len(data)))
        ids, labels = data.batch(idx)
        with torch.autocast(ids.device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = forward(model, ids).float()
        sel = labels != -100
        total += F.cross_entropy(logits[sel], labels[sel], reduction="sum").item()
        correct += (logits[sel].argmax(-1) == labels[sel]).sum().item()
        count += int(sel.sum())
    return {"loss": total / max(1, count), "token_accuracy": correct / max(1, count), "tokens": count}


def data_fingerprint(paths: list[str]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


_CHECKPOINT_KEYS = {"model": dict, "optimizer": dict, "step": int, "log": list, "elapsed_s": float,
                    "tokenizer": str, "fingerprint": str, "args": dict}


def load_checkpoint(path: str) -> dict:
    """A training checkpoint read without unpickling code (torch's weights_only loader: tensors,
    numbers, strings and containers only), its fields checked; UserError in one line otherwise."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # the file is untrusted: whatever torch's restricted loader raises is one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"--resume: {path} is not a training checkpoint this version can read safely ({first})") from None
    if not isinstance(state, dict):
        raise UserError(f"--resume: {path} is not a training checkpoint (a {type(state).__name__})")
    for key, kind in _CHECKPOINT_KEYS.items():
        value = state.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise UserError(f"--resume: {path}: field {key!r} is missing or not a {kind.__name__}")
    return state


def train(a: TrainArgs) -> dict:
    """Train (or resume) into folder a.out; returns the training summary."""
    from . import dataset

    device = pick_device(a.device)
    if a.size not in SIZES:
        raise UserError(f"unknown size {a.size!r}; choose {', '.join(SIZES)}")
    if a.steps < 1:
        raise UserError("--steps must be at least 1")
    if a.dtype not in ("bf16", "fp32"):
        raise UserError(f"--dtype must be bf16 or fp32, got {a.dtype!r}")
    defaults = DEFAULTS[a.size]
    batch_size = a.batch_size or defaults["batch_size"]
    peak_lr = a.lr or defaults["lr"]
    warmup = a.warmup if a.warmup is not None else max(1, min(500, a.steps // 20))
    ckpt_path = os.path.join(a.out, CHECKPOINT)

    train_records, held_records, files = dataset.load_splits(a.data)
    if a.max_examples:
        train_records = train_records[:a.max_examples]
    os.makedirs(a.out, exist_ok=True)
    fingerprint = data_fingerprint(files)
    state = None
    if a.resume:
        if not os.path.isfile(ckpt_path):
            raise UserError(f"--resume: no checkpoint at {ckpt_path}")
        state = load_checkpoint(ckpt_path)
        mine = {"size": a.size, "seed": a.seed, "batch_size": batch_size, "peak_lr": peak_lr}
        if state["args"] != mine:  # (--steps may change: training longer is a use of --resume)
            theirs = " ".join(f"{k}={v}" for k, v in state["args"].items())
            raise UserError(f"--resume: {ckpt_path} was trained with {theirs}, not "
                            + " ".join(f"{k}={v}" for k, v in mine.items()))
        if state["fingerprint"] != fingerprint:
            raise UserError(f"--resume: the data in {', '.join(a.data)} differs from the checkpoint's")
        from tokenizers import Tokenizer

        tk = Tokenizer.from_str(state["tokenizer"])
    else:
        # every k-th example is plenty for the BPE statistics, and keeps this step short
        k = max(1, len(train_records) // TOKENIZER_EXAMPLES)
        tk = vocab.train_tokenizer(dataset.corpus(train_records[::k]), a.vocab_size or VOCAB_SIZES[a.size])
    pad_id = tk.token_to_id(vocab.EOS)
    t_enc = time.perf_counter()
    train_data = TokenData(dataset.encode(train_records, tk), pad_id).to(device)
    held_data = TokenData(dataset.encode(held_records, tk), pad_id).to(device) if held_records else None
    longest = int(train_data.length.max())
    if longest > MAX_POSITION:
        raise UserError(f"an example has {longest} tokens, more than the model's context of {MAX_POSITION}")

    torch.manual_seed(a.seed)
    config = model_config(a.size, tk.get_vocab_size())
    model = Transformer(config, device="cpu", dtype=torch.float32)
    init_weights(model, a.seed)
    model.to(device)
    opt = make_optimizer(model, peak_lr, a.weight_decay)
    start_step, log_rows, elapsed_before = 0, [], 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_step, log_rows, elapsed_before = state["step"], state["log"], state["elapsed_s"]
    autocast = device.type == "cuda"
    n_params = sum(p.numel() for p in model.parameters())

    def save_checkpoint(step, elapsed):
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                    "log": log_rows, "elapsed_s": elapsed, "tokenizer": tk.to_str(),
                    "fingerprint": fingerprint,
                    "args": {"size": a.size, "seed": a.seed, "batch_size": batch_size, "peak_lr": peak_lr}}, tmp)
        os.replace(tmp, ckpt_path)  # a kill mid-write never leaves a broken checkpoint

    from tqdm import tqdm

    t0 = time.perf_counter()
    bar = tqdm(total=a.steps, initial=start_step, desc=f"train arena-{a.size}", unit="step",
               disable=not a.progress, dynamic_ncols=True)
    model.train()
    running = None
    for step in range(start_step, a.steps):
        lr = lr_at(step, a.steps, peak_lr, warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = step_indices(len(train_data), batch_size, a.seed, step)
        loss, acc = batch_loss(model, train_data, idx, autocast)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        done = step + 1
        if done % a.log_every == 0 or done == a.steps:
            lv, av = loss.item(), acc.item()
            running = lv if running is None else 0.9 * running + 0.1 * lv
            row = {"step": done, "loss": round(lv, 5), "token_accuracy": round(av, 4), "lr": lr,
                   "elapsed_s": round(elapsed_before + time.perf_counter() - t0, 2)}
            if a.eval_every and held_data is not None and (done % a.eval_every == 0):
                model.eval()
                ev = evaluate_tokens(model, held_data, autocast)
                model.train()
                row["heldout_loss"], row["heldout_token_accuracy"] = round(ev["loss"], 5), round(ev["token_accuracy"], 4)
            log_rows.append(row)
            bar.set_postfix(loss=f"{running:.4f}", acc=f"{av:.3f}")
            if not a.progress and "heldout_loss" in row:  # a quiet run still shows a pulse
                print(f"arena-{a.size} step {done}/{a.steps}: " + ", ".join(f"{k} {v}" for k, v in row.items()
                                                                        if k != "step"), file=sys.stderr)
        bar.update(1)
        if a.stop_after is not None and done >= a.stop_after and done < a.steps:
            save_checkpoint(done, elapsed_before + time.perf_counter() - t0)
            bar.close()
            return {"stopped_at": done, "steps": a.steps}
        if a.checkpoint_every and done % a.checkpoint_every == 0 and done < a.steps:
            save_checkpoint(done, elapsed_before + time.perf_counter() - t0)
    bar.close()
    elapsed = elapsed_before + time.perf_counter() - t0
    save_checkpoint(a.steps, elapsed)

    model.eval()
    summary = {
        "model": f"arena-{a.size}", "size": a.size, "parameters": n_params, "config": config.to_dict(),
        "vocab_size": tk.get_vocab_size(), "steps": a.steps, "batch_size": batch_size, "peak_lr": peak_lr,
        "warmup": warmup, "weight_decay": a.weight_decay, "seed": a.seed, "storage_dtype": a.dtype,
        "train_examples": len(train_data), "train_reply_tokens": int((train_data.length - train_data.prompt_len).sum()),
        "heldout_examples": len(held_data) if held_data is not None else 0,
        "longest_example_tokens": longest, "data": [os.path.normpath(d) for d in a.data],
        "data_fingerprint": fingerprint, "train_seconds": round(elapsed, 1),
        "encode_seconds": round(t0 - t_enc, 1), "device": device_name(device),
        "torch": torch.__version__, "python": platform.python_version(), "command": a.command,
        "final_train_loss": log_rows[-1]["loss"] if log_rows else None,
        "dataset_commands": [dataset.read_meta(d).get("command", "") for d in a.data],
        # the prompts this model knows: a change of the agent's prompt format means retraining
        "prompt_prefixes": {k: v for d in a.data for k, v in dataset.read_meta(d)["prefixes"].items()},
    }
    if held_data is not None:
        ev = evaluate_tokens(model, held_data, autocast)
        summary["heldout"] = {k: round(v, 5) if isinstance(v, float) else v for k, v in ev.items()}
    write_log(os.path.join(a.out, "loss.csv"), log_rows)
    export_hf(model, tk, a.out, a.dtype, summary)
    return summary


def write_log(path: str, rows: list[dict]) -> None:
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu} ({torch.get_num_threads()} threads)"

