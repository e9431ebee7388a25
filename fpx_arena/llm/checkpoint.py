"""Reading checkpoints: Hugging Face folders (config.json + safetensors, single or sharded)
and GGUF files. Both present the same interface, a ``TensorSource``: the model config, the
tokenizer, and each weight by our module name (``layers.3.attn.q_proj.weight``), read lazily
from memory-mapped files and converted to a float tensor only when asked for.

Every problem a user can cause is raised as one CheckpointError line naming the file and the
tensor: a missing file, a missing tensor or one of the wrong shape, an architecture or a quant
type we do not run, a config that contradicts the weights, NaN/Inf in a weight.
"""
from __future__ import annotations

import json
import math
import os
import re
import struct

import numpy as np
import torch

from ..errors import CheckpointError
from .model import ModelConfig
from .tensors import expected_tensors
from .tokenizer import Tokenizer

SUPPORTED_HF = {  # model_type -> our arch
    "llama": "llama", "mistral": "mistral", "qwen2": "qwen2", "qwen3": "qwen3",
}
SUPPORTED_GGUF = ("llama", "qwen2", "qwen3")

# Upper bounds far above any real model: a header beyond them is damaged or hostile, and would
# otherwise allocate or loop without end before a shape check could say so.
_INT_LIMITS = {"vocab_size": 1 << 22, "dim": 1 << 17, "n_layers": 4096, "n_heads": 4096,
               "n_kv_heads": 4096, "head_dim": 1 << 14, "intermediate_size": 1 << 20,
               "max_position": 1 << 26, "sliding_window": 1 << 26}


def _positive_int(value, key: str, where: str) -> int:
    """A header field that must be a count: an int (not a bool, string or float) within bounds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CheckpointError(f"{where}: {key} must be a positive integer, got {value!r:.60}")
    limit = _INT_LIMITS.get(key, 1 << 30)
    if not 1 <= value <= limit:
        raise CheckpointError(f"{where}: {key} must be between 1 and {limit}, got {value}")
    return value


def _positive_float(value, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise CheckpointError(f"{where}: {key} must be a finite number > 0, got {value!r:.60}")
    return float(value)


def validate_config(c: ModelConfig, where: str) -> ModelConfig:
    """Every field of a config read from a file, checked before anything is sized by it."""
    for key in ("vocab_size", "dim", "n_layers", "n_heads", "n_kv_heads", "head_dim", "intermediate_size",
                "max_position"):
        _positive_int(getattr(c, key), key, where)
    if c.sliding_window is not None:
        _positive_int(c.sliding_window, "sliding_window", where)
    c.norm_eps = _positive_float(c.norm_eps, "norm_eps", where)
    c.rope_theta = _positive_float(c.rope_theta, "rope_theta", where)
    if c.rope_scaling is not None:
        if not isinstance(c.rope_scaling, dict):
            raise CheckpointError(f"{where}: rope scaling must be a table, got {c.rope_scaling!r:.60}")
        for key, value in c.rope_scaling.items():
            if key in ("factor", "low_freq_factor", "high_freq_factor"):
                _positive_float(value, f"rope scaling {key}", where)
            elif key == "original_max_position_embeddings":
                _positive_int(value, f"rope scaling {key}", where)
    if c.n_heads % c.n_kv_heads:
        raise CheckpointError(f"{where}: num_attention_heads={c.n_heads} is not a multiple of "
                              f"num_key_value_heads={c.n_kv_heads}")
    if not isinstance(c.name, str):
        c.name = str(c.name)
    return c


# --- our names -> checkpoint names ------------------------------------------------------------
_HF_RULES = [  # (our pattern, HF pattern)
    (r"embed\.weight", "model.embed_tokens.weight"), (r"norm\.weight", "model.norm.weight"),
    (r"lm_head\.weight", "lm_head.weight"),
    (r"layers\.(\d+)\.attn_norm\.weight", r"model.layers.\1.input_layernorm.weight"),
    (r"layers\.(\d+)\.mlp_norm\.weight", r"model.layers.\1.post_attention_layernorm.weight"),
    (r"layers\.(\d+)\.attn\.(\w+)\.(weight|bias)", r"model.layers.\1.self_attn.\2.\3"),
    (r"layers\.(\d+)\.mlp\.(\w+)\.(weight|bias)", r"model.layers.\1.mlp.\2.\3"),
]
_GGUF_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
               "q_norm": "attn_q_norm", "k_norm": "attn_k_norm", "gate_proj": "ffn_gate",
               "up_proj": "ffn_up", "down_proj": "ffn_down"}


def hf_name(ours: str) -> str:
    for pat, repl in _HF_RULES:
        if re.fullmatch(pat, ours):
            return re.sub(pat, repl, ours)
    raise KeyError(ours)


def gguf_name(ours: str) -> str:
    fixed = {"embed.weight": "token_embd.weight", "norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    if ours in fixed:
        return fixed[ours]
    m = re.fullmatch(r"layers\.(\d+)\.(?:attn|mlp)\.(\w+)\.(weight|bias)", ours)
    if m:
        return f"blk.{m[1]}.{_GGUF_NAMES[m[2]]}.{m[3]}"
    m = re.fullmatch(r"layers\.(\d+)\.(attn_norm|mlp_norm)\.weight", ours)
    if m:
        return f"blk.{m[1]}.{'attn_norm' if m[2] == 'attn_norm' else 'ffn_norm'}.weight"
    raise KeyError(ours)


class TensorSource:
    """A checkpoint's config, tokenizer and weights (by our names, read on demand)."""

    path: str
    config: ModelConfig

    def ckpt_name(self, ours: str) -> str:
        raise NotImplementedError

    def has(self, ours: str) -> bool:
        raise NotImplementedError

    def shape(self, ours: str) -> tuple[int, ...]:
        raise NotImplementedError

    def get(self, ours: str) -> torch.Tensor:
        raise NotImplementedError

    def tokenizer(self) -> Tokenizer:
        raise NotImplementedError

    def check(self) -> None:
        """Config against weights: every tensor present with the shape the config implies,
        no more layers in the files than the config has."""
        c = self.config
        emb = self.shape("embed.weight") if self.has("embed.weight") else None
        if emb is not None and tuple(emb) != (c.vocab_size, c.dim):
            raise CheckpointError(f"{self.path}: config contradicts the weights: vocab_size={c.vocab_size}, "
                                  f"hidden_size={c.dim} but {self.ckpt_name('embed.weight')} is {list(emb)}")
        extra = self.n_layers_in_files()
        if extra is not None and extra != c.n_layers:
            raise CheckpointError(f"{self.path}: config contradicts the weights: the config says "
                                  f"{c.n_layers} layers, the weight files hold {extra}")
        for name, shape in expected_tensors(c).items():
            if not self.has(name):
                raise CheckpointError(f"{self.path}: tensor {self.ckpt_name(name)} is missing")
            got = tuple(self.shape(name))
            if got != shape:
                raise CheckpointError(f"{self.path}: tensor {self.ckpt_name(name)} has shape {list(got)}, "
                                      f"expected {list(shape)} from the config")

    def n_layers_in_files(self) -> int | None:
        return None


# --- Hugging Face folders ---------------------------------------------------------------------
def config_from_hf(d: dict, where: str) -> ModelConfig:
    if not isinstance(d, dict):
        raise CheckpointError(f"{where}: config.json must hold a JSON object, got {type(d).__name__}")
    mt = d.get("model_type")
    archs = d.get("architectures") or []
    if not isinstance(mt, str) or mt not in SUPPORTED_HF:
        raise CheckpointError(f"{where}: unsupported architecture {(archs or [mt])[0]!r} (model_type {mt!r}); "
                              "supported: Llama, Mistral, Qwen2, Qwen3 (and SmolLM, a Llama)")
    act = d.get("hidden_act", "silu")
    if act not in ("silu", "swish"):
        raise CheckpointError(f"{where}: unsupported hidden_act {act!r} (only silu/SwiGLU)")
    try:
        n_heads = _positive_int(d["num_attention_heads"], "num_attention_heads", where)
        dim = _positive_int(d["hidden_size"], "hidden_size", where)
        for key in ("rope_parameters", "rope_scaling"):
            if d.get(key) is not None and not isinstance(d[key], dict):
                raise CheckpointError(f"{where}: {key} must be a JSON object, got {d[key]!r:.60}")
        rope = dict(d.get("rope_parameters") or {})  # transformers 5 keeps theta and scaling here
        scaling = d.get("rope_scaling") or {k: v for k, v in rope.items() if k != "rope_theta"}
        kind = scaling.get("rope_type", scaling.get("type", "default")) if scaling else "default"
        if kind not in ("default", "linear", "llama3"):
            raise CheckpointError(f"{where}: unsupported rope scaling {kind!r} (supported: linear, llama3)")
        arch = SUPPORTED_HF[mt]
        use_sw = d.get("use_sliding_window", arch == "mistral")
        c = ModelConfig(
            arch=arch, vocab_size=d["vocab_size"], dim=dim, n_layers=d["num_hidden_layers"], n_heads=n_heads,
            n_kv_heads=d.get("num_key_value_heads") or n_heads,
            head_dim=d.get("head_dim") or dim // n_heads, intermediate_size=d["intermediate_size"],
            norm_eps=d.get("rms_norm_eps", 1e-6), rope_theta=rope.get("rope_theta", d.get("rope_theta", 10000.0)),
            rope_scaling=scaling if kind != "default" else None,
            max_position=d.get("max_position_embeddings", 4096),
            tie_embeddings=bool(d.get("tie_word_embeddings", False)),
            qkv_bias=arch == "qwen2" or bool(d.get("attention_bias", False)),
            o_bias=arch != "qwen2" and bool(d.get("attention_bias", False)),
            mlp_bias=bool(d.get("mlp_bias", False)), qk_norm=arch == "qwen3",
            sliding_window=d.get("sliding_window") if use_sw else None,
            name=d.get("_name_or_path", ""))
    except KeyError as e:
        raise CheckpointError(f"{where}: config.json lacks {e.args[0]!r}") from None
    return validate_config(c, where)


def _read_index(index: str, folder: str) -> dict:
    """The index's weight_map, each file checked to be a plain name inside `folder` before
    anything is opened: an index may come from anywhere, and must not make us read /etc/x."""
    try:
        with open(index, encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{index}: not valid JSON ({e})") from None
    weight_map = raw.get("weight_map") if isinstance(raw, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{index}: needs a \"weight_map\" object of tensor name -> file")
    for key, fname in weight_map.items():
        if not isinstance(fname, str) or not fname.endswith(".safetensors"):
            raise CheckpointError(f"{index}: tensor {key} maps to {fname!r:.80}, not a .safetensors file name")
        norm = os.path.normpath(fname)
        if (os.path.isabs(fname) or norm.startswith(os.pardir) or os.sep + os.pardir + os.sep in os.sep + norm
                or "\0" in fname or (os.altsep and os.altsep in fname)):
            raise CheckpointError(f"{index}: tensor {key} maps to {fname!r:.80}, outside the model folder "
                                  "(refused; not opened)")
    return weight_map


class HFSource(TensorSource):
    def __init__(self, folder: str):
        from safetensors import safe_open

        self.path = folder
        cfg_path = os.path.join(folder, "config.json")
        if not os.path.isfile(cfg_path):
            raise CheckpointError(f"{folder}: no config.json (not a Hugging Face model folder)")
        try:
            with open(cfg_path, encoding="utf-8") as f:
                raw = json.load(f)
        except ValueError as e:
            raise CheckpointError(f"{cfg_path}: not valid JSON ({e})") from None
        self.config = config_from_hf(raw, folder)
        self.config.name = self.config.name or os.path.basename(os.path.normpath(folder))
        index = os.path.join(folder, "model.safetensors.index.json")
        if os.path.isfile(index):
            weight_map = _read_index(index, folder)
            files = sorted(set(weight_map.values()))
        else:
            files = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
            if not files:
                raise CheckpointError(f"{folder}: no *.safetensors weight files (.bin/.pt are not supported)")
            weight_map = None
        self._handles, self._where = {}, {}
        for fname in files:
            fpath = os.path.join(folder, fname)
            if not os.path.isfile(fpath):
                raise CheckpointError(f"{folder}: weight file {fname} (named in the index) is missing")
            try:
                h = safe_open(fpath, framework="pt")  # memory-mapped; tensors read on demand
            except Exception as e:  # safetensors raises its own error types
                raise CheckpointError(f"{fpath}: not a readable safetensors file ({e})") from None
            self._handles[fname] = h
            for key in h.keys():
                self._where[key] = fname
        if weight_map:
            for key, fname in weight_map.items():
                if key not in self._where:
                    raise CheckpointError(f"{folder}: tensor {key} is listed in the index but not in {fname}")

    def ckpt_name(self, ours):
        return hf_name(ours)

    def has(self, ours):
        return hf_name(ours) in self._where

    def shape(self, ours):
        key = hf_name(ours)
        return tuple(self._handles[self._where[key]].get_slice(key).get_shape())

    def get(self, ours):
        key = hf_name(ours)
        return self._handles[self._where[key]].get_tensor(key)

    def n_layers_in_files(self):
        idx = {int(m[1]) for k in self._where if (m := re.match(r"model\.layers\.(\d+)\.", k))}
        return max(idx) + 1 if idx else None

    def tokenizer(self):
        return Tokenizer.from_hf_folder(self.path)


# --- GGUF files -------------------------------------------------------------------------------
def _f16(raw: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(raw).view(np.float16)).float()


def dequantize_gguf(data: np.ndarray, qtype: str, shape: tuple[int, ...]) -> torch.Tensor:
    """A GGUF tensor's bytes (any array over them) to fp32 of logical `shape` ([rows, cols])."""
    raw = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
    if qtype == "F32":
        return torch.from_numpy(raw.view(np.float32).copy()).reshape(shape)
    if qtype == "F16":
        return torch.from_numpy(raw.view(np.float16).astype(np.float32)).reshape(shape)
    if qtype == "BF16":  # raw 16-bit words: the top half of an fp32
        words = torch.from_numpy(raw.view(np.uint16).astype(np.int32))
        return (words << 16).view(torch.float32).reshape(shape)
    blocks = raw.reshape(-1, {"Q8_0": 34, "Q4_0": 18, "Q4_1": 20}[qtype])
    if qtype == "Q8_0":  # fp16 scale d, 32 int8: x = d * q
        d = _f16(blocks[:, :2])
        q = torch.from_numpy(np.ascontiguousarray(blocks[:, 2:]).view(np.int8)).float()
        return (d * q).reshape(shape)
    if qtype in ("Q4_0", "Q4_1"):  # 32 4-bit codes: low nibbles are elements 0-15, high 16-31
        head = 2 if qtype == "Q4_0" else 4
        d = _f16(blocks[:, :2])
        qs = torch.from_numpy(np.ascontiguousarray(blocks[:, head:])).to(torch.int16)
        q = torch.cat((qs & 0x0F, qs >> 4), dim=1).float()
        if qtype == "Q4_0":
            return (d * (q - 8)).reshape(shape)
        return (d * q + _f16(blocks[:, 2:4])).reshape(shape)
    raise AssertionError(qtype)


_OWN_QUANTS = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1")
_GGUF_PY_QUANTS = ("Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")  # via gguf.quants


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_NP = {0: np.uint8, 1: np.int8, 2: np.uint16, 3: np.int16, 4: np.uint32, 5: np.int32, 6: np.float32,
       7: np.bool_, 10: np.uint64, 11: np.int64, 12: np.float64}


def read_gguf(path: str):
    """(metadata {key: value}, tensors {name: (qtype name, logical shape [rows, cols], raw bytes)})
    of a GGUF v2/v3 file. Tensor bytes are views of a memory map: nothing is read until used.
    (A small reader of our own: gguf.GGUFReader takes seconds to wrap a 49k-token vocabulary.)"""
    import struct

    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    buf = np.memmap(path, dtype=np.uint8, mode="r")
    mv = memoryview(buf)
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, mv, pos)[0]
        pos += struct.calcsize(fmt)
        return v

    def count(n, each: int, what: str) -> int:
        # every length is checked against the bytes that are left, so a damaged length fails
        # here instead of allocating or looping for 2^63 items
        if n * each > len(buf) - pos:
            raise ValueError(f"{what} of {n} items runs past the end of the file at byte {pos}")
        return n

    def string():
        nonlocal pos
        n = count(take("<Q"), 1, "a string")
        v = bytes(mv[pos:pos + n]).decode("utf-8", errors="replace")
        pos += n
        return v

    def value(vtype):
        nonlocal pos
        if vtype == 8:
            return string()
        if vtype == 9:
            etype = take("<I")
            if etype == 8:
                return [string() for _ in range(count(take("<Q"), 8, "a string array"))]
            if etype not in _NP:
                raise ValueError(f"unknown array type {etype}")
            n = count(take("<Q"), np.dtype(_NP[etype]).itemsize, "an array")
            arr = np.frombuffer(mv, dtype=_NP[etype], count=n, offset=pos)
            pos += arr.nbytes
            return arr.tolist()
        if vtype not in _SCALARS:
            raise ValueError(f"unknown value type {vtype}")
        return take(_SCALARS[vtype])

    if bytes(mv[:4]) != b"GGUF":
        raise ValueError("no GGUF magic number")
    pos = 4
    version = take("<I")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version} (supported: 2, 3)")
    n_tensors, n_kv = take("<Q"), take("<Q")
    count(n_kv, 12, "the metadata")  # a key length and a value type at least
    count(n_tensors, 24, "the tensor table")  # name length, dims count, type, offset
    fields = {}
    for _ in range(n_kv):
        key = string()
        fields[key] = value(take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        n_dims = take("<I")
        if not 1 <= n_dims <= 4:  # GGML_MAX_DIMS
            raise ValueError(f"tensor {name} has {n_dims} dimensions (1 to 4 allowed)")
        dims = [take("<Q") for _ in range(n_dims)]
        if not all(0 < d < 1 << 40 for d in dims):
            raise ValueError(f"tensor {name} has a dimension of size {min(dims) if 0 in dims else max(dims)}")
        infos.append((name, dims, take("<I"), take("<Q")))
    align = fields.get("general.alignment", 32)
    if isinstance(align, bool) or not isinstance(align, int) or not 0 < align <= 1 << 16 or align & (align - 1):
        raise ValueError(f"general.alignment is {align!r:.40}, not a power of two up to 65536")
    start = (pos + align - 1) // align * align
    tensors = {}
    for name, dims, tcode, offset in infos:
        try:
            qtype = GGMLQuantizationType(tcode)
        except ValueError:
            raise ValueError(f"tensor {name} has unknown type code {tcode}") from None
        if qtype not in GGML_QUANT_SIZES:
            raise ValueError(f"tensor {name} has type {qtype.name}, which has no known block size")
        block, size = GGML_QUANT_SIZES[qtype]
        shape = tuple(reversed(dims)) if len(dims) > 1 else (dims[0],)
        n = math.prod(dims)
        if dims[0] % block:
            raise ValueError(f"tensor {name} has rows of {dims[0]} values, not whole {qtype.name} blocks of {block}")
        nbytes = n // block * size
        if start + offset + nbytes > len(buf):
            raise ValueError(f"tensor {name} runs past the end of the file (truncated?)")
        raw = buf[start + offset: start + offset + nbytes]
        tensors[name] = (qtype.name, shape, raw)
    return fields, tensors


class GGUFSource(TensorSource):
    def __init__(self, path: str):
        self.path = path
        if not os.path.isfile(path):
            raise CheckpointError(f"{path}: no such file")
        try:
            self.fields, self.tensors = read_gguf(path)
        except (ValueError, OSError, OverflowError, struct.error, UnicodeDecodeError) as e:
            raise CheckpointError(f"{path}: not a readable GGUF file ({e})") from None
        self.config = self._config()

    def _config(self) -> ModelConfig:
        f, arch = self.fields, self.fields.get("general.architecture")
        if not isinstance(arch, str) or arch not in SUPPORTED_GGUF:
            raise CheckpointError(f"{self.path}: unsupported architecture {arch!r:.60}; supported: "
                                  f"{', '.join(SUPPORTED_GGUF)}")

        def key(k, default=KeyError):
            v = f.get(f"{arch}.{k}")
            if v is None:
                if default is KeyError:
                    raise CheckpointError(f"{self.path}: metadata key {arch}.{k} is missing")
                return default
            return v

        n_heads = _positive_int(key("attention.head_count"), f"{arch}.attention.head_count", self.path)
        dim = _positive_int(key("embedding_length"), f"{arch}.embedding_length", self.path)
        tokens = f.get("tokenizer.ggml.tokens")
        n_vocab = key("vocab_size", None) or (len(tokens) if isinstance(tokens, list) else 0) or None
        if n_vocab is None and "token_embd.weight" in self.tensors:
            n_vocab = int(self.tensors["token_embd.weight"][1][0])
        scaling = None
        if key("rope.scaling.type", "none") in ("linear",):
            scaling = {"rope_type": "linear", "factor": key("rope.scaling.factor")}
        elif key("rope.scaling.type", "none") not in ("none",):
            raise CheckpointError(f"{self.path}: unsupported rope scaling {key('rope.scaling.type')!r}")
        extra = {}
        if "rope_freqs.weight" in self.tensors:  # llama3-style scaling, precomputed per pair
            extra["rope_freqs"] = self._read("rope_freqs.weight").reshape(-1)
        c = ModelConfig(
            arch=arch, vocab_size=n_vocab, dim=dim, n_layers=key("block_count"), n_heads=n_heads,
            n_kv_heads=key("attention.head_count_kv", n_heads),
            head_dim=key("attention.key_length", None) or key("rope.dimension_count", None) or dim // n_heads,
            intermediate_size=key("feed_forward_length"), norm_eps=key("attention.layer_norm_rms_epsilon", 1e-5),
            rope_theta=key("rope.freq_base", 10000.0), rope_scaling=scaling,
            max_position=key("context_length", 4096),
            tie_embeddings="output.weight" not in self.tensors,
            qkv_bias="blk.0.attn_q.bias" in self.tensors, o_bias="blk.0.attn_output.bias" in self.tensors,
            mlp_bias="blk.0.ffn_up.bias" in self.tensors, qk_norm="blk.0.attn_q_norm.weight" in self.tensors,
            name=f.get("general.name", os.path.basename(self.path)), extra=extra)
        return validate_config(c, self.path)

    def ckpt_name(self, ours):
        return gguf_name(ours)

    def has(self, ours):
        return gguf_name(ours) in self.tensors

    def shape(self, ours):
        return self.tensors[gguf_name(ours)][1]

    def n_layers_in_files(self):
        idx = {int(m[1]) for k in self.tensors if (m := re.match(r"blk\.(\d+)\.", k))}
        return max(idx) + 1 if idx else None

    def _read(self, name: str) -> torch.Tensor:
        qtype, shape, raw = self.tensors[name]
        if qtype in _OWN_QUANTS:
            return dequantize_gguf(raw, qtype, shape)
        if qtype in _GGUF_PY_QUANTS:
            from gguf import GGMLQuantizationType, quants

            out = quants.dequantize(np.asarray(raw).reshape(shape[0] if len(shape) > 1 else 1, -1),
                                    GGMLQuantizationType[qtype])
            return torch.from_numpy(np.array(out, dtype=np.float32)).reshape(shape)
        raise CheckpointError(f"{self.path}: tensor {name} has quant type {qtype}, which is not supported "
                              f"(supported: {', '.join(_OWN_QUANTS + _GGUF_PY_QUANTS)})")

    def get(self, ours):
        w = self._read(gguf_name(ours))
        c = self.config
        # llama.cpp's converter interleaves each head's rope halves for the llama architecture
        # (rope on adjacent pairs); our rope rotates halves, as HF does: undo that permutation.
        if c.arch == "llama" and re.search(r"attn\.(q|k)_proj\.(weight|bias)$", ours):
            heads = c.n_heads if ".q_proj." in ours else c.n_kv_heads
            rest = w.shape[1:]
            w = w.reshape(heads, c.head_dim // 2, 2, *rest).transpose(1, 2).reshape(heads * c.head_dim, *rest)
        return w

    def tokenizer(self):
        return Tokenizer.from_gguf(self.fields, self.path)
