"""The fused decode step and the graph generator's logic, on the CPU under the Triton
interpreter (the same kernels the GPU runs): the fused step gives the eager step's logits and
greedy tokens, writes the same keys and values, and counts its kernels per layer."""
import os

import pytest
import torch

from fpx_arena.llm import load_model
from fpx_arena.llm import fastpath
from fpx_arena.llm.cuda_graph import GraphGenerator
from synthetic_checkpoints import build_hf_checkpoint

pytest.importorskip("triton")
pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("isolated_fpx_cache")
PROMPT = [1, 7, 9, 30, 44, 5, 12, 80, 3, 99, 150, 17]


@pytest.fixture(scope="module", params=["llama", "qwen2", "qwen3"])
def tiny(request, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp(f"fast-{request.param}"))
    kw = {"head_dim": 32} if request.param == "qwen3" else {}
    build_hf_checkpoint(folder, arch=request.param, seed=11, **kw)
    return folder


@pytest.fixture
def interpret(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def rel(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.mark.parametrize("precision", ["bf16", "fp8"])
def test_fused_decode_step_equals_the_eager_step(tiny, precision, interpret):
    model = load_model(tiny, precision, "cpu")
    assert fastpath.usable(model, model.new_cache(64))
    eager, fast = model.new_cache(64), model.new_cache(64)
    model.prefill(PROMPT, eager)
    model.prefill(PROMPT, fast)
    model.eager_decode = True
    ref = [model.decode(t, eager)[0] for t in (5, 6, 7)]
    model.eager_decode = False
    got = [model.decode(t, fast)[0] for t in (5, 6, 7)]
    for r, g in zip(ref, got):
        # bf16 rounding differs in places (attention weights): near-ties may swap, nothing more
        assert rel(g, r) < 2e-2 and float(r[int(g.argmax())]) >= float(r.max()) - 0.05 * float(r.abs().max())
    n = eager.length
    assert rel(fast.k[:, :, :, :n], eager.k[:, :, :, :n]) < 1e-2
    assert rel(fast.v[:, :, :, :n], eager.v[:, :, :, :n]) < 1e-2


def test_generator_produces_the_greedy_tokens_of_eager_decoding(tiny, interpret):
    model = load_model(tiny, "bf16", "cpu")
    cache = model.new_cache(128)
    model.prefill(PROMPT[:4], cache)
    start = cache.length
    gen = GraphGenerator(model, cache, max_new=6)
    out = gen(PROMPT[4:], 6)
    ref_cache = model.new_cache(128)
    ref = model.generate(PROMPT, 6, cache=ref_cache)  # eager calls of the same fused step
    assert out == ref and cache.length == start + len(PROMPT[4:]) + 5
    # a stop id: the tokens after it are dropped and the cache holds only what came before it
    cache.truncate(start)
    stop = out[2]
    cut = gen(PROMPT[4:], 6, stop_ids=[stop])
    assert cut == out[:out.index(stop) + 1]
    assert cache.length == start + len(PROMPT[4:]) + out.index(stop)
