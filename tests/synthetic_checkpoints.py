"""Test fixture: small random checkpoints, built on the fly and saved by ``transformers`` itself, so that
tests (and anyone checking the engine) compare against an independent implementation without
downloading anything. Needs ``transformers`` (a test dependency), imported only here.
"""
from __future__ import annotations

import json
import os

import torch

CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}")
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_CORPUS = (
    "The fighter moves left and right, punches, kicks and blocks. The market opens at nine; "
    "buy low, sell high, hold when unsure. Player one has 100 health, player two has 73 health. "
    "Distance 4. Price 101.25, cash 1000, position 0. Reply with one action name. "
    "You are a helpful assistant. What is the capital of France? Paris is the capital. "
) * 4


def build_tokenizer(folder: str, vocab_size: int = 320) -> int:
    """A byte-level BPE trained on a few sentences, saved as tokenizer.json (+ config with a
    ChatML chat template). Returns its vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator([_CORPUS], trainer)
    os.makedirs(folder, exist_ok=True)
    tk.save(os.path.join(folder, "tokenizer.json"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": None, "eos_token": "<|im_end|>", "add_bos_token": False,
                   "chat_template": CHATML_TEMPLATE, "tokenizer_class": "PreTrainedTokenizerFast"}, f)
    return tk.get_vocab_size()


def hf_config(arch: str, **overrides):
    """A tiny transformers config of `arch` (llama, qwen2, qwen3, mistral)."""
    import transformers

    base = dict(vocab_size=384, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                rms_norm_eps=1e-6, bos_token_id=None, eos_token_id=2, pad_token_id=None)
    if arch == "llama":
        cls = transformers.LlamaConfig
        base.update(rope_theta=10000.0, tie_word_embeddings=False)
    elif arch == "qwen2":
        cls = transformers.Qwen2Config
        base.update(rope_theta=1000000.0, tie_word_embeddings=True)
    elif arch == "qwen3":
        cls = transformers.Qwen3Config
        base.update(head_dim=24, rope_theta=1000000.0, tie_word_embeddings=False)
    elif arch == "mistral":
        cls = transformers.MistralConfig
        base.update(sliding_window=None, tie_word_embeddings=False)
    else:
        raise ValueError(arch)
    base.update(overrides)
    return cls(**base)


def randomize(model, seed: int = 0, std: float = 0.1) -> None:
    """Weights large enough that attention, rope and norms all move the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * noise)
            else:
                p.copy_(std * noise)


def build_hf_checkpoint(folder: str, arch: str = "llama", seed: int = 0, max_shard_size=None, **overrides):
    """Save a random tiny model of `arch` with transformers' save_pretrained (safetensors) and a
    tokenizer into `folder`; returns the transformers model (fp32, eval mode)."""
    import transformers

    torch.manual_seed(seed)
    config = hf_config(arch, **overrides)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    randomize(model, seed)
    if config.tie_word_embeddings:
        model.tie_weights()
    kw = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(folder, safe_serialization=True, **kw)
    build_tokenizer(folder)
    return model


def _llama_permute(w, n_head: int):
    """llama.cpp's converter order for q/k rows: each head's two rope halves interleaved."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(path: str, hf_model, folder: str, qtype: str = "F32", arch: str | None = None,
               overrides: dict | None = None) -> dict:
    """Write `hf_model` (a tiny transformers Llama/Qwen2) as a GGUF file the way llama.cpp's
    converter lays it out: GGUF tensor names, llama q/k rows permuted, 2-D weights in `qtype`
    (F32, F16, BF16, Q8_0, Q4_0, Q4_1; norms stay F32) and the tokenizer from `folder`.
    `overrides` maps a GGUF tensor name to (numpy array, qtype) to plant bad data (a uint8
    array is written as raw blocks of that qtype).
    Returns {gguf tensor name: fp32 numpy array after the quantization round trip}."""
    import gguf
    import numpy as np
    from gguf import quants

    cfg = hf_model.config
    arch = arch or cfg.model_type
    sd = {k: v.detach().float().numpy() for k, v in hf_model.state_dict().items()}
    n_head, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    w = gguf.GGUFWriter(path, arch)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    w.add_vocab_size(cfg.vocab_size)
    w.add_rope_dimension_count(cfg.hidden_size // n_head)
    with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    vocab = dict(tok["model"]["vocab"])
    for added in tok.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    tokens += [f"[PAD{i}]" for i in range(len(tokens), cfg.vocab_size)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in SPECIAL_TOKENS else (4 if t.startswith("[PAD") else 1) for t in tokens])
    w.add_token_merges(merges)
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_bos_token_id(tokens.index("<|endoftext|>"))
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML_TEMPLATE)

    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    parts = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
             "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm"}
    stored = {}
    for key, value in sd.items():
        if key == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        if key in names:
            name = names[key]
        else:
            layer, rest = key[len("model.layers."):].split(".", 1)
            module, kind = rest.rsplit(".", 1)
            name = f"blk.{layer}.{parts[module]}.{kind}"
        if arch == "llama" and (".attn_q." in name or ".attn_k." in name):
            value = _llama_permute(value, n_head if ".attn_q." in name else n_kv)
        t = qtype if value.ndim == 2 else "F32"
        if overrides and name in overrides:
            value, t = overrides[name]
        gtype = gguf.GGMLQuantizationType[t]
        if value.dtype == np.uint8:  # already raw blocks of `t`
            data = value
        elif t == "F32":
            data = value.astype(np.float32)
        elif t == "F16":
            data = value.astype(np.float16)
        else:
            data = quants.quantize(value.astype(np.float32), gtype)
        w.add_tensor(name, data, raw_dtype=gtype if t not in ("F32", "F16") else None)
        if t in ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1"):
            stored[name] = np.asarray(quants.dequantize(data, gtype), dtype=np.float32).reshape(value.shape)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return stored
