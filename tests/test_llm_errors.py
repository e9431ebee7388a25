"""Bad checkpoints and bad options give one clear CheckpointError/UserError line naming the
problem (file, tensor, key), never a traceback from deep inside torch or safetensors."""
import json
import os
import shutil

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from fpx_arena.errors import CheckpointError, UserError
from fpx_arena.llm import load_model
from synthetic_checkpoints import build_hf_checkpoint, write_gguf

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("good"))
    hf = build_hf_checkpoint(folder, arch="llama", seed=7)
    return folder, hf


def copy(good, tmp_path) -> str:
    dst = str(tmp_path / "ckpt")
    shutil.copytree(good[0], dst)
    return dst


def edit_weights(folder, fn):
    path = os.path.join(folder, "model.safetensors")
    tensors = load_file(path)
    fn(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


def edit_config(folder, **changes):
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg.update(changes)
    with open(path, "w") as f:
        json.dump(cfg, f)


def fails(source, *needles, exc=CheckpointError, **kw):
    with pytest.raises(exc) as info:
        load_model(source, kw.pop("precision", "fp32"), "cpu")
    msg = str(info.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg
    return msg


def test_the_good_checkpoint_loads(good):
    assert load_model(good[0], "fp32", "cpu").config.n_layers == 2


def test_missing_files(good, tmp_path):
    fails(str(tmp_path / "nothing.gguf"), "no such file")
    fails(str(tmp_path / "dir" / "model"), "no such file")
    empty = tmp_path / "empty"
    empty.mkdir()
    fails(str(empty), "no config.json")
    folder = copy(good, tmp_path)
    os.remove(os.path.join(folder, "tokenizer.json"))
    fails(folder, "tokenizer.json")
    os.remove(os.path.join(folder, "model.safetensors"))
    fails(folder, "no *.safetensors")


def test_missing_shard(good, tmp_path):
    folder = str(tmp_path / "sharded")
    hf = good[1]
    hf.save_pretrained(folder, max_shard_size="100KB")
    shutil.copy(os.path.join(good[0], "tokenizer.json"), folder)
    shards = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
    os.remove(os.path.join(folder, shards[1]))
    fails(folder, shards[1], "missing")


def test_unknown_model_name():
    fails("no-such-model", "unknown model 'no-such-model'", "known:")


def test_tensor_missing(good, tmp_path):
    folder = copy(good, tmp_path)
    edit_weights(folder, lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))
    fails(folder, "tensor model.layers.1.mlp.up_proj.weight is missing")


def test_tensor_of_wrong_shape(good, tmp_path):
    folder = copy(good, tmp_path)

    def shrink(t):
        t["model.layers.0.self_attn.k_proj.weight"] = t["model.layers.0.self_attn.k_proj.weight"][:16].clone()

    edit_weights(folder, shrink)
    fails(folder, "model.layers.0.self_attn.k_proj.weight", "[16, 64]", "expected [32, 64]")


def test_unsupported_architecture(good, tmp_path):
    folder = copy(good, tmp_path)
    edit_config(folder, model_type="gpt2", architectures=["GPT2LMHeadModel"])
    fails(folder, "unsupported architecture 'GPT2LMHeadModel'")
    edit_config(folder, model_type="llama", architectures=["LlamaForCausalLM"], hidden_act="gelu")
    fails(folder, "hidden_act 'gelu'")
    edit_config(folder, hidden_act="silu", rope_parameters={"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e4})
    fails(folder, "rope scaling 'yarn'")


def test_config_contradicting_weights(good, tmp_path):
    folder = copy(good, tmp_path)
    edit_config(folder, num_hidden_layers=1)
    fails(folder, "config contradicts the weights", "the config says 1 layers, the weight files hold 2")
    edit_config(folder, num_hidden_layers=2, hidden_size=96, head_dim=24)
    fails(folder, "config contradicts the weights", "hidden_size=96")
    edit_config(folder, hidden_size=64, head_dim=16, vocab_size=200)
    fails(folder, "config contradicts the weights", "vocab_size=200")


def test_tokenizer_larger_than_vocabulary(good, tmp_path):
    folder = copy(good, tmp_path)
    edit_config(folder, vocab_size=300)
    edit_weights(folder, lambda t: t.update({k: v[:300].clone() for k, v in t.items()
                                             if k in ("model.embed_tokens.weight", "lm_head.weight")}))
    fails(folder, "tokenizer has 320 tokens", "300 rows")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_in_weights(good, tmp_path, bad):
    folder = copy(good, tmp_path)
    edit_weights(folder, lambda t: t["model.layers.1.self_attn.o_proj.weight"].__setitem__((3, 5), bad))
    fails(folder, "model.layers.1.self_attn.o_proj.weight", "NaN or Inf")


# --- GGUF ---------------------------------------------------------------------------------------
def test_gguf_unsupported_quant_type(good, tmp_path):
    path = str(tmp_path / "iq4.gguf")
    raw = np.zeros((32, 64 // 32 * 18), np.uint8)  # IQ4_NL blocks of a [32, 64] tensor
    write_gguf(path, good[1], good[0], "F16", overrides={"blk.0.attn_k.weight": (raw, "IQ4_NL")})
    fails(path, "blk.0.attn_k.weight", "quant type IQ4_NL", "not supported")


def test_gguf_unsupported_architecture(good, tmp_path):
    path = str(tmp_path / "phi.gguf")
    write_gguf(path, good[1], good[0], "F16", arch="phi2")
    fails(path, "unsupported architecture 'phi2'")


def test_gguf_nan_and_missing_tensor(good, tmp_path):
    path = str(tmp_path / "nan.gguf")
    bad = np.full((64,), np.nan, np.float32)
    write_gguf(path, good[1], good[0], "Q8_0", overrides={"blk.1.ffn_norm.weight": (bad, "F32")})
    fails(path, "blk.1.ffn_norm.weight", "NaN or Inf")
    path = str(tmp_path / "wrong.gguf")
    short = np.zeros((32, 32), np.float32)
    write_gguf(path, good[1], good[0], "F32", overrides={"blk.0.ffn_up.weight": (short, "F32")})
    fails(path, "blk.0.ffn_up.weight", "has shape [32, 32]", "expected [160, 64]")


def test_gguf_truncated_or_not_gguf(good, tmp_path):
    path = str(tmp_path / "cut.gguf")
    write_gguf(path, good[1], good[0], "F16")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 1000)
    fails(path, "not a readable GGUF file", "truncated")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"PK\x03\x04" + bytes(100))
    fails(str(junk), "not a readable GGUF file", "magic")


def test_gguf_config_contradicts_weights(good, tmp_path):
    hf = good[1]
    path = str(tmp_path / "layers.gguf")
    hf.config.num_hidden_layers = 1  # the metadata says 1 block; the file holds 2
    try:
        write_gguf(path, hf, good[0], "F16")
    finally:
        hf.config.num_hidden_layers = 2
    fails(path, "config contradicts the weights", "the config says 1 layers, the weight files hold 2")


# --- precision ----------------------------------------------------------------------------------
def test_precision_errors(good):
    fails(good[0], "chosen per decision by an agent", exc=UserError, precision="adaptive")
    fails(good[0], "unknown precision 'int3'", exc=UserError, precision="int3")


def test_cli_prints_one_line(good, capsys):
    from fpx_arena.cli import main

    assert main(["prompt", "/nonexistent/model.gguf"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such file" in err
