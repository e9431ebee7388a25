"""The quantized-weight cache (written once, loaded next time, never used when damaged) and
FP8 / FP4 / FPX LLM agents playing real matches through run_match on CPU."""
import json
import logging
import os

import pytest
import torch

from fpx_arena import agents, games, run_match
from fpx_arena.llm import load_model
from synthetic_checkpoints import build_hf_checkpoint

pytest.importorskip("transformers")
TEXT = "Player one has 100 health, player two has 73 health. Distance 4. Reply with one action name."


pytestmark = pytest.mark.usefixtures("isolated_fpx_cache")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("tiny-qwen2"))
    build_hf_checkpoint(folder, arch="qwen2", seed=9)  # biases on q/k/v, tied embeddings
    return folder


def logits(model):
    return model.logits(torch.tensor([model.tokenizer.encode(TEXT)]))


@pytest.mark.parametrize("precision", ["fp8", "nvfp4,head=fp8", "mxfp4"])
def test_cache_is_written_once_and_loaded_next_time(tiny, precision):
    first = load_model(tiny, precision, "cpu")
    second = load_model(tiny, precision, "cpu")
    assert first.load_info["qcache"] in ("miss", "hit") and second.load_info["qcache"] == "hit"
    assert os.path.isfile(second.load_info["qcache_path"])
    assert torch.equal(logits(first), logits(second))
    uncached = load_model(tiny, precision, "cpu", qcache=False)
    assert uncached.load_info["qcache"] is None and torch.equal(logits(uncached), logits(second))
    for n, m in second.linear_layers().items():
        if m.qweight is not None:
            ref = uncached.get_submodule(n).qweight
            assert torch.equal(m.qweight.codes, ref.codes) and torch.equal(m.qweight.scales, ref.scales)


def damage_truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def damage_flip(path):
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) - 40)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))


def damage_other_plan(path):
    """A well-formed file under a correct content name whose header says another plan: what a
    file copied in from another cache entry (and renamed) looks like."""
    import hashlib

    from safetensors import safe_open
    from safetensors.torch import load_file, save

    with safe_open(path, framework="pt") as f:
        parts = json.loads(f.metadata()["fpx_arena_parts"])
    parts["formats"]["layers.0.attn.q_proj"] = "mxfp4"
    data = save(load_file(path), metadata={"fpx_arena_parts": json.dumps(parts, sort_keys=True)})
    os.remove(path)
    key = os.path.basename(path).split(".")[0]
    with open(os.path.join(os.path.dirname(path), f"{key}.{hashlib.sha256(data).hexdigest()}.safetensors"), "wb") as f:
        f.write(data)


@pytest.mark.parametrize("damage, words", [(damage_truncate, "do not hash to its name"),
                                           (damage_flip, "do not hash to its name"),
                                           (damage_other_plan, "another checkpoint or plan")])
def test_damaged_cache_is_reported_in_one_line_and_rebuilt(tiny, caplog, damage, words):
    good = load_model(tiny, "fp8", "cpu")
    path = good.load_info["qcache_path"]
    assert os.path.isfile(path)
    damage(path)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fpx_arena.cache"):
        again = load_model(tiny, "fp8", "cpu")
    lines = [r.getMessage() for r in caplog.records if r.name == "fpx_arena.cache"]
    assert len(lines) == 1 and words in lines[0] and "\n" not in lines[0] and "rebuilding" in lines[0], lines
    assert again.load_info["qcache"] == "miss"  # not used: quantized afresh
    assert torch.equal(logits(again), logits(good))
    assert load_model(tiny, "fp8", "cpu").load_info["qcache"] == "hit"  # and rewritten whole


def test_weights_changed_in_place_with_the_same_size_and_mtime_never_load_stale(tiny, tmp_path):
    """Issue 17, item 12: the cache keys on the checkpoint's content, not on a (path, size,
    mtime) memo nor on a checksum kept beside the file."""
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "ckpt"
    shutil.copytree(tiny, folder)
    weights = folder / "model.safetensors"
    first = load_model(str(folder), "fp8", "cpu")  # a hit when an earlier test cached the same bytes
    assert load_model(str(folder), "fp8", "cpu").load_info["qcache"] == "hit"
    st = os.stat(weights)
    tensors = load_file(str(weights))
    tensors["model.layers.0.mlp.up_proj.weight"] = -tensors["model.layers.0.mlp.up_proj.weight"]
    save_file(tensors, str(weights), metadata={"format": "pt"})
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(weights).st_size == st.st_size and os.stat(weights).st_mtime_ns == st.st_mtime_ns
    changed = load_model(str(folder), "fp8", "cpu")
    assert changed.load_info["qcache"] == "miss"
    fresh = load_model(str(folder), "fp8", "cpu", qcache=False)
    assert torch.equal(logits(changed), logits(fresh)) and not torch.equal(logits(changed), logits(first))


def test_other_checkpoint_never_reads_this_cache(tiny, tmp_path):
    a = load_model(tiny, "fp8", "cpu")
    other = str(tmp_path / "other")
    build_hf_checkpoint(other, arch="qwen2", seed=10)
    b = load_model(other, "fp8", "cpu")
    assert b.load_info["qcache_path"] != a.load_info["qcache_path"]
    assert not torch.equal(logits(a), logits(b))


@pytest.mark.parametrize("precision", ["fpx:0.3", "fp8", "fp4"])
def test_quantized_llm_agents_play_through_run_match(tiny, precision):
    spec = f"llm:{tiny}@{precision}?device=cpu"
    env = games.make("fighter")
    result = run_match(env, {"p0": agents.make(spec), "p1": agents.make("fighter/reactive")},
                       clock="lockstep", seed=3, max_ticks=6)
    st = result.stats["p0"]
    assert result.ticks == 6 and st.decisions == 6 and st.errors == 0 and st.invalid == 0
    model = agents.make(spec)
    model.reset("p0")
    assert model.model.precision == {"fp4": "nvfp4"}.get(precision, precision)
    quant = [m.qweight.fmt for n, m in model.model.linear_layers().items() if n != "lm_head"]
    assert set(quant) == ({"nvfp4", "fp8"} if precision.startswith("fpx") else {"nvfp4" if precision == "fp4" else "fp8"})
