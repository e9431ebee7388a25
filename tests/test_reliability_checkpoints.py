"""Issue 17, item 8: checkpoint readers refuse malformed headers with one CheckpointError line,
and an index never makes us open a file outside the model's folder."""
import json
import os
import shutil
import struct
import sys

import pytest

from fpx_arena.errors import CheckpointError
from fpx_arena.llm import load_model
from fpx_arena.llm.checkpoint import GGUFSource, HFSource
from synthetic_checkpoints import build_hf_checkpoint

pytest.importorskip("transformers")

# --- a GGUF writer of our own, so a test can put any value in any header field ----------------
_T = {"u32": (4, "<I"), "i32": (5, "<i"), "f32": (6, "<f"), "u64": (10, "<Q")}


def _str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gguf_bytes(kv=None, tensors=None, *, align=None, version=3) -> bytes:
    """kv: [(key, kind, value)] with kind u32/i32/f32/u64/str/raw (raw: the value's bytes as
    they are, after the key); tensors: [(name, dims, type code, offset)] followed by zeros."""
    kv = list(kv if kv is not None else good_kv())
    if align is not None:
        kv.append(("general.alignment", "u32", align))
    tensors = tensors if tensors is not None else [("token_embd.weight", [16, 32], 0, 0)]
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kv))
    for key, kind, value in kv:
        out += _str(key)
        if kind == "str":
            out += struct.pack("<I", 8) + _str(value)
        elif kind == "raw":
            out += value
        else:
            code, fmt = _T[kind]
            out += struct.pack("<I", code) + struct.pack(fmt, value)
    for name, dims, code, offset in tensors:
        out += _str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", code, offset)
    return out + bytes(64 + 32 * 8 * 16 * 4)


def good_kv(**override):
    kv = {"general.architecture": ("str", "llama"), "llama.block_count": ("u32", 1),
          "llama.embedding_length": ("u32", 16), "llama.attention.head_count": ("u32", 2),
          "llama.feed_forward_length": ("u32", 32), "llama.vocab_size": ("u32", 32)}
    kv.update(override)
    return [(k, kind, v) for k, (kind, v) in kv.items()]


def refused(path, *needles):
    with pytest.raises(CheckpointError) as info:
        load_model(str(path), "fp32", "cpu")
    msg = str(info.value)
    assert "\n" not in msg and "Traceback" not in msg, msg
    for n in needles:
        assert n in msg, msg
    return msg


def write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_our_writer_makes_a_file_the_reader_gets_to_the_tensor_check(tmp_path):
    # the control: the same bytes with sane fields pass the header and fail only later, at a
    # missing tensor, so each case below is refused for the field it changes
    refused(write(tmp_path, "ok.gguf", gguf_bytes()), "is missing")


def test_gguf_alignment_zero(tmp_path):
    refused(write(tmp_path, "a.gguf", gguf_bytes(align=0)), "general.alignment", "power of two")
    refused(write(tmp_path, "b.gguf", gguf_bytes(align=3)), "general.alignment")


def test_gguf_zero_dimension_tensor(tmp_path):
    refused(write(tmp_path, "z.gguf", gguf_bytes(tensors=[("token_embd.weight", [16, 0], 0, 0)])),
            "token_embd.weight", "dimension of size 0")
    refused(write(tmp_path, "d.gguf", gguf_bytes(tensors=[("token_embd.weight", [], 0, 0)])),
            "token_embd.weight", "0 dimensions")


def test_gguf_head_count_zero_or_not_a_number(tmp_path):
    refused(write(tmp_path, "h.gguf", gguf_bytes(good_kv(**{"llama.attention.head_count": ("u32", 0)}))),
            "head_count", "between 1 and")
    refused(write(tmp_path, "s.gguf", gguf_bytes(good_kv(**{"llama.attention.head_count": ("str", "2")}))),
            "head_count", "positive integer")
    refused(write(tmp_path, "k.gguf", gguf_bytes(good_kv(**{"llama.attention.head_count_kv": ("u32", 0)}))),
            "n_kv_heads")
    refused(write(tmp_path, "e.gguf", gguf_bytes(good_kv(**{"llama.attention.layer_norm_rms_epsilon": ("f32", -1.0)}))),
            "norm_eps")


def test_gguf_string_of_2_63_bytes(tmp_path):
    huge = struct.pack("<I", 8) + struct.pack("<Q", 1 << 63) + b"x"
    refused(write(tmp_path, "s.gguf", gguf_bytes(good_kv() + [("general.name", "raw", huge)])),
            "not a readable GGUF file", "runs past the end")
    many = struct.pack("<II", 9, 8) + struct.pack("<Q", 1 << 62)  # an array of 2^62 strings
    refused(write(tmp_path, "a.gguf", gguf_bytes(good_kv() + [("tokenizer.ggml.tokens", "raw", many)])),
            "runs past the end")
    refused(write(tmp_path, "n.gguf", b"GGUF" + struct.pack("<IQQ", 3, 1 << 60, 1 << 60)), "runs past the end")


def test_gguf_tokenizer_fields_of_the_wrong_type(tmp_path):
    kv = good_kv(**{"tokenizer.ggml.model": ("str", "gpt2"), "tokenizer.ggml.tokens": ("u32", 5)})
    with pytest.raises(CheckpointError, match="tokenizer.ggml.tokens"):
        GGUFSource(str(write(tmp_path, "t.gguf", gguf_bytes(kv, tensors=[])))).tokenizer()


# --- Hugging Face folders --------------------------------------------------------------------
@pytest.fixture(scope="module")
def good(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("good"))
    build_hf_checkpoint(folder, arch="llama", seed=3)
    return folder


def copy(good, tmp_path):
    dst = tmp_path / "ckpt"
    shutil.copytree(good, dst)
    return dst


def set_config(folder, value):
    (folder / "config.json").write_text(json.dumps(value))


def test_config_json_that_is_a_list(good, tmp_path):
    folder = copy(good, tmp_path)
    set_config(folder, [1, 2, 3])
    refused(folder, "config.json must hold a JSON object", "list")


@pytest.mark.parametrize("key,value,needle", [
    ("num_attention_heads", "4", "num_attention_heads must be a positive integer"),
    ("num_attention_heads", 0, "num_attention_heads must be between 1"),
    ("num_key_value_heads", 0, "k_proj.weight has shape"),  # 0 reads as "all heads": the weights disagree
    ("num_key_value_heads", 3, "not a multiple"),
    ("hidden_size", 2.5, "hidden_size must be a positive integer"),
    ("num_hidden_layers", True, "n_layers must be a positive integer"),
    ("max_position_embeddings", "4096", "max_position"),
    ("rms_norm_eps", float("nan"), "norm_eps"),
    ("rope_scaling", "linear", "rope_scaling must be a JSON object"),
    ("model_type", ["llama"], "unsupported architecture"),
])
def test_config_fields_of_the_wrong_type_or_range(good, tmp_path, key, value, needle):
    folder = copy(good, tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    cfg[key] = value
    set_config(folder, cfg)
    refused(folder, needle)


def test_index_pointing_outside_the_folder_is_never_opened(good, tmp_path):
    folder = copy(good, tmp_path)
    outside = tmp_path / "secret.safetensors"
    shutil.copy(folder / "model.safetensors", outside)  # a real file there: opening it would succeed
    opened, active = [], [True]

    def hook(event, args):  # audit hooks stay for the process: this one goes quiet after the test
        if active[0] and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(os.fspath(args[0]))

    sys.addaudithook(hook)
    for target in ("../secret.safetensors", str(outside), "sub/../../secret.safetensors"):
        (folder / "model.safetensors.index.json").write_text(json.dumps(
            {"metadata": {}, "weight_map": {"model.embed_tokens.weight": target}}))
        opened.clear()
        refused(folder, "outside the model folder", "not opened")
        assert not [p for p in opened if "secret" in str(p)], opened
    active[0] = False
    for bad in ([1, 2], {"weight_map": {"x": 5}}, {"nothing": 1}):
        (folder / "model.safetensors.index.json").write_text(json.dumps(bad))
        refused(folder, "index.json")


def test_tokenizer_config_of_the_wrong_shape(good, tmp_path):
    folder = copy(good, tmp_path)
    (folder / "tokenizer_config.json").write_text("[]")
    with pytest.raises(CheckpointError, match="must hold a JSON object"):
        HFSource(str(folder)).tokenizer()


def test_a_chat_template_that_escapes_the_sandbox_is_one_line(good, tmp_path):
    folder = copy(good, tmp_path)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg["chat_template"] = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    tok = HFSource(str(folder)).tokenizer()
    with pytest.raises(CheckpointError, match="chat template"):
        tok.render_chat([{"role": "user", "content": "hi"}])
